"""FlinkEngine: build() unit tests with a fake Flink home, observe()/cancel() against a fake
REST server, the installer's bookkeeping, and real ``flink run -t local`` runs (marker
``flink``). Remote session clusters (detached jobs): test_flink_remote.py."""

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
from support_jobs import build_flink_jar

from mrs_jobs.engines import install as install_mod
from mrs_jobs.engines.base import ClusterSpec, EngineRefused, JobSpec, LaunchSpec, Observation
from mrs_jobs.engines.flink import FlinkEngine, find_job_id, rest_port_from_log
from mrs_jobs.engines.flink_args import parse_flink_run
from mrs_jobs.engines.flink_conf import _read_simple_yaml, read_flink_config
from mrs_jobs.engines.flink_rest import progress_of_job
from mrs_jobs.engines.install import (
    EngineInstallError,
    engines_install_command,
    find_flink_home,
    flink_python_of,
    install_flink,
    installed_flink_home,
)
from mrs_jobs.engines.java import find_java_home

REPO = Path(__file__).resolve().parents[2]
CLUSTER = ClusterSpec(cluster_id="c1")
JOB_ID_RE = re.compile(r"[0-9a-f]{32}")
IN_CI = os.environ.get("CI", "").lower() == "true"

DIST_CONFIG = """\
# Flink's shipped configuration (abridged)
env:
  java:
    opts:
      all: --add-opens=java.base/java.lang=ALL-UNNAMED --add-opens=java.base/java.util=ALL-UNNAMED
jobmanager:
  bind-host: localhost
  rpc:
    address: localhost
    port: 6123
taskmanager:
  numberOfTaskSlots: 1
parallelism:
  default: 1
rest:
  address: localhost
  # port: 8081
"""


def job(arguments: list[str], properties: dict[str, str] | None = None) -> JobSpec:
    return JobSpec(
        job_id="j1",
        job_type="Flink",
        job_name="t",
        arguments=arguments,
        properties=properties or {},
    )


def make_fake_flink(root: Path, *, venv: bool = True) -> Path:
    """A Flink home as pip lays it out: <venv>/lib/python3.11/site-packages/pyflink."""
    if venv:
        (root / "bin").mkdir(parents=True)
        (root / "pyvenv.cfg").write_text("home = /usr/bin\n")
        python = root / "bin" / "python"
        python.write_text("#!/bin/sh\n")
        python.chmod(0o755)
        home = root / "lib" / "python3.11" / "site-packages" / "pyflink"
    else:
        home = root
    (home / "bin").mkdir(parents=True)
    (home / "lib").mkdir()
    (home / "conf").mkdir()
    flink = home / "bin" / "flink"
    flink.write_text("#!/bin/sh\nexit 0\n")
    flink.chmod(0o755)
    (home / "conf" / "config.yaml").write_text(DIST_CONFIG)
    (home / "conf" / "log4j-cli.properties").write_text("rootLogger.level = INFO\n")
    return home


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


@pytest.fixture
def pyfile(tmp_path: Path) -> Path:
    p = tmp_path / "in2" / "job.py"
    p.parent.mkdir()
    p.write_text("print('hi')\n")
    return p


needs_java = pytest.mark.skipif(find_java_home() is None, reason="no Java")


def config_of(wd: Path) -> dict:
    return read_flink_config(wd / "flink-conf" / "config.yaml")


# ------------------------------------------------------------------------------- parsing


def test_parse_forms():
    opts, jar, rest = parse_flink_run(
        [
            "run",
            "--class=a.B",
            "-p",
            "2",
            "-p4",
            "-Dk1=v1",
            "-D",
            "k2=v=2",
            "--detached",
            "-n",
            "--parallelism",
            "3",
            "-ynm",
            "name",
            "-yDyk=1",
            "app.jar",
            "-m",
            "x",
            "--unknown",
        ]
    )
    assert opts == [
        ("-c", "a.B"),
        ("-p", "2"),
        ("-p", "4"),
        ("-D", "k1=v1"),
        ("-D", "k2=v=2"),
        ("-d", None),
        ("-n", None),
        ("-p", "3"),
        ("-ynm", "name"),
        ("-yD", "yk=1"),
    ]
    assert jar == "app.jar"
    assert rest == ["-m", "x", "--unknown"]


def test_parse_python_has_no_jar():
    opts, jar, rest = parse_flink_run(["run", "-py", "j.py", "a.jar", "x"])
    assert opts == [("-py", "j.py")]
    assert jar is None and rest == ["a.jar", "x"]
    opts, jar, rest = parse_flink_run(["run", "-py", "j.py", "--in", "x", "-p", "2"])
    assert opts == [("-py", "j.py")] and jar is None and rest == ["--in", "x", "-p", "2"]
    assert parse_flink_run(["flink", "run", "a.jar"]) == ([], "a.jar", [])
    assert parse_flink_run(["run", "--", "-odd.jar"]) == ([], "-odd.jar", [])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "must start with the action 'run'"),
        (["a.jar"], "must start with the action 'run'"),
        (["-m", "yarn-cluster", "a.jar"], "must start with the action 'run'"),
        (["cancel", "0" * 32], "'cancel' is not supported"),
        (["stop", "0" * 32], "'stop' is not supported"),
        (["list"], "'list' is not supported"),
        (["savepoint", "0" * 32], "'savepoint' is not supported"),
        (["info", "a.jar"], "'info' is not supported"),
        (["run-application", "-t", "local", "a.jar"], "'run-application' is not supported"),
        (["run", "--frobnicate", "a.jar"], "unknown flink run option: --frobnicate"),
        (["run", "--frob=secretvalue", "a.jar"], "unknown flink run option: --frob"),
        (["run", "-x", "a.jar"], "unknown flink run option: -x"),
        (["run", "-c"], "-c needs a value"),
        (["run", "-D"], "-D needs a property=value"),
        (["run", "--detached=yes", "a.jar"], "--detached takes no value"),
        (["run", "a.jar", "a\x00b"], "NUL"),
    ],
)
def test_parse_refused(arguments, message):
    with pytest.raises(EngineRefused) as e:
        parse_flink_run(arguments)
    assert message in str(e.value)
    assert "secretvalue" not in str(e.value)


# --------------------------------------------------------------------------------- build


@needs_java
def test_build_argv_shape_and_layout(engine, fake_home, jar, tmp_path):
    wd = tmp_path / "wd"
    spec = engine.build(job(["run", "-c", "a.Main", str(jar), "x", "-m", "y z"]), CLUSTER, wd)
    assert spec.argv == [
        str(fake_home / "bin" / "flink"),
        "run",
        "-t",
        "local",
        "-c",
        "a.Main",
        str(jar.resolve()),
        "x",
        "-m",
        "y z",  # program arguments are passed verbatim, -m included
    ]
    assert spec.cwd == str(wd.resolve())
    assert spec.notes == []
    for d in ("flink-conf", "flink-log", "tmp"):
        assert (wd / d).is_dir()
    assert (wd / "flink-conf" / "log4j-cli.properties").is_file()
    info = json.loads((wd / "engine.json").read_text())
    assert info["engine"] == "flink" and info["target"] == "local"
    lo, hi = info["rest_ports"]
    assert hi - lo == 15 and lo != 8081
    conf = config_of(wd)
    assert conf["rest.bind-port"] == f"{lo}-{hi}"
    assert conf["rest.bind-address"] == "127.0.0.1"
    assert conf["rest.address"] == "127.0.0.1"
    assert conf["io.tmp.dirs"] == str(wd.resolve() / "tmp")
    assert "--add-opens=java.base/java.lang=ALL-UNNAMED" in conf["env.java.opts.all"]
    assert "taskmanager.numberOfTaskSlots" not in conf  # the mini-cluster sizes itself
    assert conf["jobmanager.rpc.port"] == 0
    assert "rest.port" not in conf


@needs_java
@pytest.mark.parametrize(
    ("given", "shown"),
    [
        (["-m", "yarn-cluster"], "replaced -m yarn-cluster with -t local"),
        (["--jobmanager", "h:1"], "replaced -m h:1 with -t local"),
        (["-t", "yarn-session"], "replaced -t yarn-session with -t local"),
        (["--target=remote"], "replaced -t remote with -t local"),
        (["-e", "remote"], "replaced -e remote with -t local"),
    ],
)
def test_target_options_replaced_with_note(engine, jar, tmp_path, given, shown):
    spec = engine.build(job(["run", *given, str(jar)]), CLUSTER, tmp_path / "wd")
    assert spec.argv[1:4] == ["run", "-t", "local"]
    assert spec.argv.count("-t") == 1 and "-m" not in spec.argv and "-e" not in spec.argv
    assert spec.notes == [shown]


@needs_java
def test_remote_cluster_target(engine, jar, tmp_path):
    cluster = ClusterSpec(cluster_id="c1", extra={"flink_jobmanager": "http://10.0.0.5:8081/"})
    spec = engine.build(job(["run", "-m", "yarn-cluster", "-d", str(jar)]), cluster, tmp_path)
    # a remote cluster's jobs are submitted detached: the client exits once they run
    assert spec.argv[1:7] == ["run", "-d", "-t", "remote", "-m", "10.0.0.5:8081"]
    assert spec.detached is True
    assert spec.argv.count("-m") == 1 and spec.argv.count("-d") == 1
    assert spec.notes == [
        "replaced -m yarn-cluster with -t remote -m 10.0.0.5:8081",
        "-d (detached): jobs on a remote Flink cluster are always submitted detached; "
        "the service follows the job through the jobmanager's REST API",
    ]
    conf = config_of(tmp_path)
    assert "rest.bind-port" not in conf
    assert conf["rest.address"] == "10.0.0.5" and conf["rest.port"] == 8081
    assert conf["execution.attached"] is False
    assert conf["taskmanager.numberOfTaskSlots"] == 1  # the distribution's, for remote
    info = json.loads((tmp_path / "engine.json").read_text())
    assert info["jobmanager"] == "10.0.0.5:8081" and info["rest_ports"] is None
    assert info["detached"] is True
    # without a -d of the user's: detached all the same, and no note
    spec = engine.build(job(["run", str(jar)]), cluster, tmp_path / "b")
    assert spec.detached and spec.argv[1:3] == ["run", "-d"] and spec.notes == []
    # the local mini-cluster stays attached
    spec = engine.build(job(["run", str(jar)]), CLUSTER, tmp_path / "c")
    assert not spec.detached and "-d" not in spec.argv


@needs_java
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"flink_jobmanager": "not a host"}, "must be host:port"),
        ({"flink_jobmanager": "https://10.0.0.5:8081"}, "TLS is not supported"),
        ({"flink_target": "remote"}, "has no flink_jobmanager"),
        ({"kind": "flink-remote"}, "has no flink_jobmanager"),
    ],
)
def test_bad_cluster_target_refused(engine, jar, tmp_path, extra, message):
    kind = extra.get("kind", "local")
    cluster = ClusterSpec(
        cluster_id="c", kind=kind, extra={k: v for k, v in extra.items() if k != "kind"}
    )
    with pytest.raises(EngineRefused, match=message):
        engine.build(job(["run", str(jar)]), cluster, tmp_path)


@needs_java
def test_detached_yarn_and_sae_dropped_with_notes(engine, jar, tmp_path):
    args = ["run", "-d", "-sae", "-yjm", "1024", "-yD", "a.password=hunter2", "-yd", str(jar)]
    spec = engine.build(job(args), CLUSTER, tmp_path)
    assert spec.argv[4:] == [str(jar.resolve())]
    assert spec.notes == [
        "ignored -d (detached): the service follows the job until it ends "
        "(a local mini-cluster dies with its client)",
        "ignored -sae: the service owns the cluster's lifetime",
        "ignored -yjm 1024: the cluster's configuration decides",
        "ignored -yD a.password: the cluster's configuration decides",
        "ignored -yd: the cluster's configuration decides",
    ]
    assert "hunter2" not in " ".join(spec.notes)


@needs_java
def test_properties_and_secrets(engine, jar, tmp_path):
    props = {
        "pipeline.name": "mine",
        "fs.obs.secret.key": "SECRET-1",
        "s3.access.key": "SECRET-2",
        "my.password": "SECRET-3",
        "rest.port": "8081",
    }
    args = ["run", "-Dstate.backend.type=hashmap", "-D", "x.token=SECRET-4", str(jar)]
    spec = engine.build(job(args, props), CLUSTER, tmp_path / "wd")
    line = " ".join(spec.argv) + " ".join(spec.notes) + json.dumps(spec.env)
    for i in range(1, 5):
        assert f"SECRET-{i}" not in line
    assert "-Dpipeline.name=mine" in spec.argv
    assert "-Dstate.backend.type=hashmap" in spec.argv
    # properties first, so the user's -D win
    assert spec.argv.index("-Dpipeline.name=mine") < spec.argv.index("-Dstate.backend.type=hashmap")
    assert "ignored property rest.port: set by the service" in spec.notes
    assert "property fs.obs.secret.key passed in the job's private configuration file" in (
        spec.notes
    )
    assert "-D x.token passed in the job's private configuration file" in spec.notes
    conf_file = tmp_path / "wd" / "flink-conf" / "config.yaml"
    assert conf_file.stat().st_mode & 0o077 == 0
    conf = read_flink_config(conf_file)
    assert conf["fs.obs.secret.key"] == "SECRET-1"
    assert conf["x.token"] == "SECRET-4"
    assert "rest.port" not in conf


@needs_java
def test_reserved_user_conf_dropped(engine, jar, tmp_path):
    args = ["run", "-Dexecution.target=remote", "-Drest.bind-port=8081", str(jar)]
    spec = engine.build(job(args), CLUSTER, tmp_path)
    assert not [a for a in spec.argv if a.startswith("-D")]
    assert spec.notes == [
        "ignored -D execution.target: set by the service",
        "ignored -D rest.bind-port: set by the service",
    ]


@needs_java
def test_env_is_built_from_scratch(engine, fake_home, jar, tmp_path, monkeypatch):
    monkeypatch.setenv("MRS_CANARY_VARIABLE", "canary-value")
    monkeypatch.setenv("FLINK_CONF_DIR", "/etc/not-ours")
    monkeypatch.setenv("PYTHONPATH", "/nowhere")
    wd = tmp_path / "wd"
    spec = engine.build(job(["run", str(jar)]), CLUSTER, wd)
    env = spec.env
    assert "MRS_CANARY_VARIABLE" not in env and "PYTHONPATH" not in env
    assert "canary-value" not in json.dumps(env)
    w = wd.resolve()
    assert env["HOME"] == str(w)
    assert env["FLINK_HOME"] == str(fake_home)
    assert env["FLINK_CONF_DIR"] == str(w / "flink-conf")
    assert env["FLINK_LOG_DIR"] == str(w / "flink-log")
    assert env["TMPDIR"] == str(w / "tmp")
    assert env["LANG"] == "C.UTF-8"
    java_home = env["JAVA_HOME"]
    parts = env["PATH"].split(":")
    assert parts[0] == str(Path(java_home) / "bin")
    assert parts[1] == str(fake_home.parents[3] / "bin")  # the Flink venv's bin
    assert f"-Djava.io.tmpdir={w / 'tmp'}" in env["JVM_ARGS"]


@needs_java
def test_python_job_gets_the_flink_venv_python(engine, fake_home, pyfile, tmp_path):
    spec = engine.build(job(["run", "-py", str(pyfile), "--in", "x"]), CLUSTER, tmp_path)
    python = str(fake_home.parents[3] / "bin" / "python")
    assert spec.argv[2:] == [
        "-t",
        "local",
        "-py",
        str(pyfile.resolve()),
        "-pyexec",
        python,
        "-pyclientexec",
        python,
        "--",
        "--in",
        "x",
    ]
    assert flink_python_of(fake_home) == python


@needs_java
def test_python_positional_file_and_given_interpreters(engine, pyfile, tmp_path):
    spec = engine.build(job(["run", str(pyfile), "a"]), CLUSTER, tmp_path / "a")
    assert spec.notes == [f"passed {pyfile} as -py {pyfile}"]
    i = spec.argv.index("-py")
    assert spec.argv[i + 1] == str(pyfile.resolve()) and spec.argv[-1] == "a"
    spec = engine.build(
        job(["run", "-pyexec", "/opt/py/bin/python3", "-py", str(pyfile)]), CLUSTER, tmp_path / "b"
    )
    assert spec.argv.count("-pyexec") == 1
    assert spec.argv[spec.argv.index("-pyexec") + 1] == "/opt/py/bin/python3"
    assert spec.argv.count("-pyclientexec") == 1


@needs_java
def test_python_without_pyflink_python_refused(tmp_path, pyfile):
    home = make_fake_flink(tmp_path / "dist", venv=False)
    engine = FlinkEngine(flink_home=str(home))
    with pytest.raises(EngineRefused, match="need a Python that has pyflink"):
        engine.build(job(["run", "-py", str(pyfile)]), CLUSTER, tmp_path / "wd")
    cluster = ClusterSpec(cluster_id="c", extra={"flink_python": "/opt/pf/bin/python"})
    spec = engine.build(job(["run", "-py", str(pyfile)]), cluster, tmp_path / "wd2")
    assert spec.argv[spec.argv.index("-pyexec") + 1] == "/opt/pf/bin/python"
    # a jar job does not need it
    jar = tmp_path / "x.jar"
    jar.write_bytes(b"PK")
    engine.build(job(["run", str(jar)]), CLUSTER, tmp_path / "wd3")


@needs_java
@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["run"], "needs a jar file or a Python file"),
        (["run", "-c", "a.B"], "needs a jar file or a Python file"),
        (["run", "/nonexistent/app.jar"], "jar file not found: /nonexistent/app.jar"),
        (["run", "hdfs://nn/app.jar"], "the Flink jar must be a local file"),
        (["run", "ftp://h/app.jar"], "unsupported URL scheme ftp://"),
        (["run", "-py", "/nonexistent/j.py"], "Python file not found"),
        (["run", "-py", "s3a://b/j.py"], "the Python file must be a local file"),
        (["run", "-p", "zero", "/x.jar"], "-p needs a positive integer"),
    ],
)
def test_build_refused(engine, tmp_path, arguments, message):
    with pytest.raises(EngineRefused) as e:
        engine.build(job(arguments), CLUSTER, tmp_path)
    assert message in str(e.value)


@needs_java
def test_jar_directory_refused(engine, tmp_path):
    d = tmp_path / "dir.jar"
    d.mkdir()
    with pytest.raises(EngineRefused, match="jar file not found"):
        engine.build(job(["run", str(d)]), CLUSTER, tmp_path / "wd")


@needs_java
def test_input_roots(engine, tmp_path):
    root = tmp_path / "root"
    (root / "lib").mkdir(parents=True)
    ok = root / "app.jar"
    ok.write_bytes(b"PK")
    outside = tmp_path / "outside.jar"
    outside.write_bytes(b"PK")
    escape = root / "escape.jar"
    escape.symlink_to(outside)
    cluster = ClusterSpec(cluster_id="c", input_roots=(str(root),))

    spec = engine.build(
        job(["run", "-pyfs", f"{root}/lib/a.py,hdfs://nn/b.zip", "-C", f"file://{ok}", str(ok)]),
        cluster,
        tmp_path / "wd",
    )
    assert spec.argv[-1] == str(ok.resolve())
    assert f"{root.resolve()}/lib/a.py,hdfs://nn/b.zip" in spec.argv
    assert ok.resolve().as_uri() in spec.argv

    for args in (
        ["run", str(outside)],
        ["run", str(escape)],
        ["run", f"file://{outside}"],
        ["run", "-pyfs", str(outside), str(ok)],
        ["run", "-C", f"file://{outside}", str(ok)],
        ["run", "-s", "/tmp/savepoint-1", str(ok)],
        ["run", "-pyreq", f"{root}/req.txt#{tmp_path}/cache", str(ok)],
    ):
        with pytest.raises(EngineRefused, match="not under an allowed input root"):
            engine.build(job(args), cluster, tmp_path / "wd")


def test_wrong_job_type_refused(engine, jar, tmp_path):
    spec = JobSpec(job_id="j", job_type="SparkSubmit", job_name="t", arguments=[], properties={})
    with pytest.raises(EngineRefused, match="does not run SparkSubmit"):
        engine.build(spec, CLUSTER, tmp_path)


@needs_java
def test_flink_not_found_refused(jar, tmp_path, monkeypatch):
    monkeypatch.delenv("FLINK_HOME", raising=False)
    engine = FlinkEngine(data_dir=tmp_path / "data")
    with pytest.raises(EngineRefused, match="mrs-jobs engines install flink"):
        engine.build(job(["run", str(jar)]), CLUSTER, tmp_path / "wd")


# ------------------------------------------------------------------------- config files


def test_simple_yaml_reader_matches_pyyaml():
    yaml = pytest.importorskip("yaml")
    flat: dict = {}
    from mrs_jobs.engines.flink_conf import _flatten

    _flatten(yaml.safe_load(DIST_CONFIG), "", flat)
    simple = _read_simple_yaml(DIST_CONFIG)
    assert {k: str(v) for k, v in flat.items()} == simple
    assert simple["jobmanager.rpc.port"] == "6123"
    assert simple["env.java.opts.all"].startswith("--add-opens=")


def test_config_round_trip_of_odd_values(engine, jar, tmp_path):
    if find_java_home() is None:
        pytest.skip("no Java")
    odd = 'a "quoted" value: with # hash\nand newline'
    spec = engine.build(job(["run", str(jar)], {"my.secret": odd}), CLUSTER, tmp_path)
    assert odd not in " ".join(spec.argv)
    assert read_flink_config(tmp_path / "flink-conf" / "config.yaml")["my.secret"] == odd


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
