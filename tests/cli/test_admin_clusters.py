"""`mrs-jobs admin create-cluster/update-cluster/list-clusters/show-cluster` on a real store."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from support_server import BIN

from mrs_jobs.settings import Settings
from mrs_jobs.store import Store
from mrs_jobs.store.tenants import get_cluster


def _admin(data_dir, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MRS_JOBS_DATA_DIR": str(data_dir)}
    env.pop("MRS_JOBS_DATABASE_URL", None)
    return subprocess.run(
        [str(BIN), "admin", *args], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def project(tmp_path):
    out = _admin(tmp_path / "data", "create-project", "p")
    assert out.returncode == 0, out.stderr
    return tmp_path / "data", out.stdout.strip()


def _stored(data_dir, cluster_id):
    store = Store(Settings(data_dir=data_dir).effective_database_url)
    try:
        with store.read() as conn:
            return get_cluster(conn, None, cluster_id)
    finally:
        store.dispose()


def test_create_from_a_toml_file_with_its_kind(project, tmp_path) -> None:
    data, pid = project
    conf = tmp_path / "standalone.toml"
    conf.write_text(
        'kind = "spark-standalone"\nspark_master = "spark://127.0.0.1:7077"\n'
        'spark_deploy_mode = "cluster"\n'
    )
    out = _admin(data, "create-cluster", pid, "--name", "sa", "--config", str(conf))
    assert out.returncode == 0, out.stderr
    cluster = _stored(data, out.stdout.strip())
    assert cluster.kind == "spark-standalone"
    assert cluster.config == {
        "spark_master": "spark://127.0.0.1:7077",
        "spark_deploy_mode": "cluster",
    }


def test_input_and_output_roots_flags(project) -> None:
    data, pid = project
    out = _admin(
        data,
        "create-cluster",
        pid,
        "--input-root",
        "/data/in",
        "--output-root",
        "/data/out",
        "--output-root",
        "/scratch",
    )
    assert out.returncode == 0, out.stderr
    config = _stored(data, out.stdout.strip()).config
    assert config["input_roots"] == ["/data/in"]
    assert config["output_roots"] == ["/data/out", "/scratch"]
    bad = _admin(data, "create-cluster", pid, "--name", "b", "--output-root", "relative")
    assert bad.returncode != 0 and "output_roots" in bad.stderr


def test_default_stays_a_local_cluster(project) -> None:
    data, pid = project
    out = _admin(data, "create-cluster", pid, "--max-running", "1")
    cluster = _stored(data, out.stdout.strip())
    assert (cluster.kind, cluster.config["spark_master"], cluster.max_running) == (
        "local",
        "local[2]",
        1,
    )


def test_bad_settings_are_refused_and_nothing_is_saved(project) -> None:
    data, pid = project
    out = _admin(data, "create-cluster", pid, "--kind", "yarn", "--set", "yarn_queue=etl")
    assert out.returncode == 2
    assert "hadoop_conf_dir" in out.stderr and "Traceback" not in out.stderr
    listing = _admin(data, "list-clusters")
    assert listing.stdout.strip() == ""
    clash = _admin(data, "create-cluster", pid, "--kind", "k8s", "--set", "k8s_image=x")
    assert clash.returncode == 2 and "spark_master" in clash.stderr


def test_update_merges_validates_and_masks(project) -> None:
    data, pid = project
    cid = _admin(
        data,
        "create-cluster",
        pid,
        "--kind",
        "flink-remote",
        "--set",
        "flink_jobmanager=127.0.0.1:18081",
    ).stdout.strip()
    out = _admin(
        data,
        "update-cluster",
        cid,
        "--set",
        "fs.obs.secret.key=hunter2",
        "--set",
        'input_roots=["/data"]',
        "--max-running",
        "4",
    )
    assert out.returncode == 0, out.stderr
    view = json.loads(out.stdout)
    assert view["config"]["fs.obs.secret.key"] == "******" and "hunter2" not in out.stdout
    stored = _stored(data, cid)
    assert stored.max_running == 4 and stored.config["input_roots"] == ["/data"]
    assert stored.config["flink_jobmanager"] == "127.0.0.1:18081"
    bad = _admin(data, "update-cluster", cid, "--unset", "flink_jobmanager")
    assert bad.returncode == 2 and "flink_jobmanager" in bad.stderr
    assert _stored(data, cid).config["flink_jobmanager"] == "127.0.0.1:18081"  # unchanged
    show = _admin(data, "show-cluster", cid)
    assert json.loads(show.stdout)["kind"] == "flink-remote" and "hunter2" not in show.stdout
    lines = _admin(data, "list-clusters", "--json").stdout.strip().splitlines()
    assert [json.loads(x)["id"] for x in lines] == [cid]
