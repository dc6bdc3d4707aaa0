"""MapReduceEngine: build() unit tests, observe() on synthetic logs, and real Hadoop runs."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import time
import zipfile
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from support_jobs import WORDCOUNT, make_jar
from support_recorded import Replay, load, serve

from mrs_jobs.engines.base import ClusterSpec, EngineRefused, JobSpec, LaunchSpec, Observation
from mrs_jobs.engines.java import find_java_home, find_spark_home
from mrs_jobs.engines.mapreduce import (
    CLASSPATH_JARS,
    RUNJAR,
    SITE_FILES,
    MapReduceEngine,
    hadoop_jars,
    jar_main_class,
    parse_hadoop_log,
    site_xml,
)
from mrs_jobs.errors import InvalidParameter

JOB_ID_RE = re.compile(r"job_local\d+_\d+")


def job(arguments: list[str], properties: dict[str, str] | None = None) -> JobSpec:
    return JobSpec(
        job_id="j1",
        job_type="MapReduce",
        job_name="t",
        arguments=arguments,
        properties=properties or {},
    )


# ---------------------------------------------------------------------- unit fixtures


@pytest.fixture
def homes(tmp_path: Path) -> tuple[Path, Path]:
    """A fake JAVA_HOME and a fake Spark home whose jars/ holds empty stand-ins."""
    java = tmp_path / "jdk"
    (java / "bin").mkdir(parents=True)
    (java / "bin" / "java").write_text("#!/bin/sh\n")
    (java / "bin" / "java").chmod(0o755)
    spark = tmp_path / "spark"
    (spark / "bin").mkdir(parents=True)
    (spark / "bin" / "spark-submit").write_text("")
    (spark / "jars").mkdir()
    for artifact in CLASSPATH_JARS:
        (spark / "jars" / f"{artifact}-1.0.jar").write_text("")
    for other in ("hadoop-client-api-0.9.jar", "spark-core_2.13-4.0.0.jar", "log4j-api-scala.jar"):
        (spark / "jars" / other).write_text("")
    return java, spark


@pytest.fixture
def cluster(homes) -> ClusterSpec:
    java, spark = homes
    return ClusterSpec(cluster_id="c1", java_home=str(java), spark_home=str(spark))


@pytest.fixture
def jar(tmp_path: Path) -> Path:
    return make_jar(tmp_path / "in" / "wc.jar", {"WordCount.class": b"\xca\xfe"})


@pytest.fixture
def engine() -> MapReduceEngine:
    return MapReduceEngine()


def cp_of(argv: list[str]) -> list[str]:
    return argv[argv.index("-cp") + 1].split(":")


def with_extra(cluster: ClusterSpec, **extra: str) -> ClusterSpec:
    return ClusterSpec(
        cluster_id=cluster.cluster_id,
        input_roots=cluster.input_roots,
        java_home=cluster.java_home,
        spark_home=cluster.spark_home,
        extra=dict(extra),
    )


def conf_props(path: Path) -> dict[str, str]:
    root = ET.parse(path).getroot()
    return {p.findtext("name"): p.findtext("value") for p in root.iter("property")}


# ------------------------------------------------------------------------------ build


def test_argv_shape(engine, cluster, jar, tmp_path, homes):
    java, spark = homes
    wd = tmp_path / "wd"
    args = [str(jar), "WordCount", "in dir", "$(rm -rf /); echo", "--x=1"]
    spec = engine.build(job(args), cluster, wd)
    argv = spec.argv
    assert argv[0] == str(java / "bin" / "java")
    assert argv[1] == "-Xmx1g"
    assert f"-Djava.io.tmpdir={wd / 'tmp'}" in argv
    assert f"-Dhadoop.tmp.dir={wd / 'hadoop-tmp'}" in argv
    log4j = wd / "conf" / "log4j2.properties"
    assert f"-Dlog4j2.configurationFile={log4j}" in argv
    assert "org.apache.hadoop.mapreduce.Job" in log4j.read_text()
    i = argv.index(RUNJAR)
    assert argv[i - 2] == "-cp"
    assert argv[i + 1] == str(jar.resolve())
    assert argv[i + 2 :] == args[1:]  # verbatim
    cp = cp_of(argv)
    assert cp[0] == str(wd / "conf")
    assert cp[1:] == [str(spark / "jars" / f"{a}-1.0.jar") for a in CLASSPATH_JARS]
    assert str(jar.resolve()) not in cp  # RunJar loads it (and its lib/) itself
    assert spec.cwd == str(wd)
    assert (wd / "tmp").is_dir() and (wd / "hadoop-tmp").is_dir()


def test_heap_from_cluster(engine, cluster, jar, tmp_path):
    spec = engine.build(job([str(jar), "M"]), with_extra(cluster, mapreduce_heap="512m"), tmp_path)
    assert "-Xmx512m" in spec.argv and "-Xmx1g" not in spec.argv
    with pytest.raises(InvalidParameter, match="mapreduce_heap"):  # refused by the settings
        with_extra(cluster, mapreduce_heap="1g -Dx")


def test_file_url_and_symlink_resolved(engine, cluster, jar, tmp_path):
    link = tmp_path / "link.jar"
    link.symlink_to(jar)
    spec = engine.build(job([f"file://{link}", "M"]), cluster, tmp_path / "wd")
    assert spec.argv[spec.argv.index(RUNJAR) + 1] == str(jar.resolve())
    spec = engine.build(job([f"file:{jar}", "M"]), cluster, tmp_path / "wd")
    assert spec.argv[spec.argv.index(RUNJAR) + 1] == str(jar.resolve())


def test_input_roots(engine, cluster, jar, tmp_path):
    roots = ClusterSpec(
        cluster_id="c1",
        input_roots=(str(jar.parent),),
        java_home=cluster.java_home,
        spark_home=cluster.spark_home,
    )
    engine.build(job([str(jar), "M"]), roots, tmp_path / "wd")
    outside = make_jar(tmp_path / "other" / "x.jar", {})
    with pytest.raises(EngineRefused, match="not under an allowed input root"):
        engine.build(job([str(outside), "M"]), roots, tmp_path / "wd")
    sneaky = jar.parent / "sneaky.jar"
    sneaky.symlink_to(outside)
    with pytest.raises(EngineRefused, match="not under an allowed input root"):
        engine.build(job([str(sneaky), "M"]), roots, tmp_path / "wd")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "first argument"),
        (["", "M"], "first argument"),
        (["hdfs://nn:8020/jobs/wc.jar", "M"], "hdfs:// job jars need a Hadoop client"),
        (["obs://bucket/wc.jar", "M"], "obs:// job jars are not supported"),
        (["ftp://host/wc.jar", "M"], "unsupported URL scheme"),
        (["file://relative/wc.jar", "M"], "absolute local path"),
        (["WordCount", "in", "out"], "a .jar file"),
        (["/nowhere/wc.jar", "M"], "job jar not found"),
        (["JAR", "M\x00"], "NUL"),
    ],
)
def test_refused(engine, cluster, jar, tmp_path, args, message):
    args = [str(jar) if a == "JAR" else a for a in args]
    with pytest.raises(EngineRefused, match=re.escape(message)):
        engine.build(job(args), cluster, tmp_path / "wd")


def test_refused_wrong_type_bad_jar_and_missing_main(engine, cluster, jar, tmp_path):
    with pytest.raises(EngineRefused, match="does not run SparkSubmit"):
        engine.build(JobSpec("j", "SparkSubmit", "t", [str(jar)], {}), cluster, tmp_path / "wd")
    bad = tmp_path / "in" / "bad.jar"
    bad.write_text("not a zip")
    with pytest.raises(EngineRefused, match="not a readable jar"):
        engine.build(job([str(bad), "M"]), cluster, tmp_path / "wd")
    with pytest.raises(EngineRefused, match="no Main-Class"):
        engine.build(job([str(jar)]), cluster, tmp_path / "wd")


def test_manifest_main_class(engine, cluster, tmp_path):
    long_name = "org.example." + "very" * 20 + ".Main"
    with_main = make_jar(tmp_path / "m.jar", {}, main_class=long_name)
    # the manifest writer of the JDK wraps lines at 72 bytes; emulate it
    raw = f"Manifest-Version: 1.0\r\nMain-Class: {long_name}\r\n\r\n"
    wrapped = raw[:72] + "\r\n " + raw[72:]
    with zipfile.ZipFile(tmp_path / "w.jar", "w") as zf:
        zf.writestr("META-INF/MANIFEST.MF", wrapped)
    assert jar_main_class(with_main) == long_name
    assert jar_main_class(tmp_path / "w.jar") == long_name
    spec = engine.build(job([str(with_main)]), cluster, tmp_path / "wd")
    assert spec.argv[-1] == str(with_main.resolve())


def test_missing_hadoop_jars(engine, cluster, jar, tmp_path, homes):
    _, spark = homes
    (spark / "jars" / "hadoop-client-runtime-1.0.jar").unlink()
    with pytest.raises(EngineRefused, match="hadoop-client-runtime"):
        engine.build(job([str(jar), "M"]), cluster, tmp_path / "wd")


def test_hadoop_jars_picks_newest_exact_artifact(tmp_path):
    for name in ("hadoop-client-api-3.4.1.jar", "hadoop-client-api-3.10.0.jar", "x.jar"):
        (tmp_path / name).write_text("")
    found = hadoop_jars(tmp_path)
    assert found == {"hadoop-client-api": tmp_path / "hadoop-client-api-3.10.0.jar"}


def test_properties_in_private_conf_files_not_argv(engine, cluster, jar, tmp_path):
    secret = "s3cr3t-<&>-value"
    props = {
        "mapreduce.job.reduces": "2",
        "fs.obs.secret.key": secret,
        "fs.obs.access.key": "AK-VALUE",
        "my.path": "a b & <c>",
        "mapreduce.framework.name": "yarn",
        "fs.defaultFS": "hdfs://nn",
        "hadoop.tmp.dir": "/tmp/elsewhere",
    }
    wd = tmp_path / "wd"
    spec = engine.build(job([str(jar), "M"], props), cluster, wd)
    flat = "\n".join(spec.argv + list(spec.env.values()) + spec.notes)
    assert secret not in flat and "AK-VALUE" not in flat
    assert "2" not in [a.partition("=")[2] for a in spec.argv if a.startswith("-D")]
    assert stat.S_IMODE((wd / "conf").stat().st_mode) == 0o700
    assert stat.S_IMODE((wd / "hadoop-tmp").stat().st_mode) == 0o700
    for name in SITE_FILES:
        path = wd / "conf" / name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        conf = conf_props(path)  # also proves the XML is well-formed and escaped
        assert conf["fs.obs.secret.key"] == secret
        assert conf["my.path"] == "a b & <c>"
        assert conf["mapreduce.job.reduces"] == "2"
        assert conf["mapreduce.framework.name"] == "local"
        assert conf["fs.defaultFS"] == "file:///"
        assert conf["hadoop.tmp.dir"] == str(wd / "hadoop-tmp")
    assert any("fs.obs.secret.key" in n and "not on the command line" in n for n in spec.notes)
    for key in ("mapreduce.framework.name", "fs.defaultFS", "hadoop.tmp.dir"):
        assert f"ignored property {key}: set by the service" in spec.notes


def test_rebuild_tightens_existing_files(engine, cluster, jar, tmp_path):
    wd = tmp_path / "wd"
    (wd / "conf").mkdir(parents=True)
    (wd / "conf" / "core-site.xml").write_text("old")
    (wd / "conf" / "core-site.xml").chmod(0o644)
    (wd / "conf").chmod(0o755)
    engine.build(job([str(jar), "M"], {"a.password": "pw"}), cluster, wd)
    assert stat.S_IMODE((wd / "conf" / "core-site.xml").stat().st_mode) == 0o600
    assert stat.S_IMODE((wd / "conf").stat().st_mode) == 0o700
    assert conf_props(wd / "conf" / "core-site.xml")["a.password"] == "pw"


def test_invalid_property_refused(engine, cluster, jar, tmp_path):
    with pytest.raises(EngineRefused, match="control character"):
        engine.build(job([str(jar), "M"], {"k": "a\x01b"}), cluster, tmp_path / "wd")
    with pytest.raises(EngineRefused, match="invalid property name"):
        engine.build(job([str(jar), "M"], {" ": "v"}), cluster, tmp_path / "wd")


def test_hadoop_conf_dir_mode(engine, cluster, jar, tmp_path):
    theirs = tmp_path / "hadoop-conf"
    theirs.mkdir()
    (theirs / "core-site.xml").write_text("<configuration/>")
    wd = tmp_path / "wd"
    spec = engine.build(
        job([str(jar), "M"], {"mapreduce.job.queuename": "q1", "fs.defaultFS": "x"}),
        with_extra(cluster, hadoop_conf_dir=str(theirs)),
        wd,
    )
    cp = cp_of(spec.argv)
    assert cp[:2] == [str(wd / "conf"), str(theirs)]
    assert spec.env["HADOOP_CONF_DIR"] == str(theirs)
    assert any(str(theirs) in n for n in spec.notes)
    root = ET.parse(wd / "conf" / "mapred-site.xml").getroot()
    include = root.find("{http://www.w3.org/2001/XInclude}include")
    assert include is not None and include.get("href") == str(theirs / "mapred-site.xml")
    conf = conf_props(wd / "conf" / "mapred-site.xml")
    assert conf == {"mapreduce.job.queuename": "q1"}  # no local-runner defaults
    with pytest.raises(EngineRefused, match="hadoop_conf_dir"):
        engine.build(
            job([str(jar), "M"]), with_extra(cluster, hadoop_conf_dir=str(tmp_path / "no")), wd
        )


def test_env_from_scratch(engine, cluster, jar, tmp_path, monkeypatch, homes):
    java, _ = homes
    monkeypatch.setenv("MRS_CANARY", "leak")
    monkeypatch.setenv("CLASSPATH", "/leak.jar")
    monkeypatch.setenv("HADOOP_CONF_DIR", "/leak")
    wd = tmp_path / "wd"
    spec = engine.build(job([str(jar), "M"]), cluster, wd)
    assert set(spec.env) == {"PATH", "LANG", "HOME", "JAVA_HOME", "TMPDIR"}
    assert "leak" not in "".join(spec.env.values())
    assert spec.env["HOME"] == str(wd)
    assert spec.env["TMPDIR"] == str(wd / "tmp")
    assert spec.env["JAVA_HOME"] == str(java)
    assert spec.env["PATH"].split(":")[0] == str(java / "bin")


def test_site_xml_roundtrip():
    text = site_xml(None, [("k", "v ${x} & <y> \"q\" 'a'"), ("n", "")])
    root = ET.fromstring(text)
    assert [(p.findtext("name"), p.findtext("value") or "") for p in root] == [
        ("k", "v ${x} & <y> \"q\" 'a'"),
        ("n", ""),
    ]


# ---------------------------------------------------------------------------- observe

LOG = """\
[mrs-jobs] note about job_local1_9
26/11/29 21:39:20 WARN JobResourceUploader: Hadoop command-line option parsing not performed.
26/11/29 21:39:21 INFO Job: The url to track the job: http://localhost:8080/
26/11/29 21:39:21 INFO Job: Running job: job_local1668870876_0001
26/11/29 21:39:22 INFO Job: Job job_local1668870876_0001 running in uber mode : false
26/11/29 21:39:22 INFO Job:  map 0% reduce 0%
26/11/29 21:39:25 INFO Job:  map 60% reduce 0%
"""


def observe_text(engine: MapReduceEngine, wd: Path, text: str | bytes) -> Observation:
    wd.mkdir(parents=True, exist_ok=True)
    data = text.encode() if isinstance(text, str) else text
    (wd / "stderr.log").write_bytes(data)
    return engine.observe(job([]), wd, LaunchSpec(argv=[], env={}, cwd=str(wd)))


def test_observe_nothing_yet(engine, tmp_path):
    launch = LaunchSpec(argv=[], env={}, cwd=str(tmp_path))
    assert engine.observe(job([]), tmp_path / "missing", launch) == Observation()
    assert observe_text(engine, tmp_path, "") == Observation()
    shim_only = "[mrs-jobs] job_local1_1 would be a note\nconf probe\n map 50% reduce 0%\n"
    assert observe_text(engine, tmp_path, shim_only) == Observation()


def test_observe_job_id_and_progress(engine, tmp_path):
    obs = observe_text(engine, tmp_path, LOG)
    assert obs == Observation(app_id="job_local1668870876_0001", progress=30.0, running=True)
    done = LOG + "26/11/29 INFO Job:  map 100% reduce 100%\nJob job_local1668870876_0001 ok\n"
    assert observe_text(engine, tmp_path, done).progress == 99.0


def test_observe_second_job_resets_progress(engine, tmp_path):
    text = LOG + "INFO Job:  map 100% reduce 100%\nINFO Job: Running job: job_local7_0002\n"
    assert observe_text(engine, tmp_path, text) == Observation(
        app_id="job_local7_0002", progress=None, running=True
    )


def test_observe_large_log_head_and_tail(engine, tmp_path):
    noise = "".join(f"user line {i} " + "x" * 80 + "\n" for i in range(5000))
    text = LOG + noise + "INFO Job:  map 100% reduce 40%\n" + noise[:1000]
    obs = observe_text(engine, tmp_path, text)
    assert obs.app_id == "job_local1668870876_0001"
    assert obs.progress == 70.0


def test_observe_yarn_tracking_url_and_garbage(engine, tmp_path):
    text = (
        b"\xff\xfe garbage\n"
        b"INFO Job: The url to track the job: http://rm:8088/proxy/application_17_0003/\n"
        b"INFO Job: Running job: job_17_0003\n"
        b"INFO Job:  map 20% reduce 0%\n"
    )
    obs = observe_text(engine, tmp_path, text)
    assert obs.app_id == "job_17_0003"
    assert obs.tracking_url == "http://rm:8088/proxy/application_17_0003/"
    assert obs.progress == 10.0
    assert parse_hadoop_log(LOG)[2] is None  # the local runner's placeholder URL is dropped


def test_observe_never_raises(engine, tmp_path):
    (tmp_path / "stderr.log").mkdir()
    launch = LaunchSpec(argv=[], env={}, cwd=str(tmp_path))
    assert engine.observe(job([]), tmp_path, launch) == Observation()


# ----------------------------------------------------------------- MapReduce on YARN

YARN_APP = "application_1764460800000_0042"
YARN_LOG = f"""\
26/11/30 00:43:30 INFO client.DefaultNoHARMFailoverProxyProvider: Connecting to RM at rm:8032
26/11/30 00:43:32 INFO impl.YarnClientImpl: Submitted application {YARN_APP}
26/11/30 00:43:32 INFO mapreduce.Job: The url to track the job: http://rm:8088/proxy/{YARN_APP}/
26/11/30 00:43:32 INFO mapreduce.Job: Running job: job_1764460800000_0042
26/11/30 00:43:40 INFO mapreduce.Job: Job job_1764460800000_0042 running in uber mode : false
26/11/30 00:43:40 INFO mapreduce.Job:  map 50% reduce 0%
"""


def yarn_site(conf: Path, rm_address: str = "rm.example.internal:8088") -> Path:
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "yarn-site.xml").write_text(
        "<configuration><property><name>yarn.resourcemanager.webapp.address</name>"
        f"<value>{rm_address}</value></property></configuration>"
    )
    (conf / "mapred-site.xml").write_text("<configuration/>")
    return conf


def on_yarn(cluster: ClusterSpec, conf: Path, **extra: str) -> ClusterSpec:
    return ClusterSpec(
        cluster_id=cluster.cluster_id,
        kind="yarn",
        java_home=cluster.java_home,
        spark_home=cluster.spark_home,
        extra={"hadoop_conf_dir": str(conf), **extra},
    )


def test_yarn_build(engine, cluster, jar, tmp_path):
    conf = yarn_site(tmp_path / "hadoop-conf")
    wd = tmp_path / "wd"
    props = {
        "mapreduce.framework.name": "local",
        "mapreduce.job.queuename": "mine",
        "mapreduce.map.memory.mb": "2048",
    }
    spec = engine.build(
        job([str(jar), "WordCount", "hdfs:///in", "hdfs:///out"], props),
        on_yarn(cluster, conf, yarn_queue="etl", yarn_user="etl"),
        wd,
    )
    assert spec.detached is False  # the client is the job (waitForCompletion, chained jobs)
    assert spec.argv[spec.argv.index(RUNJAR) + 2 :] == ["WordCount", "hdfs:///in", "hdfs:///out"]
    assert cp_of(spec.argv)[:2] == [str(wd / "conf"), str(conf.resolve())]
    assert spec.env["HADOOP_CONF_DIR"] == spec.env["YARN_CONF_DIR"] == str(conf.resolve())
    assert spec.env["HADOOP_USER_NAME"] == "etl"
    for name in SITE_FILES:
        root = ET.parse(wd / "conf" / name).getroot()
        include = root.find("{http://www.w3.org/2001/XInclude}include")
        assert include is not None and include.get("href") == str(conf.resolve() / name)
        assert conf_props(wd / "conf" / name) == {
            "mapreduce.framework.name": "yarn",
            "mapreduce.job.queuename": "etl",
            "mapreduce.map.memory.mb": "2048",
        }
    assert "ignored property mapreduce.framework.name: set by the service" in spec.notes
    assert "ignored property mapreduce.job.queuename: set by the service" in spec.notes
    assert any("runs on YARN" in n and "http://rm.example.internal:8088" in n for n in spec.notes)
    info = json.loads((wd / "engine.json").read_text())
    assert info == {
        "engine": "mapreduce",
        "kind": "yarn",
        "rm_url": "http://rm.example.internal:8088",
        "yarn_user": "etl",
    }


def test_yarn_build_without_queue_lets_the_job_choose(engine, cluster, jar, tmp_path):
    conf = yarn_site(tmp_path / "hadoop-conf")
    wd = tmp_path / "wd"
    spec = engine.build(
        job([str(jar), "M"], {"mapreduce.job.queuename": "mine"}), on_yarn(cluster, conf), wd
    )
    assert conf_props(wd / "conf" / "mapred-site.xml") == {
        "mapreduce.framework.name": "yarn",
        "mapreduce.job.queuename": "mine",
    }
    assert "HADOOP_USER_NAME" not in spec.env


def test_yarn_build_refusals(engine, cluster, jar, tmp_path):
    with pytest.raises(EngineRefused, match="hadoop_conf_dir"):
        engine.build(
            job([str(jar), "M"]),
            on_yarn(cluster, tmp_path / "x", hadoop_conf_dir=""),
            tmp_path / "wd",
        )
    bare = tmp_path / "bare-conf"
    bare.mkdir()
    with pytest.raises(EngineRefused, match="yarn_rm_url"):
        engine.build(job([str(jar), "M"]), on_yarn(cluster, bare), tmp_path / "wd")


def test_local_build_records_local_engine_info(engine, cluster, jar, tmp_path):
    wd = tmp_path / "wd"
    engine.build(job([str(jar), "M"]), cluster, wd)
    assert json.loads((wd / "engine.json").read_text()) == {"engine": "mapreduce", "kind": "local"}
    launch = LaunchSpec(argv=[], env={}, cwd=str(wd))
    (wd / "stderr.log").write_text(YARN_LOG)
    assert engine.cancel(job([]), wd, launch) is False  # nothing to ask an RM
    assert engine.status(job([]), wd, launch, "job_1764460800000_0042", None) is None


def yarn_workdir(engine, cluster, jar, tmp_path, rm_url: str, **extra: str) -> Path:
    conf = yarn_site(tmp_path / "hadoop-conf")
    wd = tmp_path / "wd"
    engine.build(job([str(jar), "M"]), on_yarn(cluster, conf, yarn_rm_url=rm_url, **extra), wd)
    return wd


def test_yarn_observe_reports_the_application(engine, cluster, jar, tmp_path):
    wd = yarn_workdir(engine, cluster, jar, tmp_path, "http://rm:8088")
    obs = observe_text(engine, wd, YARN_LOG)
    assert obs == Observation(
        app_id=YARN_APP,
        tracking_url=f"http://rm:8088/proxy/{YARN_APP}/",
        progress=25.0,
        running=True,
    )


@pytest.mark.parametrize(
    ("fixture", "state"),
    [
        ("yarn/app_accepted.json", "pending"),
        ("yarn/app_running.json", "running"),
        ("yarn/app_finished_succeeded.json", "succeeded"),
        ("yarn/app_failed.json", "failed"),
        ("yarn/app_killed.json", "killed"),
        ("yarn/app_not_found.json", "unknown"),
    ],
)
@pytest.mark.parametrize("recorded_id", ["job_1764460800000_0042", YARN_APP])
def test_yarn_status_through_the_rm(engine, cluster, jar, tmp_path, fixture, state, recorded_id):
    replay = Replay(load(fixture))
    with serve(replay) as url:
        wd = yarn_workdir(engine, cluster, jar, tmp_path, url)
        launch = LaunchSpec(argv=[], env={}, cwd=str(wd))
        got = engine.status(job([]), wd, launch, recorded_id, None)
    replay.done()
    assert got is not None and got.state == state


def test_yarn_status_rm_down_is_none(engine, cluster, jar, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    wd = yarn_workdir(engine, cluster, jar, tmp_path, f"http://127.0.0.1:{port}")
    launch = LaunchSpec(argv=[], env={}, cwd=str(wd))
    assert engine.status(job([]), wd, launch, YARN_APP, None) is None


def test_yarn_cancel_kills_through_the_rm(engine, cluster, jar, tmp_path):
    replay = Replay(load("yarn/kill_as_user.json"), load("yarn/app_killed.json"))
    with serve(replay) as url:
        wd = yarn_workdir(engine, cluster, jar, tmp_path, url, yarn_user="etl")
        launch = LaunchSpec(argv=[], env={}, cwd=str(wd))
        assert engine.cancel(job([]), wd, launch) is False  # nothing submitted yet: no request
        assert replay.seen == []
        (wd / "stderr.log").write_text(YARN_LOG)
        assert engine.cancel(job([]), wd, launch) is True  # PUT .../state {"state": "KILLED"}
        got = engine.status(job([]), wd, launch, YARN_APP, None)
    replay.done()
    assert got is not None and got.state == "killed"


def test_yarn_cancel_refused_by_rm_is_false(engine, cluster, jar, tmp_path):
    replay = Replay(load("yarn/kill_forbidden.json"))
    with serve(replay) as url:
        wd = yarn_workdir(engine, cluster, jar, tmp_path, url)
        (wd / "stderr.log").write_text(YARN_LOG)
        assert engine.cancel(job([]), wd, LaunchSpec(argv=[], env={}, cwd=str(wd))) is False
    replay.done()


# -------------------------------------------------------------------------- real runs

JAVA_HOME = find_java_home()
SPARK_HOME = find_spark_home()
REAL_JARS = hadoop_jars(Path(SPARK_HOME) / "jars") if SPARK_HOME else {}
JAVAC = Path(JAVA_HOME) / "bin" / "javac" if JAVA_HOME else None
needs_hadoop = pytest.mark.skipif(
    JAVAC is None
    or not JAVAC.is_file()
    or not {"hadoop-client-api", "hadoop-client-runtime"} <= set(REAL_JARS),
    reason="no JDK (javac) or no Hadoop client jars in pyspark",
)


DEP = 'package dep; public class Dep { public static String tag() { return "DEP"; } }'
USES_DEP = """
public class UsesDep {
  public static void main(String[] a) {
    System.out.println("tag=" + dep.Dep.tag() + " args=" + String.join("|", a));
  }
}
"""


@pytest.fixture(scope="module")
def real_jars(tmp_path_factory) -> dict[str, Path]:
    """wc.jar (no Main-Class: the class is an argument) and uses.jar (Main-Class, lib/dep.jar)."""
    base = tmp_path_factory.mktemp("mr-jars")
    src, classes = base / "src", base / "classes"
    (src / "dep").mkdir(parents=True)
    (src / "WordCount.java").write_text(WORDCOUNT)
    (src / "dep" / "Dep.java").write_text(DEP)
    (src / "UsesDep.java").write_text(USES_DEP)
    t0 = time.monotonic()
    subprocess.run(
        [
            str(JAVAC),
            "-nowarn",
            "-d",
            str(classes),
            "-cp",
            str(REAL_JARS["hadoop-client-api"]),
            *[str(p) for p in sorted(src.rglob("*.java"))],
        ],
        check=True,
        timeout=60,
        capture_output=True,
    )
    print(f"javac took {time.monotonic() - t0:.1f} s")

    def classes_under(prefix: str) -> dict[str, bytes]:
        return {
            str(p.relative_to(classes)): p.read_bytes()
            for p in classes.rglob("*.class")
            if str(p.relative_to(classes)).startswith(prefix)
        }

    wc = make_jar(base / "wc.jar", classes_under("WordCount"))
    dep_jar = make_jar(base / "dep.jar", classes_under("dep/"))
    uses = make_jar(
        base / "uses.jar",
        {**classes_under("UsesDep"), "lib/dep.jar": dep_jar.read_bytes()},
        main_class="UsesDep",
    )
    return {"wc": wc, "uses": uses}


@pytest.fixture
def words(tmp_path: Path) -> Path:
    d = tmp_path / "words"
    d.mkdir()
    (d / "a.txt").write_text("the quick brown fox\nthe lazy dog\n")
    (d / "b.txt").write_text("The dog and the fox\n")
    return d


EXPECTED = "The\t1\nand\t1\nbrown\t1\ndog\t2\nfox\t2\nlazy\t1\nquick\t1\nthe\t3\n"


def start(spec: LaunchSpec) -> subprocess.Popen:
    wd = Path(spec.cwd)
    with open(wd / "stdout.log", "ab") as out, open(wd / "stderr.log", "ab") as err:
        return subprocess.Popen(
            spec.argv,
            env=spec.env,
            cwd=spec.cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
        )


def run(
    engine: MapReduceEngine, spec: JobSpec, wd: Path, *, timeout: float = 60.0
) -> tuple[int, list[Observation], LaunchSpec, float]:
    launch = engine.build(spec, ClusterSpec(cluster_id="c1"), wd)
    seen: list[Observation] = []
    t0 = time.monotonic()
    proc = start(launch)
    try:
        while proc.poll() is None:
            if time.monotonic() - t0 > timeout:
                pytest.fail(f"job did not finish in {timeout} s: {stderr_of(wd)[-3000:]}")
            seen.append(engine.observe(spec, wd, launch))
            time.sleep(0.1)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, seen, launch, time.monotonic() - t0


def stderr_of(wd: Path) -> str:
    return (wd / "stderr.log").read_text(errors="replace")


@pytest.mark.spark
@needs_hadoop
def test_real_wordcount(engine, real_jars, words, tmp_path):
    wd, out = tmp_path / "wd", tmp_path / "out"
    props = {"mrs.test.probe": "hello & bye", "fs.obs.secret.key": "TOPSECRET"}
    spec = job([str(real_jars["wc"]), "WordCount", str(words), str(out)], props)
    rc, _, launch, took = run(engine, spec, wd)
    print(f"wordcount took {took:.1f} s")
    err = stderr_of(wd)
    assert rc == 0, err[-3000:]
    assert (out / "part-r-00000").read_text() == EXPECTED
    assert (out / "_SUCCESS").exists()
    assert "PROBE=hello & bye SECRET_SET=true" in err
    assert "TOPSECRET" not in " ".join(launch.argv)
    assert re.search(r"INFO Job:  map 100% reduce 100%", err)
    final = engine.observe(spec, wd, launch)
    assert final.app_id is not None and JOB_ID_RE.fullmatch(final.app_id)
    assert final.running and final.progress == 99.0 and final.tracking_url is None
    # Hadoop's scratch space stayed in the workdir; RunJar cleaned its unpacked jar.
    assert (wd / "hadoop-tmp" / "mapred" / "staging").is_dir()
    assert list((wd / "tmp").iterdir()) == []


@pytest.mark.spark
@needs_hadoop
def test_real_progress_while_running(engine, real_jars, tmp_path):
    inp = tmp_path / "slow-in"
    inp.mkdir()
    for i in range(3):
        (inp / f"f{i}.txt").write_text("".join(f"w{j}\n" for j in range(8)))
    wd = tmp_path / "wd"
    spec = job(
        [str(real_jars["wc"]), "WordCount", str(inp), str(tmp_path / "out")],
        {"wc.sleep.ms": "50", "wc.reduce.sleep.ms": "1500"},
    )
    rc, seen, launch, took = run(engine, spec, wd)
    print(f"slow wordcount took {took:.1f} s")
    assert rc == 0, stderr_of(wd)[-3000:]
    expected = "".join(f"w{j}\t3\n" for j in range(8))
    assert (tmp_path / "out" / "part-r-00000").read_text() == expected
    live = [o for o in seen if o.running]
    assert live, "observe() never saw the job while it ran"
    assert {o.app_id for o in live} == {engine.observe(spec, wd, launch).app_id}
    progress = [o.progress for o in live if o.progress is not None]
    assert progress and all(0 <= p <= 99 for p in progress)
    assert min(progress) < 99, f"no intermediate progress seen: {sorted(set(progress))}"
    print(f"progress values seen: {sorted(set(progress))}")


@pytest.mark.spark
@needs_hadoop
@pytest.mark.parametrize("broken", ["missing-input", "output-exists"])
def test_real_broken_job(engine, real_jars, words, tmp_path, broken):
    out = tmp_path / "out"
    inp = words
    if broken == "missing-input":
        inp = tmp_path / "nope"
    else:
        out.mkdir()
    wd = tmp_path / "wd"
    spec = job([str(real_jars["wc"]), "WordCount", str(inp), str(out)])
    rc, _, launch, _ = run(engine, spec, wd)
    err = stderr_of(wd)
    assert rc != 0
    if broken == "missing-input":
        assert "Input path does not exist" in err
    else:
        assert "FileAlreadyExistsException" in err and "already exists" in err
    assert not engine.observe(spec, wd, launch).running  # failed before a job was submitted


@pytest.mark.spark
@needs_hadoop
def test_real_main_class_from_manifest_with_lib_jars(engine, real_jars, tmp_path):
    wd = tmp_path / "wd"
    spec = job([f"file://{real_jars['uses']}", "a b", "$HOME;"])
    rc, _, _, took = run(engine, spec, wd)
    print(f"RunJar with lib/ took {took:.1f} s")
    assert rc == 0, stderr_of(wd)[-3000:]
    assert (wd / "stdout.log").read_text() == "tag=DEP args=a b|$HOME;\n"


@pytest.mark.spark
@needs_hadoop
def test_real_sigterm_stops_job(engine, real_jars, words, tmp_path):
    wd = tmp_path / "wd"
    spec = job(
        [str(real_jars["wc"]), "WordCount", str(words), str(tmp_path / "out")],
        {"wc.sleep.ms": "60000"},
    )
    launch = engine.build(spec, ClusterSpec(cluster_id="c1"), wd)
    proc = start(launch)
    try:
        deadline = time.monotonic() + 30
        while not engine.observe(spec, wd, launch).running:
            assert proc.poll() is None, stderr_of(wd)[-3000:]
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.1)
        time.sleep(0.5)  # inside the sleeping mapper
        t0 = time.monotonic()
        os.killpg(proc.pid, signal.SIGTERM)
        rc = proc.wait(timeout=10)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    print(f"SIGTERM stopped the job in {took:.2f} s (rc {rc})")
    assert took < 5
    assert rc in (143, -signal.SIGTERM)
    assert not (tmp_path / "out" / "_SUCCESS").exists()


def test_yarn_rm_comes_from_the_cluster_not_the_job_directory(engine, cluster, jar, tmp_path):
    """engine.json may be written by the job's user: with the cluster known, its RM is asked."""
    replay = Replay(load("yarn/app_running.json"))
    with serve(replay) as url:
        wd = yarn_workdir(engine, cluster, jar, tmp_path, url)
        info = json.loads((wd / "engine.json").read_text())
        info["rm_url"] = "http://127.0.0.1:9"  # planted: nothing listens there
        (wd / "engine.json").write_text(json.dumps(info))
        launch = LaunchSpec(argv=[], env={}, cwd=str(wd))
        conf = tmp_path / "hadoop-conf"
        configured = on_yarn(cluster, conf, yarn_rm_url=url)
        got = engine.status(job([]), wd, launch, YARN_APP, None, cluster=configured)
    replay.done()
    assert got is not None and got.state == "running"
