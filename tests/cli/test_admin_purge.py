"""`mrs-jobs admin purge`: ended jobs by filter, a dry run that changes nothing, clear errors."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jobrows import insert_jobs, job_row, raw_job
from support_server import BIN
from typer.testing import CliRunner

from mrs_jobs.cli.admin import app
from mrs_jobs.domain.clusterconfig import settings_of
from mrs_jobs.settings import Settings
from mrs_jobs.store import Store
from mrs_jobs.store import jobs as job_store
from mrs_jobs.store.tenants import Cluster, add_cluster, add_project, get_cluster

DAY = 86_400_000


class Setup:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.store = Store(Settings(data_dir=data_dir).effective_database_url)
        self.store.migrate()
        now = job_store.now_ms()
        with self.store.write() as conn:
            add_project(conn, "p1", "p", now)
            for cid in ("c1", "c2"):
                add_cluster(conn, Cluster(cid, "p1", cid, "local", ["Spark"], {}, created_ms=now))

    def job(self, cluster: str = "c1", days_ago: float = 10, **kw: Any) -> str:
        state = kw.pop("state", "FINISHED")
        at = job_store.now_ms() - int(days_ago * DAY)
        ended = at if state in ("FINISHED", "FAILED", "KILLED") else 0
        row = job_row("p1", cluster, state=state, submitted_ms=at, finished_ms=ended, **kw)
        return insert_jobs(self.store, [row])[0]

    def marked(self, job_id: str) -> bool:
        row = raw_job(self.store, job_id)
        assert row is not None
        return int(row["deleted_ms"]) > 0


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    monkeypatch.setenv("MRS_JOBS_DATA_DIR", str(data))
    monkeypatch.delenv("MRS_JOBS_DATABASE_URL", raising=False)
    s = Setup(data)
    yield s
    s.store.dispose()


def _purge(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(app, ["purge", *args], input=input)


def test_it_takes_exactly_the_matching_ended_jobs(setup: Setup) -> None:
    old_failed = [setup.job(state="FAILED", job_name=f"nightly-{i}") for i in range(3)]
    old_ok = setup.job(state="FINISHED", job_name="nightly-ok")
    young_failed = setup.job(state="FAILED", days_ago=1, job_name="nightly-young")
    other_name = setup.job(state="FAILED", job_name="adhoc")
    other_cluster = setup.job("c2", state="FAILED", job_name="nightly-c2")
    running = setup.job(state="RUNNING", days_ago=30, job_name="nightly-running")
    out = _purge(
        "--cluster", "c1", "--state", "FAILED", "--before", "7d",
        "--name-contains", "NIGHTLY", "--yes", "--chunk", "2",
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "3 ended jobs match" in out.output and "purged 3 ended jobs" in out.output
    assert all(setup.marked(j) for j in old_failed)
    for kept in (old_ok, young_failed, other_name, other_cluster, running):
        assert not setup.marked(kept)


def test_a_dry_run_shows_count_and_sample_and_changes_nothing(setup: Setup) -> None:
    ids = [setup.job(job_name=f"j{i}") for i in range(12)]
    out = _purge("--cluster", "c1", "--before", "1d", "--dry-run")
    assert out.exit_code == 0, out.output
    assert "12 ended jobs match" in out.output and "... and 2 more" in out.output
    assert ids[0] in out.output or any(i in out.output for i in ids)
    assert "nothing changed" in out.output
    assert not any(setup.marked(j) for j in ids)


def test_declining_the_question_changes_nothing(setup: Setup) -> None:
    job = setup.job()
    out = _purge("--cluster", "c1", input="n\n")
    assert out.exit_code == 1
    assert not setup.marked(job)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--state", "RUNNING"], "ended jobs only"),
        (["--state", "SUBMITTED,FAILED"], "ended jobs only"),
        (["--state", "DONE"], "Invalid --state"),
        (["--before", "yesterday"], "Invalid --before"),
        (["--before", "7x"], "Invalid --before"),
        (["--cluster", "nope"], "cluster does not exist"),
        (["--name-contains", " "], "Invalid --name-contains"),
        ([], "at least one filter"),
    ],
)
def test_bad_filters_give_a_clear_error_and_change_nothing(
    setup: Setup, args: list[str], message: str
) -> None:
    jobs = [setup.job(), setup.job(state="FAILED"), setup.job(state="RUNNING", days_ago=30)]
    out = _purge(*args, "--yes")
    assert out.exit_code == 2, out.output
    assert message in out.output
    assert not any(setup.marked(j) for j in jobs)


def test_an_iso_date_works_as_before(setup: Setup) -> None:
    job = setup.job(days_ago=400)
    young = setup.job(days_ago=1)
    with setup.store.read() as conn:
        assert get_cluster(conn, None, "c1") is not None
    cut = job_store.now_ms() - 100 * DAY
    from datetime import UTC, datetime

    day = datetime.fromtimestamp(cut / 1000, UTC).strftime("%Y-%m-%d")
    out = _purge("--before", day, "--yes")
    assert out.exit_code == 0, out.output
    assert setup.marked(job) and not setup.marked(young)


def test_retention_is_settable_with_update_cluster(setup: Setup) -> None:
    env = {**os.environ, "MRS_JOBS_DATA_DIR": str(setup.data_dir)}
    cmd = [str(BIN), "admin", "update-cluster", "c1"]
    ok = subprocess.run(
        [*cmd, "--set", "retention_days=7", "--set", "retention_max_jobs=1000"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    with setup.store.read() as conn:
        cluster = get_cluster(conn, None, "c1")
    assert cluster is not None
    typed = settings_of(cluster.kind, cluster.config)
    assert (typed.retention_days, typed.retention_max_jobs) == (7, 1000)
    bad = subprocess.run(
        [*cmd, "--set", "retention_days=-3"], env=env, capture_output=True, text=True, timeout=60
    )
    assert bad.returncode != 0 and "retention_days" in bad.stderr
