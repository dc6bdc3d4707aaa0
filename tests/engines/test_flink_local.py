"""FlinkEngine on the local target: observe()/cancel() against a fake REST server, the
installer's bookkeeping, and real ``flink run -t local`` runs (marker ``flink``)."""

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
from support_flink import job, make_fake_flink
from support_jobs import build_flink_jar

from mrs_jobs.engines import install as install_mod
from mrs_jobs.engines.base import ClusterSpec, JobSpec, LaunchSpec, Observation
from mrs_jobs.engines.flink import FlinkEngine, find_job_id, rest_port_from_log
from mrs_jobs.engines.flink_rest import progress_of_job
from mrs_jobs.engines.install import (
    EngineInstallError,
    engines_install_command,
    find_flink_home,
    install_flink,
    installed_flink_home,
)
from mrs_jobs.engines.java import find_java_home

REPO = Path(__file__).resolve().parents[2]
CLUSTER = ClusterSpec(cluster_id="c1")
JOB_ID_RE = re.compile(r"[0-9a-f]{32}")
IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture
def fake_home(tmp_path: Path) -> Path:
    return make_fake_flink(tmp_path / "venv")


@pytest.fixture
def engine(fake_home: Path) -> FlinkEngine:
    return FlinkEngine(flink_home=str(fake_home))


@pytest.fixture
def jar(tmp_path: Path) -> Path:
    p = tmp_path / "in" / "app.jar"
    p.parent.mkdir()
    p.write_bytes(b"PK\x03\x04")
    return p


needs_java = pytest.mark.skipif(find_java_home() is None, reason="no Java")


# ------------------------------------------------------------------- observe and cancel


def test_find_job_id(tmp_path):
    assert find_job_id(tmp_path) is None
    (tmp_path / "stdout.log").write_text("noise\nJob has been submitted with JobID " + "ab" * 16)
    assert find_job_id(tmp_path) == "ab" * 16


@needs_java
def test_rerun_in_same_workdir_reads_only_its_own_output(engine, jar, tmp_path):
    wd = tmp_path / "wd"
    launch = engine.build(job(["run", str(jar)]), CLUSTER, wd)
    (wd / "stdout.log").write_text("Job has been submitted with JobID " + "1" * 32 + "\n")
    assert engine.observe(job([]), wd, launch).app_id == "1" * 32
    launch = engine.build(job(["run", str(jar)]), CLUSTER, wd)  # a second launch
    assert engine.observe(job([]), wd, launch) == Observation()
    with open(wd / "stdout.log", "a") as fh:
        fh.write("Job has been submitted with JobID " + "2" * 32 + "\n")
    assert engine.observe(job([]), wd, launch).app_id == "2" * 32


def test_progress_of_job():
    assert progress_of_job({}) is None
    assert progress_of_job({"vertices": []}) == 0.0
    detail = {
        "vertices": [
            {"parallelism": 2, "tasks": {"FINISHED": 2, "RUNNING": 0}},
            {"parallelism": 2, "tasks": {"FINISHED": 0, "RUNNING": 2}},
        ]
    }
    assert progress_of_job(detail) == 50.0
    done = {"vertices": [{"parallelism": 1, "tasks": {"FINISHED": 1}}]}
    assert progress_of_job(done) == 99.0


def test_observe_never_raises(engine, tmp_path):
    launch = LaunchSpec(argv=[], env={}, cwd=str(tmp_path))
    assert engine.observe(job([]), tmp_path / "missing", launch) == Observation()
    (tmp_path / "engine.json").write_text("{not json")
    (tmp_path / "stdout.log").write_bytes(b"\xff\xfe garbage")
    assert engine.observe(job([]), tmp_path, launch) == Observation()
    assert engine.cancel(job([]), tmp_path, launch) is False


class _FakeJobManager:
    """A REST endpoint answering /jobs/<id> and PATCH /jobs/<id>?mode=cancel."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.cancelled: list[str] = []
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
                if self.path == f"/jobs/{outer.job_id}":
                    self._send(
                        200,
                        {
                            "jid": outer.job_id,
                            "state": "RUNNING",
                            "vertices": [
                                {"parallelism": 4, "tasks": {"FINISHED": 1, "RUNNING": 3}}
                            ],
                        },
                    )
                else:
                    self._send(404, {"errors": ["not found"]})

            def do_PATCH(self):  # noqa: N802
                if self.path == f"/jobs/{outer.job_id}?mode=cancel":
                    outer.cancelled.append(self.path)
                    self._send(202, {})
                else:
                    self._send(404, {"errors": ["not found"]})

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        if self.thread.is_alive():
            self.server.shutdown()
            self.server.server_close()
            self.thread.join()


@pytest.fixture
def fake_jm() -> Iterator[_FakeJobManager]:
    jm = _FakeJobManager("cd" * 16)
    yield jm
    jm.close()


@needs_java
def test_observe_and_cancel_remote(engine, jar, tmp_path, fake_jm):
    cluster = ClusterSpec(cluster_id="c", extra={"flink_jobmanager": f"127.0.0.1:{fake_jm.port}"})
    wd = tmp_path / "wd"
    launch = engine.build(job(["run", str(jar)]), cluster, wd)
    assert engine.observe(job([]), wd, launch) == Observation()
    assert engine.cancel(job([]), wd, launch) is False  # no job id yet
    (wd / "stdout.log").write_text(f"Job has been submitted with JobID {fake_jm.job_id}\n")
    obs = engine.observe(job([]), wd, launch)
    assert obs.app_id == fake_jm.job_id and obs.running
    assert obs.progress == 25.0
    assert obs.tracking_url == (
        f"http://127.0.0.1:{fake_jm.port}/#/job/running/{fake_jm.job_id}/overview"
    )
    assert engine.cancel(job([]), wd, launch) is True
    assert fake_jm.cancelled == [f"/jobs/{fake_jm.job_id}?mode=cancel"]


@needs_java
def test_observe_local_rest_in_port_range(engine, jar, tmp_path, fake_jm):
    wd = tmp_path / "wd"
    launch = engine.build(job(["run", str(jar)]), CLUSTER, wd)
    (wd / "stdout.log").write_text(f"Job has been submitted with JobID {fake_jm.job_id}\n")
    # pretend the mini-cluster bound a port of the range build() chose
    (wd / "engine.json").write_text(
        json.dumps(
            {"engine": "flink", "target": "local", "rest_ports": [fake_jm.port - 2, fake_jm.port]}
        )
    )
    url = f"http://127.0.0.1:{fake_jm.port}/#/job/running/{fake_jm.job_id}/overview"
    # found by probing the range (no client log yet)
    obs = FlinkEngine().observe(job([]), wd, launch)
    assert obs.tracking_url == url
    assert obs.progress == 25.0
    assert engine.cancel(job([]), wd, launch) is False  # local: the process group is enough
    # found in the client's log: other ports of the range are not probed
    (wd / "engine.json").write_text(
        json.dumps(
            {"engine": "flink", "target": "local", "rest_ports": [fake_jm.port, fake_jm.port + 9]}
        )
    )
    (wd / "flink-log" / "flink-mrs-client-h.log").write_text(
        "... DispatcherRestEndpoint [] - Rest endpoint listening at 127.0.0.1:8081\n"
        f"... DispatcherRestEndpoint [] - Rest endpoint listening at 127.0.0.1:{fake_jm.port}\n"
    )
    assert rest_port_from_log(wd / "flink-log", fake_jm.port, fake_jm.port + 9) == fake_jm.port
    assert rest_port_from_log(wd / "flink-log", 1, 2) is None
    fresh = FlinkEngine()
    obs = fresh.observe(job([]), wd, launch)
    assert obs.tracking_url == url and obs.progress == 25.0
    fake_jm.close()  # the job ended with its mini-cluster: the URL stays, progress is unknown
    obs = fresh.observe(job([]), wd, launch)
    assert obs.app_id == fake_jm.job_id and obs.tracking_url == url and obs.progress is None


def test_observe_rest_down_is_quick(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (tmp_path / "engine.json").write_text(
        json.dumps({"engine": "flink", "target": "local", "rest_ports": [port, port + 15]})
    )
    (tmp_path / "stdout.log").write_text("Job has been submitted with JobID " + "ef" * 16)
    t0 = time.monotonic()
    obs = FlinkEngine().observe(job([]), tmp_path, LaunchSpec(argv=[], env={}, cwd=""))
    assert time.monotonic() - t0 < 1.0
    assert obs.app_id == "ef" * 16 and obs.tracking_url is None and obs.progress is None


# ------------------------------------------------------------------------------ installer


def _write_marker(target: Path, version: str) -> Path:
    home = make_fake_flink(target / "flink-venv")
    (target / "flink-venv" / ".mrs-jobs-flink.json").write_text(
        json.dumps({"version": version, "flink_home": str(home)})
    )
    return home


def test_install_is_idempotent_with_marker(tmp_path, monkeypatch):
    home = _write_marker(tmp_path / "engines", "2.3.0")

    def boom(*a, **k):
        raise AssertionError("pip must not run")

    monkeypatch.setattr(install_mod, "_run_streamed", boom)
    assert install_flink(tmp_path / "engines") == home
    assert installed_flink_home(tmp_path / "engines", "2.3.0") == home
    assert installed_flink_home(tmp_path / "engines", "9.9.9") is None


def test_install_failure_is_classified(tmp_path, monkeypatch):
    calls: list[list[str]] = []

    def fake_run(argv, out, env):
        calls.append(argv)
        if argv[1:3] == ["-m", "venv"]:
            venv = Path(argv[3])
            (venv / "bin").mkdir(parents=True)
            (venv / "bin" / "python").write_text("")
            return 0, []
        return 1, ["ERROR: No matching distribution found for apache-flink==2.3.0"]

    monkeypatch.setattr(install_mod, "_run_streamed", fake_run)
    with pytest.raises(EngineInstallError) as e:
        install_flink(tmp_path / "e", out=open(os.devnull, "w"))  # noqa: SIM115
    assert e.value.network
    assert calls[1][-1] == "apache-flink==2.3.0"
    assert not (tmp_path / "e" / "flink-venv" / ".mrs-jobs-flink.json").exists()


def test_find_flink_home(tmp_path, monkeypatch):
    monkeypatch.delenv("FLINK_HOME", raising=False)
    data = tmp_path / "data"
    assert find_flink_home(None, data) is None
    home = _write_marker(data / "engines", "2.3.0")
    assert find_flink_home(None, data) == str(home)
    other = make_fake_flink(tmp_path / "other", venv=False)
    monkeypatch.setenv("FLINK_HOME", str(other))
    assert find_flink_home(None, data) == str(other)
    assert find_flink_home(str(home), data) == str(home)
    assert find_flink_home(str(tmp_path / "nothing"), data) is None  # a wrong setting
    monkeypatch.setenv("FLINK_HOME", str(tmp_path / "nothing"))
    assert find_flink_home(None, data) == str(home)
    assert find_flink_home(None, None) is None


def test_engines_install_command(tmp_path, capsys):
    assert engines_install_command("hive", tmp_path) == 2
    assert "choose spark, flink or all" in capsys.readouterr().err
    assert engines_install_command("spark", tmp_path) == 0  # comes with pyspark
    assert "SPARK_HOME=" in capsys.readouterr().out
    home = _write_marker(tmp_path / "engines", install_mod.DEFAULT_FLINK_VERSION)
    assert engines_install_command("flink", tmp_path) == 0
    assert str(home) in capsys.readouterr().out


# ------------------------------------------------------------------------------ real runs

ENGINES_DIR = Path(os.environ.get("MRS_JOBS_TEST_ENGINES_DIR", str(REPO / ".cache" / "engines")))


PY_JOB = """
import sys
from pyflink.datastream import StreamExecutionEnvironment

env = StreamExecutionEnvironment.get_execution_environment()
env.set_parallelism(1)
values = env.from_collection(list(range(1, 11))).map(lambda x: x * 3).execute_and_collect()
print(f"mrs-py-sum={sum(values)} args={sys.argv[1:]}", flush=True)
"""


@pytest.fixture(scope="module")
def real_flink_home() -> str:
    if find_java_home() is None:
        pytest.skip("no Java")
    t0 = time.monotonic()
    try:
        home = install_flink(ENGINES_DIR)
    except EngineInstallError as e:
        if e.network and not IN_CI:
            pytest.skip(f"Flink could not be downloaded: {e}")
        raise
    print(f"install_flink took {time.monotonic() - t0:.1f} s: {home}")
    return str(home)


@pytest.fixture(scope="module")
def real_engine(real_flink_home: str) -> FlinkEngine:
    return FlinkEngine(flink_home=real_flink_home)


@pytest.fixture(scope="module")
def test_jar(real_flink_home: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    java_home = find_java_home()
    assert java_home is not None
    jar = build_flink_jar(real_flink_home, java_home, tmp_path_factory.mktemp("flinkjar"))
    if jar is None:
        pytest.skip("no JDK (javac/jar) available")
    return jar


def _start(launch: LaunchSpec, wd: Path) -> subprocess.Popen:
    """Start a launch as the supervisor's shim does: logs in <wd>/stdout.log, stderr.log."""
    with open(wd / "stdout.log", "ab") as out, open(wd / "stderr.log", "ab") as err:
        return subprocess.Popen(
            launch.argv,
            env=launch.env,
            cwd=launch.cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )


def _wait(proc: subprocess.Popen, timeout: float, what: str, wd: Path) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail(f"{what} did not finish in {timeout} s: {(wd / 'stderr.log').read_text()}")


def _run(
    engine: FlinkEngine, spec: JobSpec, wd: Path, cluster: ClusterSpec = CLUSTER
) -> tuple[int, str, str, LaunchSpec, float]:
    launch = engine.build(spec, cluster, wd)
    t0 = time.monotonic()
    proc = _start(launch, wd)
    rc = _wait(proc, 180, "flink run", wd)
    elapsed = time.monotonic() - t0
    print(f"flink run took {elapsed:.1f} s")
    out = (wd / "stdout.log").read_text(errors="replace")
    err = (wd / "stderr.log").read_text(errors="replace")
    return rc, out, err, launch, elapsed


def _client_logs(wd: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in (wd / "flink-log").glob("*"))


def _assert_private_dirs(wd: Path) -> None:
    assert any((wd / "flink-log").iterdir()), "the client logged elsewhere"
    assert any((wd / "tmp").iterdir())


@pytest.mark.flink
@pytest.mark.timeout(900)
def test_real_jar_job(real_engine, test_jar, tmp_path):
    wd = tmp_path / "wd"
    spec = job(["run", "-m", "yarn-cluster", "-p", "2", str(test_jar)])
    rc, out, err, launch, _ = _run(real_engine, spec, wd)
    assert rc == 0, err + _client_logs(wd)
    assert "mrs-sum=10100" in out
    assert launch.notes == ["replaced -m yarn-cluster with -t local"]
    obs = real_engine.observe(spec, wd, launch)
    assert obs.app_id is not None and JOB_ID_RE.fullmatch(obs.app_id)
    assert obs.running
    _assert_private_dirs(wd)


@pytest.mark.flink
@pytest.mark.timeout(900)
def test_real_python_job(real_engine, tmp_path):
    src = tmp_path / "in" / "job.py"
    src.parent.mkdir()
    src.write_text(PY_JOB)
    wd = tmp_path / "wd"
    spec = job(["run", "-py", str(src), "a b", "--x"])
    rc, out, err, launch, _ = _run(real_engine, spec, wd)
    assert rc == 0, err + _client_logs(wd)
    assert "mrs-py-sum=165 args=['a b', '--x']" in out
    obs = real_engine.observe(spec, wd, launch)
    assert obs.app_id is not None and JOB_ID_RE.fullmatch(obs.app_id)


@pytest.mark.flink
@pytest.mark.timeout(900)
def test_real_broken_jar(real_engine, test_jar, tmp_path):
    wd = tmp_path / "wd"
    rc, out, err, _, _ = _run(real_engine, job(["run", str(test_jar), "fail"]), wd)
    assert rc != 0
    assert "mrs-test-broken-main" in out + err + _client_logs(wd)


@pytest.mark.flink
@pytest.mark.timeout(900)
def test_real_long_job_stops_on_sigterm(real_engine, test_jar, tmp_path):
    wd = tmp_path / "wd"
    spec = job(["run", str(test_jar), "sleep"])
    launch = real_engine.build(spec, CLUSTER, wd)
    proc = _start(launch, wd)
    try:
        deadline = time.monotonic() + 120
        obs = Observation()
        while time.monotonic() < deadline and proc.poll() is None:
            obs = real_engine.observe(spec, wd, launch)
            if obs.app_id and obs.tracking_url and obs.progress is not None:
                break  # the mini-cluster's REST API answered for this job
            time.sleep(0.5)
        assert proc.poll() is None, (wd / "stderr.log").read_text()
        assert obs.app_id and JOB_ID_RE.fullmatch(obs.app_id)
        # the mini-cluster's REST endpoint is in the range build() chose, not on 8081
        lo, hi = json.loads((wd / "engine.json").read_text())["rest_ports"]
        port = int(re.search(r":(\d+)/", obs.tracking_url or "").group(1))
        assert lo <= port <= hi
        assert obs.progress is not None and 0 <= obs.progress <= 99
        t0 = time.monotonic()
        os.killpg(proc.pid, signal.SIGTERM)
        rc = _wait(proc, 30, "the killed job", wd)
        stopped = time.monotonic() - t0
        print(f"stopped {stopped:.1f} s after SIGTERM (rc={rc})")
        assert rc != 0
        assert stopped < 15
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    # nothing of the group survives
    time.sleep(0.5)
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)
