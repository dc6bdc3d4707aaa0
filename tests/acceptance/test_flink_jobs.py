"""Flink through the official SDK: a jar job, a Python job, a broken jar and a kill.

Flink is installed once into a cache (`MRS_JOBS_TEST_ENGINES_DIR`, default .cache/engines) the
way `mrs-jobs engines install flink` does it, and the server is pointed at it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from huaweicloudsdkmrs.v2 import StopJobRequest
from mrs_acceptance import (
    TIMINGS,
    RunningServer,
    marked_processes,
    start_server,
    stop_server,
    wait_until,
)
from support_jobs import build_flink_jar

from mrs_jobs.engines.install import EngineInstallError, install_flink
from mrs_jobs.engines.java import find_java_home

pytestmark = pytest.mark.flink
DONE = frozenset({"FINISHED", "FAILED", "KILLED"})
REPO = Path(__file__).resolve().parents[2]
ENGINES_DIR = Path(os.environ.get("MRS_JOBS_TEST_ENGINES_DIR", str(REPO / ".cache" / "engines")))


@pytest.fixture(scope="module")
def flink_home() -> str:
    try:
        return str(install_flink(ENGINES_DIR))
    except EngineInstallError as exc:
        if exc.network and os.environ.get("CI") != "true":
            pytest.skip(f"Flink could not be downloaded: {exc}")
        raise


@pytest.fixture(scope="module")
def flink_server(flink_home, tmp_path_factory) -> Iterator[RunningServer]:
    srv = start_server(tmp_path_factory.mktemp("flink-server"), {"MRS_JOBS_FLINK_HOME": flink_home})
    TIMINGS["server start -> /health answering (flink)"] = srv.startup_s
    try:
        yield srv
    finally:
        stop_server(srv)


@pytest.fixture(scope="module")
def jar(flink_home, tmp_path_factory) -> Path:
    built = build_flink_jar(flink_home, find_java_home() or "/usr", tmp_path_factory.mktemp("fjar"))
    if built is None:
        pytest.skip("no JDK")
    return built


def test_flink_jar_job_succeeds(flink_server, jar) -> None:
    job_id = flink_server.submit(["run", str(jar)], name="flinkjar", job_type="Flink")
    detail = flink_server.wait_state(job_id, DONE, 180)
    assert (detail.job_state, detail.job_result) == ("FINISHED", "SUCCEEDED")
    assert len(detail.app_id) == 32 and int(detail.app_id, 16) >= 0
    out = (flink_server.job_dir(job_id) / "stdout.log").read_text()
    assert "mrs-sum=10100" in out


def test_flink_python_job_succeeds(flink_server, tmp_path) -> None:
    script = tmp_path / "job.py"
    script.write_text(
        "from pyflink.datastream import StreamExecutionEnvironment\n"
        "env = StreamExecutionEnvironment.get_execution_environment()\n"
        "env.set_parallelism(1)\n"
        "vals = env.from_collection(list(range(1, 11))).map(lambda x: x * 3)"
        ".execute_and_collect()\n"
        "print('mrs-py-sum=%d' % sum(vals), flush=True)\n"
    )
    job_id = flink_server.submit(["run", "-py", str(script)], name="flinkpy", job_type="Flink")
    detail = flink_server.wait_state(job_id, DONE, 240)
    assert detail.job_result == "SUCCEEDED"
    assert "mrs-py-sum=165" in (flink_server.job_dir(job_id) / "stdout.log").read_text()


def test_broken_flink_job_fails_with_cause(flink_server, jar) -> None:
    job_id = flink_server.submit(["run", str(jar), "fail"], name="flinkbad", job_type="Flink")
    detail = flink_server.wait_state(job_id, DONE, 120)
    assert detail.job_result == "FAILED"
    logs = "".join(
        (flink_server.job_dir(job_id) / n).read_text() for n in ("stdout.log", "stderr.log")
    )
    assert "mrs-test-broken-main" in logs
    flink_server.assert_diagnosed(job_id, "IllegalStateException: mrs-test-broken-main")


def test_kill_a_running_flink_job(flink_server, jar) -> None:
    job_id = flink_server.submit(["run", str(jar), "sleep"], name="flinklong", job_type="Flink")
    flink_server.wait_state(job_id, {"RUNNING"}, 120)
    flink_server.client().stop_job(
        StopJobRequest(cluster_id=flink_server.cluster_id, job_execution_id=job_id)
    )
    assert flink_server.wait_state(job_id, {"KILLED"}, 30).job_result == "KILLED"
    wait_until("the Flink client to be gone", lambda: not marked_processes(job_id), 15)
