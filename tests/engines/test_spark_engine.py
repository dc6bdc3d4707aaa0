"""SparkSubmitEngine: build() unit tests and observe() against fakes (real local runs:
test_spark_local_runs.py; standalone, YARN, Kubernetes: test_spark_standalone.py and
test_spark_remote_kinds.py)."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from pathlib import Path

import pytest

from mrs_jobs.engines.base import (
    ClusterSpec,
    EngineRefused,
    JobSpec,
    LaunchSpec,
    Observation,
    call_hook,
)
from mrs_jobs.engines.java import find_java_home, find_spark_home
from mrs_jobs.engines.spark import (
    SparkSubmitEngine,
    find_event_log_app,
    is_secret_key,
    parse_submit_arguments,
    ui_port_of,
)

CLUSTER = ClusterSpec(cluster_id="c1")


def job(arguments: list[str], properties: dict[str, str] | None = None) -> JobSpec:
    return JobSpec(
        job_id="j1",
        job_type="SparkSubmit",
        job_name="t",
        arguments=arguments,
        properties=properties or {},
    )


@pytest.fixture
def app(tmp_path: Path) -> Path:
    p = tmp_path / "in" / "app.py"
    p.parent.mkdir()
    p.write_text("print('hi')\n")
    return p


@pytest.fixture
def engine() -> SparkSubmitEngine:
    return SparkSubmitEngine()


def confs(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--conf"]


# ------------------------------------------------------------------------------- parsing


def test_parse_options_forms():
    opts, app, rest = parse_submit_arguments(
        [
            "--class",
            "a.B",
            "--conf=spark.x=1=2",
            "-c",
            "spark.y=2",
            "--verbose",
            "-v",
            "--name=n",
            "--supervise",
            "app.jar",
            "--conf",
            "x",
            "--unknown",
        ]
    )
    assert opts == [
        ("--class", "a.B"),
        ("--conf", "spark.x=1=2"),
        ("--conf", "spark.y=2"),
        ("--verbose", None),
        ("--verbose", None),
        ("--name", "n"),
        ("--supervise", None),
    ]
    assert app == "app.jar"
    assert rest == ["--conf", "x", "--unknown"]


def test_parse_no_app():
    assert parse_submit_arguments(["--name", "x"]) == ([("--name", "x")], None, [])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--frobnicate", "x", "app.py"], "unknown spark-submit option: --frobnicate"),
        (["--frobnicate=secretvalue", "app.py"], "unknown spark-submit option: --frobnicate"),
        (["-x", "app.py"], "unknown spark-submit option: -x"),
        (["--kill", "sub-1"], "unknown spark-submit option: --kill"),
        (["--class"], "--class needs a value"),
        (["--verbose=yes", "app.py"], "--verbose takes no value"),
        (["app.py", "a\x00b"], "NUL"),
    ],
)
def test_parse_refused(arguments, message):
    with pytest.raises(EngineRefused) as e:
        parse_submit_arguments(arguments)
    assert message in str(e.value)
    assert "secretvalue" not in str(e.value)


# --------------------------------------------------------------------------------- build


def test_build_basic_layout(engine, app, tmp_path):
    wd = tmp_path / "wd"
    spec = engine.build(job([str(app), "1", "--x", "a b"]), CLUSTER, wd)
    argv = spec.argv
    assert argv[0].endswith("/bin/spark-submit") and Path(argv[0]).is_file()
    assert argv[1:5] == ["--master", "local[2]", "--deploy-mode", "client"]
    assert argv[-4:] == [str(app.resolve()), "1", "--x", "a b"]
    c = confs(argv)
    assert "spark.eventLog.enabled=true" in c
    assert f"spark.eventLog.dir={(wd / 'events').resolve().as_uri()}" in c
    assert "spark.log.level=WARN" in c
    assert "spark.ui.showConsoleProgress=false" in c
    jopts = next(x for x in c if x.startswith("spark.driver.defaultJavaOptions="))
    assert f"-Djava.io.tmpdir={wd.resolve() / 'tmp'}" in jopts
    assert f"-Dderby.system.home={wd.resolve()}" in jopts
    ports = [x for x in c if x.startswith("spark.ui.port=")]
    assert len(ports) == 1
    port = int(ports[0].split("=")[1])
    assert ui_port_of(spec, wd) == port
    assert json.loads((wd / "engine.json").read_text())["ui_port"] == port
    for d in ("events", "tmp", "spark-local", "conf"):
        assert (wd / d).is_dir()
    assert list((wd / "conf").iterdir()) == []
    assert spec.cwd == str(wd.resolve())
    assert spec.notes == []


def test_build_user_options_after_ours_and_ports_differ(engine, app, tmp_path):
    spec = engine.build(
        job(["--name", "nm", "--conf=spark.executor.memory=1g", "--verbose", str(app)]),
        CLUSTER,
        tmp_path / "wd",
    )
    argv = spec.argv
    i_app = argv.index(str(app.resolve()))
    assert argv[i_app - 5 : i_app] == [
        "--name",
        "nm",
        "--conf",
        "spark.executor.memory=1g",
        "--verbose",
    ]
    assert argv.index("spark.log.level=WARN") < argv.index("--name")
    spec2 = engine.build(job([str(app)]), CLUSTER, tmp_path / "wd2")
    assert ui_port_of(spec, tmp_path / "wd") != ui_port_of(spec2, tmp_path / "wd2")


def test_master_and_deploy_mode_replaced_with_note(engine, app, tmp_path):
    spec = engine.build(
        job(
            [
                "--master",
                "yarn",
                "--deploy-mode=cluster",
                "--conf",
                "spark.master=spark://x:7077",
                str(app),
            ]
        ),
        ClusterSpec(cluster_id="c", spark_master="local[2]"),
        tmp_path / "wd",
    )
    assert spec.argv.count("--master") == 1
    assert spec.argv[spec.argv.index("--master") + 1] == "local[2]"
    assert spec.argv.count("--deploy-mode") == 1
    assert "yarn" not in spec.argv and "cluster" not in spec.argv
    assert not any("spark://" in a for a in spec.argv)
    assert "replaced --master yarn with local[2]" in spec.notes
    assert "replaced --deploy-mode cluster with client" in spec.notes
    assert any(n.startswith("replaced --conf spark.master") for n in spec.notes)


def test_reserved_conf_dropped(engine, app, tmp_path):
    spec = engine.build(
        job(["--conf", "spark.ui.port=1234", "--conf", "spark.eventLog.dir=/x", str(app)]),
        CLUSTER,
        tmp_path / "wd",
    )
    c = confs(spec.argv)
    assert "spark.ui.port=1234" not in c and "spark.eventLog.dir=/x" not in c
    assert len([x for x in c if x.startswith("spark.ui.port=")]) == 1
    assert "ignored --conf spark.ui.port: set by the service" in spec.notes


def test_properties_and_secrets(engine, app, tmp_path):
    props = {
        "spark.executor.memory": "2g",
        "spark.hadoop.fs.s3a.secret.key": "S3CRET-1",
        "spark.hadoop.fs.s3a.access.key": "S3CRET-2",
        "spark.some.Password": "S3CRET-3",
        "spark.auth.TOKEN.value": "S3CRET-4",
        "spark.authenticate.secret": "S3CRET-5",
        "fs.obs.secret.key": "S3CRET-6",
        "fs.obs.endpoint": "http://obs",
    }
    spec = engine.build(job([str(app)], props), CLUSTER, tmp_path / "wd")
    joined = "\0".join(spec.argv)
    assert "S3CRET" not in joined
    assert "S3CRET" not in "\0".join(spec.env.values())
    assert "S3CRET" not in "\n".join(spec.notes)
    assert "object-store properties not applied" in "\n".join(spec.notes)  # half a key pair
    assert "obs" not in joined
    assert "spark.executor.memory=2g" in confs(spec.argv)
    for key in (
        "spark.hadoop.fs.s3a.secret.key",
        "spark.hadoop.fs.s3a.access.key",
        "spark.some.Password",
        "spark.auth.TOKEN.value",
        "spark.authenticate.secret",
    ):
        assert f"secret property {key} not passed on the command line" in spec.notes
    # With a whole key pair, the S3A settings go on the command line, the keys only into the
    # environment (AWS_*), never into argv or notes.
    full = {**props, "fs.obs.access.key": "S3CRET-7"}
    spec = engine.build(job([str(app)], full), CLUSTER, tmp_path / "w3")
    assert "S3CRET" not in "\0".join(spec.argv) and "S3CRET" not in "\n".join(spec.notes)
    assert "spark.hadoop.fs.s3a.endpoint=http://obs" in confs(spec.argv)
    assert spec.env["AWS_SECRET_ACCESS_KEY"] == "S3CRET-6"
    assert spec.env["AWS_ACCESS_KEY_ID"] == "S3CRET-7"
    # user options come after the properties, so they win
    spec = engine.build(
        job(["--conf", "spark.executor.memory=3g", str(app)], props), CLUSTER, tmp_path / "w2"
    )
    assert spec.argv.index("spark.executor.memory=2g") < spec.argv.index("spark.executor.memory=3g")


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("spark.hadoop.fs.obs.access.key", True),
        ("spark.hadoop.fs.s3a.secret.key", True),
        ("spark.ssl.keyStorePassword", True),
        ("spark.yarn.Token", True),
        ("spark.executor.memory", False),
        ("spark.hadoop.fs.s3a.aws.credentials.provider", False),
    ],
)
def test_is_secret_key(key, secret):
    assert is_secret_key(key) is secret


def test_env_is_built_from_scratch(engine, app, tmp_path, monkeypatch):
    monkeypatch.setenv("MRS_CANARY", "canary-value-xyz")
    monkeypatch.setenv("MRS_JOBS_DATABASE_URL", "postgresql://u:pw@h/db")
    monkeypatch.setenv("HADOOP_CONF_DIR", "/etc/hadoop")
    monkeypatch.setenv("PYTHONPATH", "/somewhere")
    wd = tmp_path / "wd"
    spec = engine.build(job([str(app)]), ClusterSpec("c", pyspark_python="/opt/py"), wd)
    env = spec.env
    assert "MRS_CANARY" not in env and "MRS_JOBS_DATABASE_URL" not in env
    assert "HADOOP_CONF_DIR" not in env and "PYTHONPATH" not in env
    assert not any("canary-value-xyz" in v or "pw@h" in v for v in env.values())
    java_home = find_java_home()
    assert env["JAVA_HOME"] == java_home
    assert env["PATH"].split(":")[0] == f"{java_home}/bin"
    assert "/usr/bin" in env["PATH"].split(":")
    assert env["SPARK_HOME"] == find_spark_home()
    assert env["PYSPARK_PYTHON"] == env["PYSPARK_DRIVER_PYTHON"] == "/opt/py"
    assert env["SPARK_LOCAL_IP"] == "127.0.0.1"
    assert env["LANG"] == "C.UTF-8"
    assert env["HOME"] == str(wd.resolve())
    assert env["TMPDIR"] == str(wd.resolve() / "tmp")
    assert env["SPARK_CONF_DIR"] == str(wd.resolve() / "conf")


def test_default_pyspark_python_is_ours(engine, app, tmp_path):
    import sys

    spec = engine.build(job([str(app)]), CLUSTER, tmp_path / "wd")
    assert spec.env["PYSPARK_PYTHON"] == sys.executable


@pytest.mark.parametrize("arguments", [[], ["--name", "x"], ["--verbose"]])
def test_no_application_refused(engine, tmp_path, arguments):
    with pytest.raises(EngineRefused, match=r"SparkSubmit needs an application: a \.py or \.jar"):
        engine.build(job(arguments), CLUSTER, tmp_path / "wd")


def test_unknown_option_refused(engine, app, tmp_path):
    with pytest.raises(EngineRefused, match="--bogus"):
        engine.build(job(["--bogus", "1", str(app)]), CLUSTER, tmp_path / "wd")


def test_missing_application_refused(engine, tmp_path):
    missing = tmp_path / "nope.py"
    with pytest.raises(EngineRefused) as e:
        engine.build(job([str(missing)]), CLUSTER, tmp_path / "wd")
    assert str(e.value) == f"application file not found: {missing}"


def test_wrong_application_kind_refused(engine, tmp_path):
    r = tmp_path / "x.R"
    r.write_text("")
    with pytest.raises(EngineRefused, match=r"\.py or \.jar"):
        engine.build(job([str(r)]), CLUSTER, tmp_path / "wd")


def test_jar_with_and_without_class(engine, tmp_path):
    jar = tmp_path / "a.jar"
    jar.write_bytes(b"PK")
    spec = engine.build(job(["--class", "x.Main", str(jar), "arg"]), CLUSTER, tmp_path / "w1")
    assert spec.argv[-4:] == ["--class", "x.Main", str(jar.resolve()), "arg"]
    spec = engine.build(job([str(jar)]), CLUSTER, tmp_path / "w2")  # manifest Main-Class
    assert spec.argv[-1] == str(jar.resolve())


def test_file_url_stripped_and_hdfs_passed(engine, app, tmp_path):
    spec = engine.build(job([f"file://{app}", "x"]), CLUSTER, tmp_path / "w1")
    assert spec.argv[-2:] == [str(app.resolve()), "x"]
    spec = engine.build(job(["hdfs://nn:8020/apps/a.py", "x"]), CLUSTER, tmp_path / "w2")
    assert spec.argv[-2:] == ["hdfs://nn:8020/apps/a.py", "x"]
    with pytest.raises(EngineRefused, match="unsupported URL scheme"):
        engine.build(job(["ftp://h/a.py"]), CLUSTER, tmp_path / "w3")


def test_input_roots(engine, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    inside = root / "ok.py"
    inside.write_text("")
    outside = tmp_path / "outside.py"
    outside.write_text("")
    link = root / "escape.py"
    link.symlink_to(outside)
    cluster = ClusterSpec("c", input_roots=(str(root),))

    spec = engine.build(job([str(inside)]), cluster, tmp_path / "w1")
    assert spec.argv[-1] == str(inside.resolve())
    spec = engine.build(job([f"file://{inside}"]), cluster, tmp_path / "w1b")
    assert spec.argv[-1] == str(inside.resolve())
    for bad in (str(outside), str(link), f"file://{link}", str(root / ".." / "outside.py")):
        with pytest.raises(EngineRefused, match="not under an allowed input root"):
            engine.build(job([bad]), cluster, tmp_path / "w2")
    # outside the roots is refused before existence is told
    with pytest.raises(EngineRefused, match="not under an allowed input root"):
        engine.build(job([str(tmp_path / "missing.py")]), cluster, tmp_path / "w3")
    # dependency files are checked too
    with pytest.raises(EngineRefused, match="--py-files file"):
        engine.build(job(["--py-files", f"{inside},{outside}", str(inside)]), cluster, tmp_path)
    spec = engine.build(
        job(["--files", f"{inside}#alias,hdfs://nn/x", str(inside)]), cluster, tmp_path / "w4"
    )
    assert f"{inside.resolve()}#alias,hdfs://nn/x" in spec.argv


def test_symlinked_root_itself_is_fine(engine, tmp_path):
    real_root = tmp_path / "real"
    real_root.mkdir()
    (real_root / "a.py").write_text("")
    link_root = tmp_path / "linkroot"
    link_root.symlink_to(real_root)
    cluster = ClusterSpec("c", input_roots=(str(link_root),))
    spec = engine.build(job([str(link_root / "a.py")]), cluster, tmp_path / "wd")
    assert spec.argv[-1] == str((real_root / "a.py").resolve())


def test_wrong_job_type_refused(engine, app, tmp_path):
    j = JobSpec("j", "Flink", "n", [str(app)], {})
    with pytest.raises(EngineRefused):
        engine.build(j, CLUSTER, tmp_path / "wd")


# ------------------------------------------------------------------------------- observe


def test_find_event_log_app_variants(tmp_path):
    ev = tmp_path / "events"
    assert find_event_log_app(ev) is None
    ev.mkdir()
    assert find_event_log_app(ev) is None
    (ev / "local-1.inprogress").write_text("")
    assert find_event_log_app(ev) == ("local-1", True)
    (ev / "local-1.inprogress").rename(ev / "local-1.zstd")
    assert find_event_log_app(ev) == ("local-1", False)
    (ev / "local-1.zstd").unlink()
    d = ev / "eventlog_v2_local-22"
    d.mkdir()
    (d / "appstatus_local-22.inprogress").write_text("")
    (d / ".appstatus_local-22.inprogress.crc").write_text("")
    (d / "events_1_local-22.zstd").write_text("")
    assert find_event_log_app(ev) == ("local-22", True)
    (d / "appstatus_local-22.inprogress").rename(d / "appstatus_local-22")
    assert find_event_log_app(ev) == ("local-22", False)


def test_observe_never_raises(engine, tmp_path):
    bad = LaunchSpec(argv=[], env={}, cwd="/")
    assert engine.observe(job([]), tmp_path / "nope", bad) == Observation()
    # A hook that raises costs the supervisor nothing but a log line (engines.base.call_hook).
    broken = call_hook(engine.observe, job([]), None, None, default=Observation())
    assert broken == Observation()


class _FakeSparkUI(http.server.BaseHTTPRequestHandler):
    app_id = "local-42"
    jobs: list = []

    def do_GET(self):  # noqa: N802
        if self.path == f"/api/v1/applications/{self.app_id}/jobs":
            body = json.dumps(self.jobs).encode()
            self.send_response(200)
        else:
            body = b"not found"
            self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _serve(port: int, handler) -> http.server.HTTPServer:
    srv = http.server.HTTPServer(("127.0.0.1", port), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def _two_adjacent_servers(handler_a, handler_b):
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port >= 65535:
            continue
        try:
            a = _serve(port, handler_a)
        except OSError:
            continue
        try:
            b = _serve(port + 1, handler_b)
        except OSError:
            a.shutdown()
            a.server_close()
            continue
        return a, b
    pytest.skip("no two adjacent free ports")


def _launch_with_port(port: int) -> LaunchSpec:
    return LaunchSpec(argv=["spark-submit", "--conf", f"spark.ui.port={port}"], env={}, cwd="/")


def test_observe_reads_app_and_ui(engine, tmp_path):
    """Progress comes from the event log (test_spark_events.py), not from the UI's /jobs."""

    class UI(_FakeSparkUI):
        jobs = [{"status": "RUNNING", "numTasks": 8, "numCompletedTasks": 6}]

    ev = tmp_path / "events"
    ev.mkdir()
    srv = _serve(0, UI)
    port = srv.server_address[1]
    try:
        launch = _launch_with_port(port)
        assert engine.observe(job([]), tmp_path, launch) == Observation()
        (ev / "local-42.inprogress").write_text("")
        obs = engine.observe(job([]), tmp_path, launch)
        assert obs == Observation(
            app_id="local-42",
            tracking_url=f"http://127.0.0.1:{port}",
            progress=None,
            running=True,
        )
        (ev / "local-42.inprogress").rename(ev / "local-42")
        obs = engine.observe(job([]), tmp_path, launch)
        assert obs.app_id == "local-42" and obs.running and obs.progress is None
    finally:
        srv.shutdown()
        srv.server_close()


def test_observe_follows_moved_ui_port(engine, tmp_path):
    class Other(_FakeSparkUI):
        app_id = "local-other"

    class Ours(_FakeSparkUI):
        jobs = [{"status": "RUNNING", "numTasks": 4, "numCompletedTasks": 1}]

    other, ours = _two_adjacent_servers(Other, Ours)
    try:
        (tmp_path / "events").mkdir()
        (tmp_path / "events" / "local-42.inprogress").write_text("")
        port = other.server_address[1]
        obs = engine.observe(job([]), tmp_path, _launch_with_port(port))
        assert obs.tracking_url == f"http://127.0.0.1:{port}"  # a short job is not asked
        engine.local.probe_after_s = 0.0  # a long one is, once
        obs = engine.observe(job([]), tmp_path, _launch_with_port(port))
        assert obs.tracking_url == f"http://127.0.0.1:{port + 1}"
    finally:
        for s in (other, ours):
            s.shutdown()
            s.server_close()


def test_observe_rest_down_is_quick(engine, tmp_path):
    (tmp_path / "events").mkdir()
    (tmp_path / "events" / "local-7.inprogress").write_text("")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    engine.local.probe_after_s = 0.0
    t0 = time.monotonic()
    obs = engine.observe(job([]), tmp_path, _launch_with_port(port))
    assert time.monotonic() - t0 < 1.0
    assert obs.app_id == "local-7" and obs.running and obs.progress is None


def test_observe_port_from_engine_json(engine, app, tmp_path):
    wd = tmp_path / "wd"
    spec = engine.build(job([str(app)]), CLUSTER, wd)
    (wd / "events" / "local-9.inprogress").write_text("")
    bare = LaunchSpec(argv=["spark-submit"], env={}, cwd=str(wd))
    obs = engine.observe(job([]), wd, bare)
    assert obs.tracking_url == f"http://127.0.0.1:{ui_port_of(spec, wd)}"
