"""Shared fixtures: a real store per test (SQLite file, or a PostgreSQL schema), signed clients."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support_db import PG_URL, pg_or_skip, pg_schema_url  # noqa: F401 - re-exported

from mrs_jobs.settings import Settings
from mrs_jobs.store import Store


def make_store(kind: str, tmp_path: Path) -> Iterator[Store]:
    if kind == "sqlite":
        store = Store(f"sqlite:///{tmp_path / 'store.db'}")
        store.migrate()
        yield store
        store.dispose()
        return
    with pg_schema_url() as url:
        store = Store(url)
        store.migrate()
        try:
            yield store
        finally:
            store.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    yield from make_store(request.param, tmp_path)


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    yield from make_store("sqlite", tmp_path)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", port=0, poll_interval=0.05, kill_grace_seconds=2.0)


@pytest.fixture(autouse=True)
def _umask_restored() -> Iterator[None]:
    """Admin commands run in-process (typer's CliRunner) call secure_data_dir, which sets the
    process umask to 0077 as the real command does; later tests' directories must not inherit
    it (a 0700 jobs directory keeps the job user out)."""
    old = os.umask(0o022)
    os.umask(old)
    yield
    os.umask(old)


@pytest.fixture(scope="session", autouse=True)
def _jobs_may_write_under_the_test_temp_root(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Servers the tests start give their first cluster the tests' temp root as an output root.

    Jobs are boxed: they write only to their own directory and their cluster's output roots,
    and many tests check files a job wrote next to its inputs. The service's data directories
    under that root stay hidden from every job (the box covers them after binding the roots).
    """
    root = tmp_path_factory.getbasetemp()
    os.environ.setdefault("MRS_JOBS_BOOTSTRAP_OUTPUT_ROOTS", json.dumps([str(root)]))
