"""Flink jobs on a remote session cluster: detached ``flink run -d -t remote``, then state,
progress, failure cause and cancel through the jobmanager's REST API.

Unit tests answer from a fake jobmanager (the JSON shapes of Flink 1.x and 2.x); the ``flink``
tests start a real standalone cluster (``start-cluster.sh`` of the installed Flink, a free REST
port, never 8081) once for the module and run real jobs on it.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support_flink_cluster import FlinkCluster, build_remote_jar

from mrs_jobs.engines.base import ClusterSpec, JobSpec, LaunchSpec, RemoteStatus
from mrs_jobs.engines.flink import FlinkEngine
from mrs_jobs.engines.flink_rest import STATES, failure_message
from mrs_jobs.engines.install import EngineInstallError, install_flink
from mrs_jobs.engines.java import find_java_home

REPO = Path(__file__).resolve().parents[2]
ENGINES_DIR = Path(os.environ.get("MRS_JOBS_TEST_ENGINES_DIR", str(REPO / ".cache" / "engines")))
IN_CI = os.environ.get("CI", "").lower() == "true"
JOB_ID_RE = re.compile(r"[0-9a-f]{32}")
JID = "ab" * 16
needs_java = pytest.mark.skipif(find_java_home() is None, reason="no Java")

# A stack trace as Flink 2.x reports a failed task: the cause is the deepest "Caused by".
TRACE = (
    "org.apache.flink.runtime.JobException: Recovery is suppressed by "
    "NoRestartBackoffTimeStrategy\n\tat org.apache.flink.runtime.Foo.bar(Foo.java:1)\n"
    "Caused by: java.lang.RuntimeException: wrapper\n\tat x.Y.z(Y.java:2)\n"
    "Caused by: java.lang.IllegalStateException: disk   full\n\tat MrsRemote.main(M.java:3)\n"
)


def job(arguments: list[str]) -> JobSpec:
    return JobSpec(job_id="j1", job_type="Flink", job_name="t", arguments=arguments, properties={})


@pytest.fixture
def fake_home(tmp_path: Path) -> Path:
    home = tmp_path / "flink"
    for d in ("bin", "lib", "conf"):
        (home / d).mkdir(parents=True)
    (home / "bin" / "flink").write_text("#!/bin/sh\nexit 0\n")
    (home / "bin" / "flink").chmod(0o755)
    (home / "conf" / "config.yaml").write_text("parallelism:\n  default: 1\n")
    return home


@pytest.fixture
def jar(tmp_path: Path) -> Path:
    p = tmp_path / "in" / "app.jar"
    p.parent.mkdir()
    p.write_bytes(b"PK\x03\x04")
    return p


class FakeJobManager:
    """``/jobs/<id>``, ``/jobs/<id>/exceptions`` and ``PATCH ?mode=cancel`` from a dict."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict] = {}
        self.exceptions: dict[str, dict] = {}
        self.fail_with: int | None = None  # answer every request with this status
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def _send(self, code: int, body: object) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802
                outer.requests.append(f"GET {self.path}")
                if outer.fail_with:
                    return self._send(outer.fail_with, {"errors": ["busy"]})
                parts = self.path.strip("/").split("/")
                if len(parts) == 2 and parts[1] in outer.jobs:
                    return self._send(200, outer.jobs[parts[1]])
                if len(parts) == 3 and parts[2] == "exceptions" and parts[1] in outer.exceptions:
                    return self._send(200, outer.exceptions[parts[1]])
                self._send(404, {"errors": ["not found"]})

            def do_PATCH(self):  # noqa: N802
                outer.requests.append(f"PATCH {self.path}")
                jid = self.path.strip("/").split("/")[1].split("?")[0]
                if self.path.endswith("?mode=cancel") and jid in outer.jobs:
                    outer.jobs[jid]["state"] = "CANCELLING"
                    return self._send(202, {})
                self._send(404, {"errors": ["not found"]})

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.address = f"127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def set(self, jid: str, state: str, vertices: list[dict] | None = None) -> None:
        self.jobs[jid] = {"jid": jid, "state": state, "vertices": vertices or []}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def fake_jm() -> Iterator[FakeJobManager]:
    jm = FakeJobManager()
    yield jm
    jm.close()


def _remote_launch(engine: FlinkEngine, jar: Path, wd: Path, jm: str) -> LaunchSpec:
    cluster = ClusterSpec(cluster_id="c", kind="flink-remote", extra={"flink_jobmanager": jm})
    return engine.build(job(["run", str(jar)]), cluster, wd)


# ----------------------------------------------------------------------------------- unit


def test_failure_message_forms():
    # Flink 2.x: only the exception history (newest first)
    v2 = {"exceptionHistory": {"entries": [{"exceptionName": "x", "stacktrace": TRACE}]}}
    assert failure_message(v2) == "java.lang.IllegalStateException: disk full"
    # Flink 1.x: root-exception
    assert failure_message({"root-exception": "java.io.IOException: gone\n\tat a.B(B.java)"}) == (
        "java.io.IOException: gone"
    )
    long = {"root-exception": "Caused by: java.lang.Error: " + "x" * 2000}
    message = failure_message(long)
    assert message is not None and len(message) == 500 and message.endswith("...")
    for empty in (None, [], {}, {"exceptionHistory": {"entries": []}}, {"root-exception": " "}):
        assert failure_message(empty) is None


def test_every_flink_state_is_mapped():
    # the JobStatus values of Flink 1.18-2.x
    flink = "INITIALIZING CREATED RUNNING FAILING FAILED CANCELLING CANCELED FINISHED "
    flink += "RESTARTING SUSPENDED RECONCILING"
    assert set(STATES) == set(flink.split())
    terminal = {k for k, v in STATES.items() if RemoteStatus(v).terminal}
    assert terminal == {"FINISHED", "FAILED", "CANCELED"}


@needs_java
@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ("INITIALIZING", "pending"),
        ("CREATED", "pending"),
        ("RUNNING", "running"),
        ("RESTARTING", "running"),
        ("CANCELLING", "running"),
        ("FINISHED", "succeeded"),
        ("CANCELED", "killed"),
        ("FAILED", "failed"),
        ("SOMETHING_NEW", "pending"),
    ],
)
def test_status_maps_states(fake_home, jar, tmp_path, fake_jm, state, expected):
    engine = FlinkEngine(flink_home=str(fake_home))
    wd = tmp_path / "wd"
    launch = _remote_launch(engine, jar, wd, fake_jm.address)
    fake_jm.set(JID, state, [{"parallelism": 4, "tasks": {"FINISHED": 1, "RUNNING": 3}}])
    fake_jm.exceptions[JID] = {"exceptionHistory": {"entries": [{"stacktrace": TRACE}]}}
    st = engine.status(job([]), wd, launch, JID, None)
    assert st is not None and st.state == expected and st.app_id == JID
    if expected == "failed":
        assert st.message == "Flink job FAILED: java.lang.IllegalStateException: disk full"
    elif expected == "killed":
        assert st.message == "the Flink job was cancelled"
    else:
        assert st.message is None
    assert st.progress == (100.0 if expected == "succeeded" else 25.0)
    page = "completed" if st.terminal else "running"
    assert st.tracking_url == f"http://{fake_jm.address}/#/job/{page}/{JID}/overview"


@needs_java
def test_status_unknown_unreachable_and_errors(fake_home, jar, tmp_path, fake_jm):
    engine = FlinkEngine(flink_home=str(fake_home))
    wd = tmp_path / "wd"
    launch = _remote_launch(engine, jar, wd, fake_jm.address)
    # the client printed nothing: nothing to follow
    st = engine.status(job([]), wd, launch, None, None)
    assert st is not None and st.state == "unknown" and "no job id" in (st.message or "")
    # the jobmanager does not know the job (expired from its job store, or never there)
    st = engine.status(job([]), wd, launch, JID, None)
    assert st is not None and st.state == "unknown" and JID in (st.message or "")
    # answering errors: not a verdict, ask again
    fake_jm.set(JID, "RUNNING")
    fake_jm.fail_with = 503
    assert engine.status(job([]), wd, launch, JID, None) is None
    fake_jm.fail_with = None
    assert engine.status(job([]), wd, launch, JID, None).state == "running"
    # a failed job whose exceptions cannot be read still fails, with the state as reason
    fake_jm.set(JID, "FAILED")
    assert engine.status(job([]), wd, launch, JID, None).message == "Flink job FAILED"
    # nothing listening: None, quickly
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    launch = _remote_launch(engine, jar, tmp_path / "wd2", f"127.0.0.1:{port}")
    t0 = time.monotonic()
    assert engine.status(job([]), tmp_path / "wd2", launch, JID, None) is None
    assert time.monotonic() - t0 < 1.0


@needs_java
def test_status_reattaches_from_recorded_id_or_workdir(fake_home, jar, tmp_path, fake_jm):
    """After a restart: a new engine object, the launch read back, maybe no log at all."""
    wd = tmp_path / "wd"
    launch = _remote_launch(FlinkEngine(flink_home=str(fake_home)), jar, wd, fake_jm.address)
    fake_jm.set(JID, "RUNNING")
    other = "cd" * 16
    fake_jm.set(other, "FINISHED")
    fresh = FlinkEngine(flink_home=str(fake_home))
    # the recorded app id wins; the jobmanager comes from the argv
    assert fresh.status(job([]), wd, launch, JID, None).state == "running"
    # ... or from engine.json when the launch record has no argv
    bare = LaunchSpec(argv=[], env={}, cwd=str(wd), detached=True)
    assert fresh.status(job([]), wd, bare, JID, None).state == "running"
    # no recorded id: the one the client printed
    (wd / "stdout.log").write_text(f"Job has been submitted with JobID {other}\n")
    assert FlinkEngine().status(job([]), wd, bare, None, None).state == "succeeded"
    # a recorded id that is not a Flink job id is not sent to the jobmanager
    fake_jm.requests.clear()
    assert fresh.status(job([]), wd, launch, "../../x", None).app_id == other
    assert all("x" not in r.split("/jobs/")[1] for r in fake_jm.requests)


@needs_java
def test_failure_message_masks_the_jobs_secrets(fake_home, jar, tmp_path, fake_jm):
    engine = FlinkEngine(flink_home=str(fake_home))
    cluster = ClusterSpec(cluster_id="c", extra={"flink_jobmanager": fake_jm.address})
    spec = JobSpec(
        job_id="j1",
        job_type="Flink",
        job_name="t",
        arguments=["run", "-Ds3.secret-key=Sekr1tValue", "-D", "my.password=hunter22", str(jar)],
        properties={"fs.obs.secret.key": "OBS-SECRET", "plain": "visible"},
    )
    wd = tmp_path / "wd"
    launch = engine.build(spec, cluster, wd)
    fake_jm.set(JID, "FAILED")
    fake_jm.exceptions[JID] = {
        "root-exception": "java.io.IOException: login Sekr1tValue/hunter22 OBS-SECRET visible"
    }
    st = engine.status(spec, wd, launch, JID, None)
    assert st is not None and st.state == "failed"
    assert st.message == "Flink job FAILED: java.io.IOException: login ***/*** *** visible"


@needs_java
def test_local_launch_has_no_remote_status(fake_home, jar, tmp_path):
    engine = FlinkEngine(flink_home=str(fake_home))
    launch = engine.build(job(["run", str(jar)]), ClusterSpec(cluster_id="c"), tmp_path)
    assert not launch.detached
    assert engine.status(job([]), tmp_path, launch, JID, None) is None


@needs_java
def test_observe_and_cancel_detached(fake_home, jar, tmp_path, fake_jm):
    engine = FlinkEngine(flink_home=str(fake_home))
    wd = tmp_path / "wd"
    launch = _remote_launch(engine, jar, wd, fake_jm.address)
    assert launch.detached and launch.argv[1:3] == ["run", "-d"]
    (wd / "stdout.log").write_text(f"Job has been submitted with JobID {JID}\n")
    fake_jm.set(JID, "INITIALIZING")
    obs = engine.observe(job([]), wd, launch)
    assert obs.app_id == JID and not obs.running  # accepted, not scheduled yet
    fake_jm.set(JID, "RUNNING", [{"parallelism": 2, "tasks": {"FINISHED": 1}}])
    obs = engine.observe(job([]), wd, launch)
    assert obs.app_id == JID and obs.running and obs.progress == 50.0
    # cancel reads the id from the workdir (a fresh engine: after a restart)
    assert FlinkEngine().cancel(job([]), wd, launch) is True
    assert f"PATCH /jobs/{JID}?mode=cancel" in fake_jm.requests
    assert engine.status(job([]), wd, launch, JID, None).state == "running"  # CANCELLING
    fake_jm.jobs.clear()
    assert engine.cancel(job([]), wd, launch) is False  # gone: not accepted


# ------------------------------------------------------------------------- real cluster


@pytest.fixture(scope="module")
def flink_home() -> str:
    if find_java_home() is None:
        pytest.skip("no Java")
    try:
        return str(install_flink(ENGINES_DIR))
    except EngineInstallError as e:
        if e.network and not IN_CI:
            pytest.skip(f"Flink could not be downloaded: {e}")
        raise


@pytest.fixture(scope="module")
def cluster(flink_home: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlinkCluster]:
    c = FlinkCluster.start(flink_home, tmp_path_factory.mktemp("flink-cluster"))
    print(f"Flink cluster up in {c.startup_s:.1f} s at {c.address}")
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def remote_jar(flink_home: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    built = build_remote_jar(flink_home, tmp_path_factory.mktemp("remote-jar"))
    if built is None:
        pytest.skip("no JDK (javac/jar)")
    return built


@pytest.fixture(scope="module")
def engine(flink_home: str) -> FlinkEngine:
    return FlinkEngine(flink_home=flink_home)


def _spec(cluster: FlinkCluster) -> ClusterSpec:
    return ClusterSpec(
        cluster_id="c", kind="flink-remote", extra={"flink_jobmanager": cluster.address}
    )


def _submit(engine: FlinkEngine, cluster: FlinkCluster, args: list[str], wd: Path):
    """Run the launcher as the supervisor's shim does; return (rc, seconds, launch)."""
    launch = engine.build(job(["run", *args]), _spec(cluster), wd)
    assert launch.detached
    t0 = time.monotonic()
    with open(wd / "stdout.log", "ab") as out, open(wd / "stderr.log", "ab") as err:
        proc = subprocess.Popen(
            launch.argv,
            env=launch.env,
            cwd=launch.cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    try:
        rc = proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail(f"flink run -d did not exit: {(wd / 'stderr.log').read_text()}")
    return rc, time.monotonic() - t0, launch


def _follow(engine, wd, launch, app_id, timeout=90.0, until=None) -> list[RemoteStatus]:
    """status() once a second, as the supervisor does, until terminal (or ``until``)."""
    seen: list[RemoteStatus] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = engine.status(job([]), wd, launch, app_id, None)
        if st is not None:
            seen.append(st)
            if st.terminal or st.state == "unknown" or (until and until(st)):
                return seen
        time.sleep(0.5)
    pytest.fail(f"no terminal status in {timeout} s: {seen[-3:]}")


@pytest.mark.flink
@pytest.mark.timeout(600)
def test_real_job_finishes_with_flink_job_id(engine, cluster, remote_jar, tmp_path):
    wd = tmp_path / "sum"
    rc, took, launch = _submit(engine, cluster, [str(remote_jar), "sum"], wd)
    assert rc == 0, (wd / "stderr.log").read_text()
    print(f"flink run -d exited after {took:.1f} s")
    obs = engine.observe(job([]), wd, launch)
    assert obs.app_id and JOB_ID_RE.fullmatch(obs.app_id)
    seen = _follow(engine, wd, launch, obs.app_id)
    assert seen[-1].state == "succeeded" and seen[-1].progress == 100.0
    assert seen[-1].app_id == obs.app_id
    # the cluster's own view agrees, and the job really ran there
    assert cluster.state(obs.app_id) == "FINISHED"
    out = "".join(p.read_text(errors="replace") for p in (cluster.base / "log").glob("*.out"))
    assert "mrs-sum=10100" in out


PY_JOB = """
from pyflink.datastream import StreamExecutionEnvironment
env = StreamExecutionEnvironment.get_execution_environment()
env.from_collection(list(range(1, 11))).map(lambda x: "mrs-py-remote=%d" % (x * 3)).print()
env.execute("mrs-py-remote")
"""


@pytest.mark.flink
@pytest.mark.timeout(600)
def test_real_python_job(engine, cluster, tmp_path):
    """The Python client runs here and submits; the taskmanager runs the UDF with -pyexec."""
    src = tmp_path / "in" / "job.py"
    src.parent.mkdir()
    src.write_text(PY_JOB)
    wd = tmp_path / "py"
    rc, took, launch = _submit(engine, cluster, ["-py", str(src)], wd)
    assert rc == 0, (wd / "stderr.log").read_text()
    print(f"flink run -d -py exited after {took:.1f} s")
    app_id = engine.observe(job([]), wd, launch).app_id
    assert app_id and JOB_ID_RE.fullmatch(app_id)
    seen = _follow(engine, wd, launch, app_id, timeout=120)
    assert seen[-1].state == "succeeded", seen[-1]
    out = "".join(p.read_text(errors="replace") for p in (cluster.base / "log").glob("*.out"))
    assert "mrs-py-remote=30" in out


@pytest.mark.flink
@pytest.mark.timeout(600)
def test_real_progress_moves(engine, cluster, remote_jar, tmp_path):
    wd = tmp_path / "slow"
    rc, _, launch = _submit(engine, cluster, [str(remote_jar), "slow", "24"], wd)
    assert rc == 0, (wd / "stderr.log").read_text()
    app_id = engine.observe(job([]), wd, launch).app_id
    seen = _follow(engine, wd, launch, app_id)
    assert seen[-1].state == "succeeded"
    # the source vertex finishes first: half of the subtasks done while the map still runs
    midway = [s.progress for s in seen if s.state == "running" and s.progress]
    assert midway and all(0 < p < 100 for p in midway), [(s.state, s.progress) for s in seen]


@pytest.mark.flink
@pytest.mark.timeout(600)
def test_real_failing_task_reports_cause(engine, cluster, remote_jar, tmp_path):
    wd = tmp_path / "taskfail"
    rc, _, launch = _submit(engine, cluster, [str(remote_jar), "taskfail"], wd)
    assert rc == 0  # the client only submitted it
    app_id = engine.observe(job([]), wd, launch).app_id
    seen = _follow(engine, wd, launch, app_id)
    assert seen[-1].state == "failed"
    assert seen[-1].message == (
        "Flink job FAILED: java.lang.IllegalStateException: mrs-remote-task-failure"
    )
    assert cluster.state(app_id) == "FAILED"


@pytest.mark.flink
@pytest.mark.timeout(600)
def test_real_failing_main_submits_nothing(engine, cluster, remote_jar, tmp_path):
    wd = tmp_path / "mainfail"
    rc, _, launch = _submit(engine, cluster, [str(remote_jar), "mainfail"], wd)
    assert rc != 0  # the supervisor fails the job by the launcher's exit code
    assert (
        "mrs-remote-main-failure"
        in (wd / "stdout.log").read_text() + (wd / "stderr.log").read_text()
    )
    assert engine.observe(job([]), wd, launch).app_id is None


@pytest.mark.flink
@pytest.mark.timeout(600)
def test_real_cancel_and_reattach(engine, flink_home, cluster, remote_jar, tmp_path):
    wd = tmp_path / "sleep"
    rc, _, launch = _submit(engine, cluster, [str(remote_jar), "sleep"], wd)
    assert rc == 0, (wd / "stderr.log").read_text()
    app_id = engine.observe(job([]), wd, launch).app_id
    assert app_id and app_id in cluster.running_jobs()
    seen = _follow(engine, wd, launch, app_id, until=lambda s: s.state == "running")
    assert seen[-1].state == "running"
    # "restart": a new engine object and the launch as the supervisor stored it
    fresh = FlinkEngine(flink_home=flink_home)
    stored = LaunchSpec(argv=launch.argv, env={}, cwd=launch.cwd, detached=True)
    assert fresh.status(job([]), wd, stored, app_id, None).state == "running"
    t0 = time.monotonic()
    assert fresh.cancel(job([]), wd, stored) is True
    seen = _follow(fresh, wd, stored, app_id, timeout=60)
    print(f"cancelled in {time.monotonic() - t0:.1f} s")
    assert seen[-1].state == "killed"
    assert cluster.state(app_id) == "CANCELED"
    assert app_id not in cluster.running_jobs()
