from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support_supervisor import World

from mrs_jobs.secretbox import load_secret_box
from mrs_jobs.services.batch_delete import BatchDeleteService
from mrs_jobs.services.bootstrap import bootstrap
from mrs_jobs.services.context import Caller
from mrs_jobs.services.jobs import JobService
from mrs_jobs.settings import Settings
from mrs_jobs.store import Store


@pytest.fixture
def world(store: Store, tmp_path: Path) -> Iterator[World]:
    settings = Settings(
        data_dir=tmp_path / "data",
        poll_interval=0.05,
        kill_grace_seconds=1.0,
        database_url=store.url,
    )
    boot = bootstrap(store, load_secret_box(settings), max_running=2, max_queued=100, parallelism=1)
    assert boot is not None
    caller = Caller(boot.project_id, None, "tester", "req-1")
    w = World(
        store,
        settings,
        JobService(store, runnable_types=frozenset({"SparkSubmit"}), wake=lambda: None),
        BatchDeleteService(store, wake=lambda: None),
        caller,
        boot.cluster_id,
        boot,
    )
    yield w
