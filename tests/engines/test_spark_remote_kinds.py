"""SparkSubmit on YARN and Kubernetes clusters: the spark-submit line per deploy mode, and the
follow-up (observe, status, cancel from the job directory alone) against recorded REST answers
served by a real local HTTP server (no YARN or Kubernetes cluster is available here; every
request is asserted by the replay, see tests/fixtures/recorded/README.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support_recorded import Replay, load, serve

from mrs_jobs.engines.base import ClusterSpec, EngineRefused, JobSpec
from mrs_jobs.engines.spark import SparkSubmitEngine

APP = "application_1764460800000_0042"
JOB_ID = "6a8c0f2e-1b2d-4c5e-9f00-123456789abc"  # the recorded driver pod is mrs-<job id>-driver
POD = f"mrs-{JOB_ID}-driver"
NS = "spark-jobs"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.test-token-value.sig"
YARN_SITE = """<?xml version="1.0"?>
<configuration>
  <property><name>yarn.resourcemanager.webapp.address</name><value>{address}</value></property>
</configuration>
"""


def job(arguments: list[str]) -> JobSpec:
    return JobSpec(JOB_ID, "SparkSubmit", "t", arguments, {})


def confs(argv: list[str]) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--conf"]


@pytest.fixture
def apps(tmp_path: Path) -> tuple[Path, Path]:
    py, jar = tmp_path / "app.py", tmp_path / "app.jar"
    py.write_text("print(1)\n")
    jar.write_bytes(b"PK")
    return py, jar


def yarn_cluster(tmp_path: Path, rm_address: str, **extra: str) -> ClusterSpec:
    conf = tmp_path / "hadoop-conf"
    conf.mkdir(exist_ok=True)
    (conf / "yarn-site.xml").write_text(YARN_SITE.format(address=rm_address))
    return ClusterSpec(
        "c", kind="yarn", spark_master="yarn", extra={"hadoop_conf_dir": str(conf), **extra}
    )


# ------------------------------------------------------------------------------------ YARN


def test_yarn_cluster_mode_line(apps, tmp_path):
    py, jar = apps
    cluster = yarn_cluster(tmp_path, "rm.example.internal:8088", yarn_queue="etl")
    for app in (py, jar):  # Python apps run in YARN cluster mode too
        wd = tmp_path / app.suffix
        spec = SparkSubmitEngine().build(job([str(app)]), cluster, wd)
        assert spec.argv[1:5] == ["--master", "yarn", "--deploy-mode", "cluster"]
        assert spec.detached
        c = confs(spec.argv)
        assert "spark.yarn.submit.waitAppCompletion=false" in c
        assert "spark.yarn.queue=etl" in c
        assert not any(x.startswith(("spark.eventLog", "spark.ui.port")) for x in c)
        conf_dir = str((tmp_path / "hadoop-conf").resolve())
        assert spec.env["HADOOP_CONF_DIR"] == spec.env["YARN_CONF_DIR"] == conf_dir
        info = json.loads((wd / "engine.json").read_text())
        assert info["rm_url"] == "http://rm.example.internal:8088"
        assert info["kind"] == "yarn" and info["deploy_mode"] == "cluster"
    # the job's own --queue wins over the cluster's
    spec = SparkSubmitEngine().build(job(["--queue", "adhoc", str(jar)]), cluster, tmp_path / "q")
    assert "spark.yarn.queue=etl" not in confs(spec.argv)
    assert spec.argv[spec.argv.index("--queue") + 1] == "adhoc"


def test_yarn_client_mode_line(apps, tmp_path):
    py, _ = apps
    cluster = yarn_cluster(tmp_path, "rm:8088", spark_deploy_mode="client")
    spec = SparkSubmitEngine().build(job([str(py)]), cluster, tmp_path / "wd")
    assert spec.argv[1:5] == ["--master", "yarn", "--deploy-mode", "client"]
    assert not spec.detached
    assert any(x.startswith("spark.eventLog.dir=") for x in confs(spec.argv))
    assert "spark.yarn.submit.waitAppCompletion=false" not in confs(spec.argv)


def test_yarn_needs_its_conf_dir(apps, tmp_path):
    _, jar = apps
    bare = ClusterSpec("c", kind="yarn", spark_master="yarn")
    with pytest.raises(EngineRefused, match="hadoop_conf_dir"):
        SparkSubmitEngine().build(job([str(jar)]), bare, tmp_path / "wd")


def test_yarn_follow_and_kill_by_app_id(apps, tmp_path):
    _, jar = apps
    replay = Replay(
        load("yarn/app_running.json"),
        load("yarn/app_finished_succeeded.json"),
        load("yarn/kill_accepted.json"),
    )
    with serve(replay) as rm:
        cluster = yarn_cluster(tmp_path, rm.removeprefix("http://"))
        engine = SparkSubmitEngine()
        wd = tmp_path / "wd"
        launch = engine.build(job(["--class", "A", str(jar)]), cluster, wd)
        assert engine.observe(job([]), wd, launch).app_id is None  # nothing printed yet
        (wd / "stderr.log").write_text(
            f"INFO Client: Submitted application {APP}\nINFO Client: Application report for "
            f"{APP} (state: ACCEPTED)\n"
        )
        assert engine.observe(job([]), wd, launch).app_id == APP
        fresh = SparkSubmitEngine()  # as after a restart: only the job directory is known
        running = fresh.status(job([]), wd, launch, APP, None)
        # the RM's 10 % is Spark's constant, not a count: no progress rather than a guess
        assert running is not None and running.state == "running" and running.progress is None
        assert running.app_id == APP and running.tracking_url
        done = fresh.status(job([]), wd, launch, None, None)  # the id read from the output
        assert done is not None and done.state == "succeeded"
        assert fresh.cancel(job([]), wd, launch) is True
    replay.done()


def test_yarn_status_unreachable_is_none(apps, tmp_path):
    _, jar = apps
    cluster = yarn_cluster(tmp_path, "127.0.0.1:9")  # discard port: nothing listens
    engine = SparkSubmitEngine()
    launch = engine.build(job([str(jar)]), cluster, tmp_path / "wd")
    assert engine.status(job([]), tmp_path / "wd", launch, APP, None) is None
    assert engine.cancel(job([]), tmp_path / "wd", launch) is False  # no id printed


# ------------------------------------------------------------------------------ Kubernetes


def k8s_cluster(tmp_path: Path, api_url: str) -> ClusterSpec:
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    return ClusterSpec(
        "c",
        kind="k8s",
        spark_master="k8s://https://api.k8s.example:6443",
        extra={
            "k8s_namespace": NS,
            "k8s_image": "registry.example.internal/spark:4.0.1",
            "k8s_service_account": "spark",
            "k8s_token_file": str(token),
            "k8s_api_url": api_url,
        },
    )


def test_k8s_line(apps, tmp_path):
    py, _ = apps
    cluster = k8s_cluster(tmp_path, "https://api.k8s.example:6443")
    spec = SparkSubmitEngine().build(
        job(["--deploy-mode", "client", "--conf", "spark.kubernetes.driver.pod.name=x", str(py)]),
        cluster,
        tmp_path / "wd",
    )
    assert spec.argv[1:5] == [
        "--master",
        "k8s://https://api.k8s.example:6443",
        "--deploy-mode",
        "cluster",
    ]
    assert spec.detached
    c = confs(spec.argv)
    assert f"spark.kubernetes.driver.pod.name={POD}" in c
    assert "spark.kubernetes.driver.pod.name=x" not in c  # the service names the pod
    assert f"spark.kubernetes.namespace={NS}" in c
    assert "spark.kubernetes.submission.waitAppCompletion=false" in c
    assert "Kubernetes clusters run drivers in cluster deploy mode only" in spec.notes
    text = (tmp_path / "wd" / "engine.json").read_text()
    assert TOKEN not in text and TOKEN not in "\0".join(spec.argv)
    assert json.loads(text)["driver_pod"] == POD


def test_k8s_follow_and_delete_the_driver_pod(apps, tmp_path):
    py, _ = apps
    auth = {"Authorization": f"Bearer {TOKEN}"}
    replay = Replay(
        load("k8s/pod_running.json"),
        load("k8s/pod_failed.json"),
        load("k8s/pod_delete.json"),
        extra_headers=auth,
    )
    with serve(replay) as api:
        cluster = k8s_cluster(tmp_path, api)
        engine = SparkSubmitEngine()
        wd = tmp_path / "wd"
        launch = engine.build(job([str(py)]), cluster, wd)
        obs = engine.observe(job([]), wd, launch)
        assert obs.launcher_id == POD  # known before spark-submit printed anything
        fresh = SparkSubmitEngine()
        running = fresh.status(job([]), wd, launch, None, POD)
        assert running is not None and running.state == "running"
        assert running.app_id == "spark-5d0a6c3f8e2b4f1d9c7a0b1e2f3d4c5b"
        failed = fresh.status(job([]), wd, launch, running.app_id, None)  # pod from engine.json
        assert failed is not None and failed.state == "failed" and failed.message
        assert TOKEN not in failed.message
        assert fresh.cancel(job([]), wd, launch) is True
    replay.done()


def test_k8s_settings_come_from_the_cluster_not_the_job_directory(apps, tmp_path):
    """engine.json lives where the job's user may write: when the cluster is known, a URL or
    token file written there is not used (the token must never go to another server)."""
    py, _ = apps
    auth = {"Authorization": f"Bearer {TOKEN}"}
    replay = Replay(load("k8s/pod_running.json"), load("k8s/pod_running.json"), extra_headers=auth)
    decoy = Replay()  # any request reaching it fails the test
    with serve(replay) as api, serve(decoy) as elsewhere:
        cluster = k8s_cluster(tmp_path, api)
        engine = SparkSubmitEngine()
        wd = tmp_path / "wd"
        launch = engine.build(job([str(py)]), cluster, wd)
        info = json.loads((wd / "engine.json").read_text())
        info.update(k8s_api_url=elsewhere, driver_pod="some-other-pod")
        (wd / "engine.json").write_text(json.dumps(info))
        # built in this process: the cluster is remembered
        st = engine.status(job([]), wd, launch, None, "some-other-pod")
        assert st is not None and st.state == "running"
        # after a restart: the supervisor hands the cluster in
        st = SparkSubmitEngine().status(job([]), wd, launch, None, None, cluster=cluster)
        assert st is not None and st.state == "running"
    replay.done()
    assert decoy.seen == []


def test_driver_on_the_cluster_gets_no_local_python_or_loopback(apps, tmp_path):
    py, _ = apps
    cluster = yarn_cluster(tmp_path, "rm:8088")
    spec = SparkSubmitEngine().build(job([str(py)]), cluster, tmp_path / "a")
    assert "PYSPARK_PYTHON" not in spec.env and "PYSPARK_DRIVER_PYTHON" not in spec.env
    assert "SPARK_LOCAL_IP" not in spec.env  # executors elsewhere must reach the driver
    named = ClusterSpec(
        "c", kind="yarn", spark_master="yarn", pyspark_python="/opt/py3", settings=cluster.settings
    )
    spec = SparkSubmitEngine().build(job([str(py)]), named, tmp_path / "b")
    assert spec.env["PYSPARK_PYTHON"] == "/opt/py3"
    spec = SparkSubmitEngine().build(
        job([str(py)]), k8s_cluster(tmp_path, "https://api:6443"), tmp_path / "c"
    )
    assert "PYSPARK_PYTHON" not in spec.env and "SPARK_LOCAL_IP" not in spec.env


def test_local_scheme_names_files_on_the_cluster(tmp_path):
    """local: files are in the image / on the nodes when the driver runs there: not looked
    for on this host, not held to its input roots; with a local driver they still are."""
    root = tmp_path / "root"
    root.mkdir()
    app = "local:///opt/spark/examples/src/main/python/pi.py"
    dep = "local:///opt/spark/jars/extra.jar"
    k8s_c = k8s_cluster(tmp_path, "https://api:6443")
    on_k8s = ClusterSpec(
        "c",
        kind="k8s",
        spark_master=k8s_c.spark_master,
        input_roots=(str(root),),
        settings=k8s_c.settings,
    )
    spec = SparkSubmitEngine().build(job(["--jars", dep, app, "10"]), on_k8s, tmp_path / "a")
    assert spec.argv[-4:] == ["--jars", dep, app, "10"]
    local = ClusterSpec("c", input_roots=(str(root),))
    with pytest.raises(EngineRefused, match="not under an allowed input root"):
        SparkSubmitEngine().build(job([app]), local, tmp_path / "b")
