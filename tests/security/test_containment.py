"""Where jobs cannot be boxed the service says so, and serves one project only unless allowed;
a configured job user that cannot run the engines stops the start with the reason."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support_server import BIN, ServerProcess

from mrs_jobs.runtime.box import box_support, bwrap_path
from mrs_jobs.settings import Settings
from mrs_jobs.supervisor.containment import (
    UncontainedRefused,
    check_serving,
    containment,
    hidden_paths,
)

pytestmark = pytest.mark.timeout(120)


def _admin(data_dir: Path, *args: str) -> str:
    env = {**os.environ, "MRS_JOBS_DATA_DIR": str(data_dir)}
    done = subprocess.run(
        [str(BIN), "admin", *args], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_boxes_are_on_by_default_where_the_host_can_make_one(tmp_path: Path) -> None:
    found = containment(Settings(data_dir=tmp_path / "d"))
    if box_support(bwrap_path()) is not None:
        assert not os.environ.get("CI"), "CI installs bubblewrap: boxes must work there"
        pytest.skip("no box on this host")
    assert found.policy is not None and found.reason is None
    assert str((tmp_path / "d").absolute()) in found.policy.hidden


def test_hidden_paths_name_the_data_dir_key_files_and_database(tmp_path: Path) -> None:
    key = tmp_path / "elsewhere" / "k.key"
    old = tmp_path / "old.key"
    db = tmp_path / "db" / "x.db"
    settings = Settings(
        data_dir=tmp_path / "d",
        secret_key_file=key,
        old_secret_key_files=f"{old}",
        database_url=f"sqlite:///{db}",
    )
    hidden = hidden_paths(settings)
    for path in (tmp_path / "d", key, old, db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        assert str(path) in hidden


def test_without_a_box_several_projects_are_refused_unless_allowed(tmp_path: Path) -> None:
    found = containment(Settings(data_dir=tmp_path, box_jobs=False))
    assert found.policy is None and "box_jobs" in (found.reason or "")
    check_serving(Settings(data_dir=tmp_path), found, project_count=1)  # one project: serves
    with pytest.raises(UncontainedRefused, match="MRS_JOBS_ALLOW_UNCONTAINED_JOBS"):
        check_serving(Settings(data_dir=tmp_path), found, project_count=2)
    check_serving(Settings(data_dir=tmp_path, allow_uncontained_jobs=True), found, 2)


def test_serve_without_a_box_refuses_a_second_project_then_accepts_the_risk(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    _admin(data, "create-project", "team-a")
    _admin(data, "create-project", "team-b")
    refused = ServerProcess(data, MRS_JOBS_BOX_JOBS="false")
    with pytest.raises(RuntimeError, match="MRS_JOBS_ALLOW_UNCONTAINED_JOBS=true"):
        refused.start(timeout=30)
    allowed = ServerProcess(data, MRS_JOBS_BOX_JOBS="false", MRS_JOBS_ALLOW_UNCONTAINED_JOBS="true")
    allowed.start(timeout=30)
    try:
        assert "jobs.not_boxed" in allowed.log.read_text()
    finally:
        allowed.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="a job user needs the service to run as root")
def test_a_job_user_that_cannot_run_the_engines_stops_the_start(tmp_path: Path) -> None:
    try:
        probe = subprocess.run(
            [sys.executable, "-c", "import pyspark"], user="nobody", capture_output=True
        )
        reachable = probe.returncode == 0
    except PermissionError:
        reachable = False
    if reachable:
        pytest.skip("nobody can run this Python environment here: nothing to refuse")
    server = ServerProcess(tmp_path / "data", MRS_JOBS_JOB_USER="nobody")
    with pytest.raises(RuntimeError, match="job user 'nobody' cannot run"):
        server.start(timeout=60)
