"""SparkSubmit jobs on a Spark standalone cluster (kind ``spark-standalone``) via the official SDK.

The test starts a real master (REST submission server on) and two 1-core/1 GB workers from the
pyspark package, and a real ``mrs-jobs serve`` with a cluster of kind ``spark-standalone``
(``spark_deploy_mode=cluster``) pointing at them: PySpark apps run in client deploy mode (Spark
runs no Python app in standalone cluster mode), jars in cluster deploy mode through the REST
server. Success, failure, kill and progress in both modes, and re-attach after ``kill -9`` of
the service mid-job: by pid in client mode, by driver id in cluster mode.
"""

from __future__ import annotations

import json
import os
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
from support_server import BIN, ServerProcess
from support_spark_cluster import SparkCluster, build_probe_jar, start_cluster, stop_cluster

from mrs_jobs.engines.java import find_java_home, find_spark_home

pytestmark = [
    pytest.mark.spark,
    pytest.mark.skipif(
        find_java_home() is None or find_spark_home() is None, reason="Java or Spark not found"
    ),
]
DONE = frozenset({"FINISHED", "FAILED", "KILLED"})
JOB_TIMEOUT_S = 150.0
# A cluster-mode driver (1 core) and one executor fit on the two 1-core, 1 GB workers.
SMALL = ["--conf", "spark.executor.memory=512m", "--conf", "spark.driver.memory=512m"]
ONE_CORE = ["--conf", "spark.cores.max=1"]

SMALL_PY = """\
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("accept-small").getOrCreate()
print("SMALL-SUM", spark.sparkContext.parallelize(range(1, 101), 2).sum())
spark.stop()
"""
# Tasks of SLOW_PY sleep; argv[1] = number of tasks, argv[2] = seconds each.
SLOW_PY = """\
import sys, time
from pyspark.sql import SparkSession
n, s = int(sys.argv[1]), float(sys.argv[2])
spark = SparkSession.builder.appName("accept-slow").getOrCreate()
rdd = spark.sparkContext.parallelize(range(n), n)
print("SLOW-SUM", rdd.map(lambda x: time.sleep(s) or x).sum())
spark.stop()
"""


class Service:
    """A real, restartable server with a ``spark-standalone`` cluster, driven by the SDK."""

    def __init__(self, srv: ServerProcess, cluster_id: str) -> None:
        self.srv = srv
        self.cluster_id = cluster_id
        self.submitted: list[str] = []

    def client(self):  # type: ignore[no-untyped-def]
        boot = self.srv.bootstrap
        return client_for(self.srv.endpoint, boot["ak"], boot["sk"], boot["project_id"])

    def submit(self, arguments: list[str], name: str) -> str:
        resp = self.client().create_execute_job(
            CreateExecuteJobRequest(
                cluster_id=self.cluster_id,
                body=JobExecution(job_type="SparkSubmit", job_name=name, arguments=arguments),
            )
        )
        assert resp.job_submit_result.state == "COMPLETE"
        self.submitted.append(resp.job_submit_result.job_id)
        return resp.job_submit_result.job_id

    def show(self, job_id: str) -> JobQueryBean:
        req = ShowSingleJobExeRequest(cluster_id=self.cluster_id, job_execution_id=job_id)
        return self.client().show_single_job_exe(req).job_detail

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
                    f"({self.row(job_id)}):\n{self.log(job_id)[-3000:]}"
                )
            return None

        return wait_until(f"job {job_id} in {sorted(states)}", probe, timeout, 0.3)

    def row(self, job_id: str) -> dict:
        """What the store recorded of a job (reason, pid, launcher id)."""
        with sqlite3.connect(self.srv.data_dir / "mrs-jobs.db", timeout=10) as conn:
            conn.row_factory = sqlite3.Row
            row = conn.execute(
                "SELECT reason, pid, launcher_id, app_id FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
        return dict(row) if row else {}

    def log(self, job_id: str) -> str:
        d = self.srv.data_dir / "jobs" / job_id
        return "".join(
            (d / n).read_text(errors="replace")
            for n in ("stdout.log", "stderr.log")
            if (d / n).exists()
        )


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkCluster]:
    c = start_cluster(tmp_path_factory.mktemp("standalone-cluster"))
    TIMINGS["Spark standalone master + 2 workers start -> workers ALIVE"] = c.startup_s
    try:
        yield c
    finally:
        stop_cluster(c)


@pytest.fixture(scope="module")
def jar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_probe_jar(tmp_path_factory.mktemp("probe-jar"))


@pytest.fixture(scope="module")
def scripts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("scripts")
    (d / "small.py").write_text(SMALL_PY)
    (d / "slow.py").write_text(SLOW_PY)
    return d


def _admin(srv: ServerProcess, *args: str) -> str:
    done = subprocess.run(
        [str(BIN), "admin", *args], env=srv.env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"admin {args}: {done.stderr}"
    return done.stdout.strip()


@pytest.fixture(scope="module")
def service(cluster: SparkCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    base = tmp_path_factory.mktemp("standalone-server")
    srv = ServerProcess(base / "data")
    srv.env = {k: v for k, v in srv.env.items() if k == "PATH" or not k.startswith("MRS_JOBS_")}
    srv.env.update(
        HOME=str(base),
        MRS_JOBS_DATA_DIR=str(srv.data_dir),
        MRS_JOBS_HOST="127.0.0.1",
        MRS_JOBS_PORT="0",
        MRS_JOBS_POLL_INTERVAL="0.1",
        MRS_JOBS_KILL_GRACE_SECONDS="3",
    )
    srv.start()
    sets = [f"--set={k}={v}" for k, v in cluster.config(spark_deploy_mode="cluster").items()]
    cid = _admin(
        srv,
        "create-cluster",
        srv.bootstrap["project_id"],
        "--name",
        "standalone",
        "--kind",
        "spark-standalone",
        *sets,
        "--max-running",
        "4",
    )
    with sqlite3.connect(srv.data_dir / "mrs-jobs.db", timeout=10) as conn:
        kind, config = conn.execute(
            "SELECT kind, config FROM clusters WHERE id = ?", (cid,)
        ).fetchone()
    assert kind == "spark-standalone"
    assert json.loads(config)["spark_master"] == cluster.master_url
    svc = Service(srv, cid)
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


def _driver_of(svc: Service, job_id: str) -> str:
    return wait_until(
        f"the driver id of {job_id}", lambda: svc.row(job_id).get("launcher_id"), 60, 0.3
    )


# -- client deploy mode (PySpark) ---------------------------------------------------------------


def test_pyspark_client_mode_succeeds(service: Service, cluster: SparkCluster, scripts: Path):
    started = time.monotonic()
    job_id = service.submit([*SMALL, str(scripts / "small.py")], "small")
    detail = service.wait(job_id, {"FINISHED"}, JOB_TIMEOUT_S)
    TIMINGS["standalone client mode: small PySpark job, submit -> FINISHED"] = (
        time.monotonic() - started
    )
    assert detail.job_result == "SUCCEEDED" and detail.job_progress == 100
    assert detail.app_id.startswith("app-"), detail.app_id
    assert cluster.completed_apps()[detail.app_id]["name"] == "accept-small"
    log = service.log(job_id)
    assert "SMALL-SUM 5050" in log
    assert "Spark standalone runs Python applications in client deploy mode only" in log


def test_kill_client_mode_job(service: Service, cluster: SparkCluster, scripts: Path):
    job_id = service.submit([*SMALL, *ONE_CORE, str(scripts / "slow.py"), "2", "120"], "to-kill")
    service.wait(job_id, {"RUNNING"}, JOB_TIMEOUT_S)
    app_id = wait_until(
        "the app on the master",
        lambda: (a := service.show(job_id).app_id) and a in cluster.active_app_ids() and a,
        60,
        0.3,
    )
    at = time.monotonic()
    service.kill(job_id)
    detail = service.wait(job_id, {"KILLED"}, 60)
    TIMINGS["standalone client mode: kill -> KILLED"] = time.monotonic() - at
    assert detail.job_result == "KILLED"
    wait_until("the app to leave the master", lambda: app_id not in cluster.active_app_ids(), 30)
    assert cluster.completed_apps()[app_id]["state"] == "KILLED"
    wait_until("the job's processes to end", lambda: not marked_processes(job_id), 30)


# -- cluster deploy mode (jars) ------------------------------------------------------------------


def test_jar_cluster_mode_succeeds_with_progress(
    service: Service, cluster: SparkCluster, jar: Path
):
    started = time.monotonic()
    job_id = service.submit([*SMALL, "--class", "ProbeApp", str(jar), "sleep", "10"], "jar")
    driver = _driver_of(service, job_id)
    assert driver.startswith("driver-")
    progress: list[float] = []

    def watch() -> JobQueryBean | None:
        detail = service.show(job_id)
        progress.append(detail.job_progress)
        return detail if detail.job_state in DONE else None

    detail = wait_until(f"{job_id} to end", watch, JOB_TIMEOUT_S, 0.5)
    TIMINGS["standalone cluster mode: 10 s jar, submit -> FINISHED"] = time.monotonic() - started
    assert (detail.job_state, detail.job_result) == ("FINISHED", "SUCCEEDED"), service.row(job_id)
    assert detail.app_id.startswith("app-")
    assert cluster.completed_apps()[detail.app_id]["name"] == "probe-sleep"
    middle = [p for p in progress if 0 < p < 100]
    assert middle, f"no progress between 0 and 100 was shown: {progress}"
    assert progress == sorted(progress) and progress[-1] == 100
    assert service.row(job_id)["pid"] is not None  # the launcher ran, then exited


def test_failing_jar_cluster_mode_fails(service: Service, jar: Path):
    job_id = service.submit([*SMALL, "--class", "ProbeApp", str(jar), "fail", "2"], "bad-jar")
    detail = wait_until(
        f"{job_id} to end",
        lambda: (d := service.show(job_id)).job_state in DONE and d,
        JOB_TIMEOUT_S,
        0.5,
    )
    assert detail.job_result == "FAILED"
    assert detail.app_id.startswith("app-")
    assert "probe: deliberate failure" in service.row(job_id)["reason"]


def test_kill_cluster_mode_driver(service: Service, cluster: SparkCluster, jar: Path):
    job_id = service.submit([*SMALL, "--class", "ProbeApp", str(jar), "sleep", "300"], "kill-jar")
    service.wait(job_id, {"RUNNING"}, JOB_TIMEOUT_S)
    app_id = wait_until(
        "the driver's app on the master",
        lambda: (a := service.show(job_id).app_id) and a in cluster.active_app_ids() and a,
        90,
        0.3,
    )
    driver = service.row(job_id)["launcher_id"]
    at = time.monotonic()
    service.kill(job_id)
    detail = service.wait(job_id, {"KILLED"}, 60)
    TIMINGS["standalone cluster mode: kill -> KILLED"] = time.monotonic() - at
    assert detail.job_result == "KILLED"
    wait_until("the app to leave the master", lambda: app_id not in cluster.active_app_ids(), 30)
    drivers = {d["id"]: d["state"] for d in cluster.state()["completeddrivers"]}
    assert drivers[driver] == "KILLED"


# -- re-attach after kill -9 of the service ------------------------------------------------------


def test_restart_reattaches_both_modes(
    service: Service, cluster: SparkCluster, jar: Path, scripts: Path
):
    """kill -9 mid-job: the client-mode driver is found again by pid (not relaunched), the
    cluster-mode driver by its id; both end FINISHED/SUCCEEDED."""

    def counts() -> tuple[int, int]:
        state = cluster.state()
        apps = [a["name"] for a in state["activeapps"] + state["completedapps"]]
        return apps.count("accept-slow"), len(state["activedrivers"] + state["completeddrivers"])

    before = counts()
    py_job = service.submit([*SMALL, *ONE_CORE, str(scripts / "slow.py"), "4", "6"], "py-restart")
    jar_job = service.submit(
        [*SMALL, "--class", "ProbeApp", str(jar), "sleep", "20"], "jar-restart"
    )
    service.wait(py_job, {"RUNNING"}, JOB_TIMEOUT_S)
    service.wait(jar_job, {"RUNNING"}, JOB_TIMEOUT_S)
    py_pid = service.row(py_job)["pid"]
    driver = service.row(jar_job)["launcher_id"]
    py_procs = set(marked_processes(py_job))
    assert py_pid in py_procs and driver

    service.srv.stop(signal.SIGKILL)
    assert set(marked_processes(py_job)) >= {py_pid}  # the client-mode driver outlives it
    restarted = time.monotonic()
    service.srv.start()

    jar_detail = service.wait(jar_job, DONE, JOB_TIMEOUT_S)
    py_detail = service.wait(py_job, DONE, JOB_TIMEOUT_S)
    TIMINGS["standalone: restart -> both re-attached jobs FINISHED"] = time.monotonic() - restarted
    for detail, job_id in ((py_detail, py_job), (jar_detail, jar_job)):
        assert (detail.job_state, detail.job_result) == ("FINISHED", "SUCCEEDED"), (
            job_id,
            service.row(job_id),
            service.log(job_id)[-2000:],
        )
        assert detail.app_id.startswith("app-")
    assert service.row(py_job)["pid"] == py_pid  # re-attached, not relaunched
    assert service.row(jar_job)["launcher_id"] == driver
    assert "SLOW-SUM 6" in service.log(py_job)
    # one app and one driver more on the master: nothing was submitted twice
    assert counts() == (before[0] + 1, before[1] + 1)
