"""FlinkEngine: parsing and build() with a fake Flink home (argv, notes, config files, secrets,
input roots). Reading jobs back, the installer and real local runs: test_flink_local.py;
remote session clusters (detached jobs): test_flink_remote.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support_flink import DIST_CONFIG, job, make_fake_flink

from mrs_jobs.engines.base import ClusterSpec, EngineRefused, JobSpec
from mrs_jobs.engines.flink import FlinkEngine
from mrs_jobs.engines.flink_args import parse_flink_run
from mrs_jobs.engines.flink_conf import _read_simple_yaml, read_flink_config
from mrs_jobs.engines.install import flink_python_of
from mrs_jobs.engines.java import find_java_home
from mrs_jobs.errors import InvalidParameter

CLUSTER = ClusterSpec(cluster_id="c1")


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


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"flink_jobmanager": "not a host"}, "must be host:port"),
        ({"flink_jobmanager": "https://10.0.0.5:8081"}, "TLS"),
        ({"flink_target": "remote"}, "flink_jobmanager: is required"),
        ({"kind": "flink-remote"}, "flink_jobmanager: is required"),
    ],
)
def test_bad_cluster_target_refused(extra, message):
    """A bad target never reaches the engine: the cluster's settings refuse it when parsed
    (when saved, and when a stored config is read for a job)."""
    kind = extra.pop("kind", "local")
    with pytest.raises(InvalidParameter, match=message):
        ClusterSpec(cluster_id="c", kind=kind, extra=extra)


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
