"""Flink jobs on a remote session cluster (kind ``flink-remote``) through the official SDK.

The test starts a real Flink standalone cluster (``start-cluster.sh`` of the installed Flink,
free REST and RPC ports on 127.0.0.1) and a real ``mrs-jobs serve`` with a cluster of kind
``flink-remote`` pointing at it. Jobs are submitted detached (``flink run -d``): their state,
failure cause and kill come from the jobmanager's REST API, and the service re-attaches them
by Flink job id after a ``kill -9`` and restart.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from huaweicloudsdkmrs.v2 import (
    CreateExecuteJobRequest,
    JobExecution,
    JobQueryBean,
    ShowSingleJobExeRequest,
    StopJobRequest,
)
from mrs_acceptance import TIMINGS, client_for, marked_processes, wait_until
from support_flink_cluster import FlinkCluster, build_remote_jar
from support_server import BIN, ServerProcess

from mrs_jobs.engines.install import EngineInstallError, install_flink
from mrs_jobs.engines.java import find_java_home

pytestmark = pytest.mark.flink
DONE = frozenset({"FINISHED", "FAILED", "KILLED"})
REPO = Path(__file__).resolve().parents[2]
ENGINES_DIR = Path(os.environ.get("MRS_JOBS_TEST_ENGINES_DIR", str(REPO / ".cache" / "engines")))
JOB_ID_RE = re.compile(r"[0-9a-f]{32}")


@pytest.fixture(scope="module")
def flink_home() -> str:
    if find_java_home() is None:
        pytest.skip("no Java")
    try:
        return str(install_flink(ENGINES_DIR))
    except EngineInstallError as exc:
        if exc.network and os.environ.get("CI") != "true":
            pytest.skip(f"Flink could not be downloaded: {exc}")
        raise


@pytest.fixture(scope="module")
def cluster(flink_home: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlinkCluster]:
    c = FlinkCluster.start(flink_home, tmp_path_factory.mktemp("flink-cluster"))
    TIMINGS["Flink standalone cluster start -> taskmanager registered"] = c.startup_s
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def jar(flink_home: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    built = build_remote_jar(flink_home, tmp_path_factory.mktemp("remote-jar"))
    if built is None:
        pytest.skip("no JDK")
    return built


class Service:
    """A real server (restartable) with a ``flink-remote`` cluster, driven by the SDK."""

    def __init__(self, srv: ServerProcess, cluster_id: str) -> None:
        self.srv = srv
        self.cluster_id = cluster_id
        self.submitted: list[str] = []

    @property
    def boot(self) -> dict[str, str]:
        return self.srv.bootstrap

    def client(self):
        boot = self.boot
        return client_for(self.srv.endpoint, boot["ak"], boot["sk"], boot["project_id"])

    def submit(self, arguments: list[str], name: str) -> str:
        resp = self.client().create_execute_job(
            CreateExecuteJobRequest(
                cluster_id=self.cluster_id,
                body=JobExecution(job_type="Flink", job_name=name, arguments=arguments),
            )
        )
        assert resp.job_submit_result.state == "COMPLETE"
        self.submitted.append(resp.job_submit_result.job_id)
        return resp.job_submit_result.job_id

    def show(self, job_id: str) -> JobQueryBean:
        return (
            self.client()
            .show_single_job_exe(
                ShowSingleJobExeRequest(cluster_id=self.cluster_id, job_execution_id=job_id)
            )
            .job_detail
        )

    def kill(self, job_id: str) -> None:
        self.client().stop_job(StopJobRequest(cluster_id=self.cluster_id, job_execution_id=job_id))

    def wait(self, job_id: str, states: set[str] | frozenset[str], timeout: float) -> JobQueryBean:
        def probe() -> JobQueryBean | None:
            detail = self.show(job_id)
            if detail.job_state in states:
                return detail
            if detail.job_state in DONE:
                pytest.fail(
                    f"{job_id} ended {detail.job_state}/{detail.job_result} "
                    f"({self.reason(job_id)}):\n{self.log(job_id)[-3000:]}"
                )
            return None

        return wait_until(f"job {job_id} in {sorted(states)}", probe, timeout, 0.3)

    def wait_app_id(self, job_id: str, timeout: float = 120) -> str:
        return wait_until(
            f"an app id for {job_id}", lambda: self.show(job_id).app_id or None, timeout, 0.3
        )

    def reason(self, job_id: str) -> str:
        """The failure reason the service recorded (the console and CLI show it)."""
        with sqlite3.connect(self.srv.data_dir / "mrs-jobs.db", timeout=10) as conn:
            row = conn.execute("SELECT reason FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return "" if row is None else row[0]

    def log(self, job_id: str) -> str:
        d = self.srv.data_dir / "jobs" / job_id
        return "".join(
            (d / n).read_text(errors="replace")
            for n in ("stdout.log", "stderr.log")
            if (d / n).exists()
        )


def _admin(srv: ServerProcess, *args: str) -> str:
    done = subprocess.run(
        [str(BIN), "admin", *args],
        env=srv.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"admin {args}: {done.stderr}"
    return done.stdout.strip()


def _create_flink_remote_cluster(srv: ServerProcess, jobmanager: str) -> str:
    project = srv.bootstrap["project_id"]
    cid = _admin(
        srv,
        "create-cluster",
        project,
        "--name",
        "flink",
        "--kind",
        "flink-remote",
        "--set",
        f"flink_jobmanager={jobmanager}",
        "--components",
        "Flink",
    )
    with sqlite3.connect(srv.data_dir / "mrs-jobs.db", timeout=10) as conn:
        kind, config = conn.execute(
            "SELECT kind, config FROM clusters WHERE id = ?", (cid,)
        ).fetchone()
    assert kind == "flink-remote"
    assert json.loads(config)["flink_jobmanager"] == jobmanager
    return cid


@pytest.fixture(scope="module")
def service(
    flink_home: str, cluster: FlinkCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    base = tmp_path_factory.mktemp("flink-remote-server")
    srv = ServerProcess(base / "data", MRS_JOBS_FLINK_HOME=flink_home, HOME=str(base))
    srv.env = {k: v for k, v in srv.env.items() if k == "PATH" or not k.startswith("MRS_JOBS_")}
    srv.env.update(
        MRS_JOBS_DATA_DIR=str(srv.data_dir),
        MRS_JOBS_HOST="127.0.0.1",
        MRS_JOBS_PORT="0",
        MRS_JOBS_POLL_INTERVAL="0.1",
        MRS_JOBS_KILL_GRACE_SECONDS="3",
        MRS_JOBS_FLINK_HOME=flink_home,
    )
    srv.start()
    svc = Service(srv, _create_flink_remote_cluster(srv, cluster.address))
    try:
        yield svc
    finally:
        srv.stop(signal.SIGKILL)
        for job_id in svc.submitted:
            for pgid in set(marked_processes(job_id).values()):
                try:
                    os.killpg(pgid, signal.SIGKILL)
                except OSError:
                    pass
        for app_id in cluster.running_jobs():  # nothing of ours keeps running on the cluster
            cluster.cancel(app_id)


def test_remote_job_finishes_with_flink_job_id(service: Service, cluster: FlinkCluster, jar):
    t0 = time.monotonic()
    job_id = service.submit(["run", str(jar), "sum"], "remote-sum")
    detail = service.wait(job_id, DONE, 180)
    TIMINGS["Flink remote: submit -> FINISHED (bounded job)"] = time.monotonic() - t0
    assert (detail.job_state, detail.job_result) == ("FINISHED", "SUCCEEDED")
    assert JOB_ID_RE.fullmatch(detail.app_id)
    assert float(detail.job_progress) == 100.0
    # the Flink job id is the one the cluster ran, and it really finished there
    assert cluster.state(detail.app_id) == "FINISHED"
    assert f"Job has been submitted with JobID {detail.app_id}" in service.log(job_id)
    out = "".join(p.read_text(errors="replace") for p in (cluster.base / "log").glob("*.out"))
    assert "mrs-sum=10100" in out


def test_remote_job_failure_has_its_cause(service: Service, cluster: FlinkCluster, jar):
    job_id = service.submit(["run", "-d", str(jar), "taskfail"], "remote-taskfail")
    detail = service.wait(job_id, DONE, 180)
    assert detail.job_result == "FAILED"
    assert cluster.state(detail.app_id) == "FAILED"
    assert service.reason(job_id) == (
        "Flink job FAILED: java.lang.IllegalStateException: mrs-remote-task-failure"
    )
    # what the jobmanager kept of the failure is pulled into the job's own log
    log = service.log(job_id)
    assert f"the application's log from its cluster ({detail.app_id})" in log
    assert "Caused by: java.lang.IllegalStateException: mrs-remote-task-failure" in log
    # the user's -d: noted in the job's log (every remote job is detached anyway)
    assert "jobs on a remote Flink cluster are always submitted detached" in service.log(job_id)

    # a main() that throws submits nothing: the launcher's exit code fails the job
    job_id = service.submit(["run", str(jar), "mainfail"], "remote-mainfail")
    detail = service.wait(job_id, DONE, 120)
    assert detail.job_result == "FAILED" and not detail.app_id
    assert "mrs-remote-main-failure" in service.log(job_id)


def test_kill_cancels_the_flink_job(service: Service, cluster: FlinkCluster, jar):
    job_id = service.submit(["run", str(jar), "sleep"], "remote-sleep")
    service.wait(job_id, {"RUNNING"}, 120)
    app_id = service.wait_app_id(job_id)
    assert cluster.state(app_id) == "RUNNING"
    t0 = time.monotonic()
    service.kill(job_id)
    detail = service.wait(job_id, {"KILLED"}, 60)
    TIMINGS["Flink remote: kill -> KILLED"] = time.monotonic() - t0
    assert detail.job_result == "KILLED"
    assert cluster.wait_state(app_id, {"CANCELED"}, 30) == "CANCELED"


def test_restart_reattaches_by_flink_job_id(service: Service, cluster: FlinkCluster, jar):
    slow = service.submit(["run", str(jar), "slow", "100"], "remote-slow")  # ~50 s
    sleep = service.submit(["run", str(jar), "sleep"], "remote-forever")
    service.wait(slow, {"RUNNING"}, 120)
    service.wait(sleep, {"RUNNING"}, 120)
    slow_app, sleep_app = service.wait_app_id(slow), service.wait_app_id(sleep)
    assert cluster.state(slow_app) == "RUNNING"
    # the launchers exit (detached): nothing of these jobs runs on this machine any more
    wait_until(
        "the launchers to exit",
        lambda: not marked_processes(slow) and not marked_processes(sleep),
        60,
        0.3,
    )
    assert cluster.state(slow_app) == cluster.state(sleep_app) == "RUNNING"

    service.srv.stop(signal.SIGKILL)
    t0 = time.monotonic()
    service.srv.start()
    TIMINGS["Flink remote: server restart after kill -9"] = time.monotonic() - t0

    # still followed by id: the bounded job ends SUCCEEDED by the cluster's word
    detail = service.wait(slow, DONE, 180)
    assert (detail.job_state, detail.job_result, detail.app_id) == (
        "FINISHED",
        "SUCCEEDED",
        slow_app,
    )
    assert cluster.state(slow_app) == "FINISHED"
    # and the streaming one can still be killed through the API
    assert service.show(sleep).job_state == "RUNNING"
    service.kill(sleep)
    assert service.wait(sleep, {"KILLED"}, 60).app_id == sleep_app
    assert cluster.wait_state(sleep_app, {"CANCELED"}, 30) == "CANCELED"
