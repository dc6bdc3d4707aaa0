"""SparkSubmit on a Spark standalone cluster: the master client against recorded answers, the
build per deploy mode, and real runs on a master + two workers started by this module."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support_spark_cluster import SparkCluster, build_probe_jar, start_cluster, stop_cluster

from mrs_jobs.domain.clusterconfig import validate_cluster_config
from mrs_jobs.engines.base import ClusterSpec, JobSpec, LaunchSpec, RemoteStatus
from mrs_jobs.engines.java import find_java_home, find_spark_home
from mrs_jobs.engines.spark import SparkSubmitEngine
from mrs_jobs.engines.spark_standalone import (
    StandaloneClient,
    app_id_from_output,
    driver_id_from_output,
    rest_url_of,
    submit_master,
    ui_url_of,
)
from mrs_jobs.errors import InvalidParameter

REST = "http://master:6066"
UI = "http://master:8080"
WORKER_UI = "http://worker1:8081"
DRIVER = "driver-20261130003252-0000"
APP = "app-20261130003255-0001"
DRIVER_LOG_HEAD = f"""\
26/11/30 00:32:55 INFO JettyUtils: Start Jetty 127.0.0.1:4041 for SparkUI
26/11/30 00:32:55 INFO Utils: Successfully started service 'SparkUI' on port 4041.
26/11/30 00:32:55 INFO StandaloneSchedulerBackend: Connected to Spark cluster with app ID {APP}
"""
DRIVER_LOG_TAIL = """\
Exception in thread "main" java.lang.reflect.InvocationTargetException
\tat java.base/jdk.internal.reflect.NativeMethodAccessorImpl.invoke0(Native Method)
Caused by: java.lang.IllegalStateException: probe: deliberate failure
\tat ProbeApp.main(ProbeApp.java:21)
"""
MASTER_JSON = {
    "url": "spark://master:7077",
    "workers": [{"id": "worker-1", "host": "worker1", "webuiaddress": WORKER_UI, "state": "ALIVE"}],
    "activeapps": [{"id": APP, "name": "probe-sleep", "state": "RUNNING"}],
    "completedapps": [{"id": "app-20261130003206-0000", "state": "FINISHED"}],
    "activedrivers": [{"id": DRIVER, "state": "RUNNING", "worker": "worker-1"}],
    "completeddrivers": [],
    "status": "ALIVE",
}
MASTER_PAGE = f"""<form action="app/kill/" method="POST" class="d-inline">
<input type="hidden" name="id" value="{APP}"/>
<input type="hidden" name="terminate" value="true"/>
<input type="hidden" name="csrfToken" value="ed2447977e7995dacafdf2a510540ae2"/>
</form>"""


def status_body(state: str | None) -> dict:
    """The REST server's SubmissionStatusResponse as Spark 4.3 sends it."""
    if state is None:
        return {
            "action": "SubmissionStatusResponse",
            "serverSparkVersion": "4.3.0",
            "submissionId": DRIVER,
            "success": False,
        }
    return {
        "action": "SubmissionStatusResponse",
        "driverState": state,
        "serverSparkVersion": "4.3.0",
        "submissionId": DRIVER,
        "success": True,
        "workerHostPort": "worker1:34679",
        "workerId": "worker-1",
    }


class FakeMaster:
    """Answers as a standalone master, its REST server and a worker UI do; records requests."""

    def __init__(self, driver_state: str | None = "RUNNING") -> None:
        self.driver_state = driver_state
        self.requests: list[httpx.Request] = []
        self.jobs = [{"status": "RUNNING", "numTasks": 8, "numCompletedTasks": 2}]
        self.down = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        url = str(request.url)
        path = request.url.path
        if url.startswith(REST) and path == f"/v1/submissions/status/{DRIVER}":
            return httpx.Response(200, json=status_body(self.driver_state))
        if url.startswith(REST) and path == f"/v1/submissions/kill/{DRIVER}":
            assert request.method == "POST"
            return httpx.Response(200, json={"action": "KillSubmissionResponse", "success": True})
        if url.startswith(UI) and path == "/json/":
            return httpx.Response(200, json=MASTER_JSON)
        if url.startswith(UI) and path == "/":
            return httpx.Response(200, text=MASTER_PAGE)
        if url.startswith(UI) and path == "/app/kill/":
            form = dict(x.split("=", 1) for x in request.content.decode().split("&"))
            if form.get("csrfToken") != "ed2447977e7995dacafdf2a510540ae2":
                return httpx.Response(403, text="Missing or invalid CSRF token")
            assert form["id"] == APP and form["terminate"] == "true"
            return httpx.Response(302, headers={"Location": "/"})
        if url.startswith(WORKER_UI) and path == "/log/":
            assert request.url.params["driverId"] == DRIVER
            assert request.url.params["logType"] == "stderr"
            head = request.url.params.get("offset") == "0"
            return httpx.Response(200, text=DRIVER_LOG_HEAD if head else DRIVER_LOG_TAIL)
        if url == f"http://worker1:4041/api/v1/applications/{APP}/jobs":
            return httpx.Response(200, json=self.jobs)
        return httpx.Response(404, text="not found")


def client(fake: FakeMaster) -> StandaloneClient:
    return StandaloneClient(REST, UI, transport=httpx.MockTransport(fake))


# ------------------------------------------------------------------------ client, recorded


@pytest.mark.parametrize(
    ("raw", "state"),
    [
        ("SUBMITTED", "pending"),
        ("RELAUNCHING", "pending"),
        ("RUNNING", "running"),
        ("FINISHED", "succeeded"),
        ("FAILED", "failed"),
        ("ERROR", "failed"),
        ("KILLED", "killed"),
        ("UNKNOWN", "unknown"),
        (None, "unknown"),
    ],
)
def test_driver_states_map(raw, state):
    assert client(FakeMaster(raw)).status(DRIVER).state == state  # type: ignore[union-attr]


def test_running_driver_gives_app_ui_and_progress():
    fake = FakeMaster("RUNNING")
    st = client(fake).status(DRIVER)
    assert st == RemoteStatus(
        state="running", app_id=APP, tracking_url="http://worker1:4041", progress=25.0
    )


def test_failed_driver_message_from_its_log():
    st = client(FakeMaster("FAILED")).status(DRIVER, app_id=APP)
    assert st is not None and st.terminal and st.state == "failed"
    assert st.app_id == APP
    assert st.message == (
        f"Spark driver {DRIVER} ended FAILED: "
        "java.lang.IllegalStateException: probe: deliberate failure"
    )


def test_unreachable_master_is_none_never_raises():
    fake = FakeMaster()
    fake.down = True
    c = client(fake)
    assert c.status(DRIVER) is None
    assert c.kill_driver(DRIVER) is False
    assert c.kill_app(APP) is False
    assert c.master_state() is None


def test_kill_driver_and_app_requests():
    fake = FakeMaster()
    c = client(fake)
    assert c.kill_driver(DRIVER) is True
    assert c.kill_app(APP) is True  # with the CSRF token of the master's own page
    assert c.kill_app("app-20261130003206-0000") is False  # not active: nothing posted
    posts = [(r.method, r.url.path) for r in fake.requests if r.method == "POST"]
    assert posts == [("POST", f"/v1/submissions/kill/{DRIVER}"), ("POST", "/app/kill/")]
    assert c.kill_driver("../etc") is False  # ids are never spliced into paths unchecked


def test_ids_from_output_and_urls():
    out = (
        "INFO RestSubmissionClient: Submission successfully created as "
        f"{DRIVER}. Polling submission state...\n"
    )
    assert driver_id_from_output(out) == DRIVER
    assert driver_id_from_output("nothing") is None
    assert app_id_from_output(DRIVER_LOG_HEAD) == APP
    cluster = ClusterSpec("c", kind="spark-standalone", spark_master="spark://m1:7077,m2:7077")
    assert rest_url_of(cluster) == "http://m1:6066"
    assert ui_url_of(cluster) == "http://m1:8080"
    assert submit_master("http://127.0.0.1:16066/") == "spark://127.0.0.1:16066"


# ------------------------------------------------------------------------------- build


def job(arguments: list[str], job_id: str = "job-1", **props: str) -> JobSpec:
    return JobSpec(job_id, "SparkSubmit", "t", arguments, dict(props))


def confs(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--conf"]


def standalone(**extra: str) -> ClusterSpec:
    return ClusterSpec(
        "c",
        kind="spark-standalone",
        spark_master="spark://10.0.0.5:7077",
        extra={"spark_rest_url": "http://10.0.0.5:16066", **extra},
    )


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    py, jar = tmp_path / "app.py", tmp_path / "app.jar"
    py.write_text("print(1)\n")
    jar.write_bytes(b"PK")
    return py, jar


def test_build_standalone_client_mode(files, tmp_path):
    py, jar = files
    for app in (py, jar):
        spec = SparkSubmitEngine().build(job([str(app)]), standalone(), tmp_path / app.suffix)
        assert spec.argv[1:5] == ["--master", "spark://10.0.0.5:7077", "--deploy-mode", "client"]
        assert not spec.detached
        assert any(c.startswith("spark.eventLog.dir=") for c in confs(spec.argv))
        info = json.loads((tmp_path / app.suffix / "engine.json").read_text())
        assert info["kind"] == "spark-standalone" and info["deploy_mode"] == "client"
        assert info["ui_url"] == "http://10.0.0.5:8080"


def test_build_standalone_cluster_mode_for_jars(files, tmp_path):
    py, jar = files
    engine = SparkSubmitEngine()
    for cluster, args in (
        (standalone(spark_deploy_mode="cluster"), ["--class", "A", str(jar)]),
        (standalone(), ["--deploy-mode", "cluster", "--class", "A", str(jar)]),
    ):
        wd = tmp_path / str(len(args))
        spec = engine.build(job(args), cluster, wd)
        assert spec.argv[1:5] == ["--master", "spark://10.0.0.5:16066", "--deploy-mode", "cluster"]
        assert spec.argv.count("--deploy-mode") == 1
        assert spec.detached
        c = confs(spec.argv)
        assert "spark.master.rest.enabled=true" in c
        assert "spark.standalone.submit.waitAppCompletion=false" in c
        # Nothing of this host's job directory is handed to a driver on another host.
        assert not any(
            x.startswith(("spark.eventLog", "spark.ui.port", "spark.driver.default")) for x in c
        )
        info = json.loads((wd / "engine.json").read_text())
        assert info["deploy_mode"] == "cluster" and info["rest_url"] == "http://10.0.0.5:16066"
        assert "ui_port" not in info
    # A job may ask for client mode on a cluster-mode cluster; waitAppCompletion is ours.
    spec = engine.build(
        job(["--deploy-mode", "client", "--conf", "spark.master.rest.enabled=false", str(jar)]),
        standalone(spark_deploy_mode="cluster"),
        tmp_path / "c",
    )
    assert spec.argv[4] == "client" and not spec.detached
    assert "spark.master.rest.enabled=false" not in confs(spec.argv)


def test_build_standalone_python_stays_in_client_mode(files, tmp_path):
    py, _ = files
    spec = SparkSubmitEngine().build(
        job(["--deploy-mode", "cluster", str(py)]),
        standalone(spark_deploy_mode="cluster"),
        tmp_path,
    )
    assert spec.argv[1:5] == ["--master", "spark://10.0.0.5:7077", "--deploy-mode", "client"]
    assert not spec.detached
    assert "Spark standalone runs Python applications in client deploy mode only" in spec.notes
    assert "replaced --deploy-mode cluster with client" in spec.notes


def test_build_refuses_bad_modes(files, tmp_path):
    from mrs_jobs.engines.base import EngineRefused

    _, jar = files
    with pytest.raises(EngineRefused, match="client or cluster"):
        SparkSubmitEngine().build(job(["--deploy-mode", "x", str(jar)]), standalone(), tmp_path)
    # A cluster's own mode is checked once, when its config is saved.
    with pytest.raises(InvalidParameter, match="spark_deploy_mode"):
        validate_cluster_config(
            "spark-standalone", {"spark_master": "spark://h:7077", "spark_deploy_mode": "y"}
        )
    bad = ClusterSpec("c", kind="spark-standalone", spark_master="local[2]")
    with pytest.raises(EngineRefused, match="spark://"):
        SparkSubmitEngine().build(job([str(jar)]), bad, tmp_path)


def test_status_and_cancel_by_ids_in_the_workdir(files, tmp_path, monkeypatch):
    """status()/cancel() work from the job directory alone (as after a restart)."""
    _, jar = files
    engine = SparkSubmitEngine()
    wd = tmp_path / "wd"
    launch = engine.build(
        job(["--class", "A", str(jar)]), standalone(spark_deploy_mode="cluster"), wd
    )
    (wd / "stderr.log").write_text(f"Submission successfully created as {DRIVER}.\n")
    obs = engine.observe(job([]), wd, launch)
    assert obs.launcher_id == DRIVER and obs.app_id is None and not obs.running
    fake = FakeMaster("RUNNING")
    made: list[tuple[str, str]] = []

    def fake_client(rest: str, ui: str, **kw: object) -> StandaloneClient:
        made.append((rest, ui))
        return StandaloneClient(REST, UI, transport=httpx.MockTransport(fake))

    monkeypatch.setattr("mrs_jobs.engines.spark_kinds.StandaloneClient", fake_client)
    fresh = SparkSubmitEngine()  # nothing in memory from build()
    st = fresh.status(job([]), wd, launch, None, DRIVER)
    assert st is not None and st.state == "running" and st.app_id == APP
    assert made == [("http://10.0.0.5:16066", "http://10.0.0.5:8080")]
    assert fresh.cancel(job([]), wd, launch) is True
    assert any(r.url.path == f"/v1/submissions/kill/{DRIVER}" for r in fake.requests)
    fake.down = True
    assert fresh.status(job([]), wd, launch, APP, DRIVER) is None


# ----------------------------------------------------------------------- real cluster

needs_spark = pytest.mark.skipif(
    find_java_home() is None or find_spark_home() is None, reason="Java or Spark not found"
)
RUN_TIMEOUT_S = 150.0
SMALL = """\
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("standalone-small").getOrCreate()
print("SUM", spark.sparkContext.parallelize(range(1, 101), 2).sum())
spark.stop()
"""
FAILING = """\
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("standalone-failing").getOrCreate()
spark.sparkContext.parallelize(range(4), 2).count()
raise RuntimeError("standalone: deliberate failure")
"""
LONG = """\
import time
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("standalone-long").getOrCreate()
spark.sparkContext.parallelize(range(2), 2).map(lambda x: time.sleep(120) or x).collect()
"""
# Small executors and drivers so that a cluster-mode driver and an executor fit on 2 x 1 GB.
SMALL_MEMORY = ["--conf", "spark.executor.memory=512m", "--conf", "spark.driver.memory=512m"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkCluster]:
    c = start_cluster(tmp_path_factory.mktemp("standalone"))
    print(f"standalone master + 2 workers up in {c.startup_s:.1f} s")
    try:
        yield c
    finally:
        stop_cluster(c)


@pytest.fixture(scope="module")
def probe_jar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_probe_jar(tmp_path_factory.mktemp("probe"))


def spec_of(c: SparkCluster, **extra: str) -> ClusterSpec:
    return ClusterSpec(
        "c", kind="spark-standalone", spark_master=c.master_url, extra=c.config(**extra)
    )


class Run:
    """One launch as the supervisor's shim runs it: its own session, logs in the workdir."""

    def __init__(self, engine: SparkSubmitEngine, j: JobSpec, cluster: ClusterSpec, wd: Path):
        self.engine, self.job, self.wd = engine, j, wd
        self.launch: LaunchSpec = engine.build(j, cluster, wd)
        with open(wd / "stdout.log", "wb") as out, open(wd / "stderr.log", "wb") as err:
            self.proc = subprocess.Popen(
                self.launch.argv,
                env=self.launch.env,
                cwd=self.launch.cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        self.started = time.monotonic()

    def wait_launcher(self, poll: list | None = None) -> int:
        deadline = self.started + RUN_TIMEOUT_S
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                self.kill_group()
                pytest.fail(f"spark-submit did not end:\n{self.logs()[-3000:]}")
            if poll is not None:
                poll.append(self.engine.observe(self.job, self.wd, self.launch))
            time.sleep(0.3)
        return self.proc.returncode

    def kill_group(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        self.proc.wait(10)

    def logs(self) -> str:
        return (self.wd / "stdout.log").read_text() + (self.wd / "stderr.log").read_text()

    def follow(self, driver: str, seen: list[RemoteStatus]) -> RemoteStatus:
        """status() once a second until terminal, as the supervisor does."""
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while time.monotonic() < deadline:
            st = self.engine.status(self.job, self.wd, self.launch, None, driver)
            if st is not None:
                seen.append(st)
                if st.terminal:
                    return st
            time.sleep(1.0)
        pytest.fail(f"driver {driver} did not end; last: {seen[-1:]}")


def wait_for(what: str, probe, timeout: float = 90.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = probe()
        if got:
            return got
        time.sleep(0.3)
    pytest.fail(f"timed out waiting for {what}")


@pytest.mark.spark
@needs_spark
def test_pyspark_client_mode_on_the_master(cluster, tmp_path):
    app = tmp_path / "small.py"
    app.write_text(SMALL)
    run = Run(
        SparkSubmitEngine(), job([*SMALL_MEMORY, str(app)]), spec_of(cluster), tmp_path / "wd"
    )
    seen: list = []
    rc = run.wait_launcher(seen)
    assert rc == 0, run.logs()[-3000:]
    assert "SUM 5050" in run.logs()
    final = run.engine.observe(run.job, run.wd, run.launch)
    assert final.app_id is not None and final.app_id.startswith("app-"), final
    # the app id is the master's: it lists that app as finished
    completed = cluster.completed_apps()
    assert completed[final.app_id]["state"] == "FINISHED"
    assert completed[final.app_id]["name"] == "standalone-small"


@pytest.mark.spark
@needs_spark
def test_failing_pyspark_client_mode(cluster, tmp_path):
    app = tmp_path / "failing.py"
    app.write_text(FAILING)
    run = Run(
        SparkSubmitEngine(), job([*SMALL_MEMORY, str(app)]), spec_of(cluster), tmp_path / "wd"
    )
    assert run.wait_launcher() != 0
    assert "RuntimeError: standalone: deliberate failure" in run.logs()
    obs = run.engine.observe(run.job, run.wd, run.launch)
    assert obs.app_id in cluster.completed_apps()


@pytest.mark.spark
@needs_spark
def test_kill_client_mode_app_leaves_the_master(cluster, tmp_path):
    app = tmp_path / "long.py"
    app.write_text(LONG)
    run = Run(
        SparkSubmitEngine(), job([*SMALL_MEMORY, str(app)]), spec_of(cluster), tmp_path / "wd"
    )
    try:
        app_id = wait_for(
            "the app to run on the master",
            lambda: (o := run.engine.observe(run.job, run.wd, run.launch)).app_id
            and o.app_id in cluster.active_app_ids()
            and o.app_id,
        )
        # as the supervisor does: cancel() in the engine, then the process group
        assert run.engine.cancel(run.job, run.wd, run.launch) is True
        run.kill_group()
        wait_for(
            "the app to leave the active apps", lambda: app_id not in cluster.active_app_ids(), 30
        )
        assert cluster.completed_apps()[app_id]["state"] == "KILLED"
    finally:
        run.kill_group()


@pytest.mark.spark
@needs_spark
def test_jar_in_cluster_mode_succeeds_with_rising_progress(cluster, probe_jar, tmp_path):
    c = spec_of(cluster, spark_deploy_mode="cluster")
    run = Run(
        SparkSubmitEngine(),
        job([*SMALL_MEMORY, "--class", "ProbeApp", str(probe_jar), "sleep", "8"]),
        c,
        tmp_path / "wd",
    )
    assert run.launch.detached
    observed: list = []
    rc = run.wait_launcher(observed)
    launcher_s = time.monotonic() - run.started
    assert rc == 0, run.logs()[-3000:]
    obs = run.engine.observe(run.job, run.wd, run.launch)
    driver = obs.launcher_id
    assert driver is not None and driver.startswith("driver-"), run.logs()[-2000:]
    seen: list[RemoteStatus] = []
    # a fresh engine: nothing kept in memory from build() (as after a restart)
    run.engine = SparkSubmitEngine()
    final = run.follow(driver, seen)
    total_s = time.monotonic() - run.started
    progress = [s.progress for s in seen if s.progress is not None]
    print(f"launcher exited after {launcher_s:.1f} s; driver ended after {total_s:.1f} s;")
    print(f"progress seen: {progress}")
    assert final.state == "succeeded", (final, cluster.log_tail())
    assert final.app_id is not None and final.app_id.startswith("app-")
    assert cluster.completed_apps()[final.app_id]["name"] == "probe-sleep"
    assert any(s.state == "running" for s in seen)
    assert len(set(progress)) >= 2 and progress == sorted(progress), progress
    assert max(progress) > 0


@pytest.mark.spark
@needs_spark
def test_failing_jar_in_cluster_mode_fails(cluster, probe_jar, tmp_path):
    c = spec_of(cluster, spark_deploy_mode="cluster")
    run = Run(
        SparkSubmitEngine(),
        job([*SMALL_MEMORY, "--class", "ProbeApp", str(probe_jar), "fail", "2"]),
        c,
        tmp_path / "wd",
    )
    assert run.wait_launcher() == 0  # accepted: the failure is the driver's
    driver = run.engine.observe(run.job, run.wd, run.launch).launcher_id
    assert driver is not None
    final = run.follow(driver, [])
    assert final.state == "failed"
    assert final.message is not None and "probe: deliberate failure" in final.message
    assert final.app_id is not None and final.app_id.startswith("app-")


@pytest.mark.spark
@needs_spark
def test_kill_cluster_mode_driver(cluster, probe_jar, tmp_path):
    c = spec_of(cluster, spark_deploy_mode="cluster")
    run = Run(
        SparkSubmitEngine(),
        job([*SMALL_MEMORY, "--class", "ProbeApp", str(probe_jar), "sleep", "300"]),
        c,
        tmp_path / "wd",
    )
    assert run.wait_launcher() == 0
    driver = run.engine.observe(run.job, run.wd, run.launch).launcher_id
    assert driver is not None
    running = wait_for(
        "the driver's app to run",
        lambda: (st := run.engine.status(run.job, run.wd, run.launch, None, driver))
        and st.state == "running"
        and st.app_id
        and st,
    )
    assert running.app_id in cluster.active_app_ids()
    assert run.engine.cancel(run.job, run.wd, run.launch) is True
    final = run.follow(driver, [])
    assert final.state == "killed"
    wait_for(
        "the app to leave the master", lambda: running.app_id not in cluster.active_app_ids(), 30
    )


def test_client_mode_driver_address(files, tmp_path):
    """A client-mode driver binds to loopback only when the master is on loopback too."""
    py, _ = files
    remote = SparkSubmitEngine().build(job([str(py)]), standalone(), tmp_path / "r")
    assert "SPARK_LOCAL_IP" not in remote.env
    assert remote.env["PYSPARK_PYTHON"]  # the driver is here: this host's Python
    local = ClusterSpec("c", kind="spark-standalone", spark_master="spark://127.0.0.1:7077")
    spec = SparkSubmitEngine().build(job([str(py)]), local, tmp_path / "l")
    assert spec.env["SPARK_LOCAL_IP"] == "127.0.0.1"
