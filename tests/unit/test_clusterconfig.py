"""Cluster kinds and their settings are checked when saved, with the key and the rule."""

from __future__ import annotations

import pytest

from mrs_jobs.domain.clusterconfig import (
    KINDS,
    load_config_file,
    settings_of,
    validate_cluster_config,
)
from mrs_jobs.errors import InvalidParameter

GOOD = {
    "local": {"spark_master": "local[2]"},
    "spark-standalone": {
        "spark_master": "spark://10.0.0.5:7077",
        "spark_rest_url": "http://10.0.0.5:6066",
        "spark_deploy_mode": "cluster",
    },
    "yarn": {"hadoop_conf_dir": "/etc/hadoop/conf", "yarn_queue": "etl"},
    "k8s": {
        "spark_master": "k8s://https://k8s.example:6443",
        "k8s_image": "apache/spark:3.5.1",
        "k8s_namespace": "jobs",
        "k8s_token_file": "/var/run/secrets/token",
    },
    "flink-remote": {"flink_jobmanager": "flink-jm:8081"},
}


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_accepts_its_settings(kind: str) -> None:
    out = validate_cluster_config(kind, GOOD[kind])
    for key, value in GOOD[kind].items():
        assert out[key] == value


def test_yarn_master_is_implied() -> None:
    assert validate_cluster_config("yarn", GOOD["yarn"])["spark_master"] == "yarn"


@pytest.mark.parametrize(
    ("kind", "config", "needle"),
    [
        ("mesos", {}, "Invalid cluster kind"),
        ("local", {"spark_master": "spark://h:7077"}, "spark_master"),
        ("local", {"k8s_image": "x"}, "a setting of kind k8s"),
        ("local", {"typo_setting": "1"}, "typo_setting"),
        ("spark-standalone", {"spark_master": "local[2]"}, "spark://host:port"),
        ("spark-standalone", {**GOOD["spark-standalone"], "spark_deploy_mode": "x"}, "client"),
        ("spark-standalone", {**GOOD["spark-standalone"], "spark_rest_url": "6066"}, "URL"),
        ("yarn", {}, "hadoop_conf_dir"),
        ("yarn", {"hadoop_conf_dir": "relative/conf"}, "absolute"),
        ("k8s", {"spark_master": "k8s://https://h:6443"}, "k8s_image"),
        ("k8s", {**GOOD["k8s"], "k8s_namespace": "Not_Valid"}, "DNS-1123"),
        ("k8s", {**GOOD["k8s"], "spark_deploy_mode": "client"}, "cluster mode"),
        ("k8s", {**GOOD["k8s"], "k8s_token_file": "token"}, "absolute"),
        ("flink-remote", {}, "flink_jobmanager"),
        ("flink-remote", {"flink_jobmanager": "no-port"}, "host:port"),
        ("flink-remote", {"flink_jobmanager": "https://jm:8081"}, "TLS"),
        ("local", {"flink_target": "remote"}, "flink_jobmanager: is required"),
        ("local", {"mapreduce_heap": "1g -Dx"}, "mapreduce_heap"),
        ("yarn", {**GOOD["yarn"], "yarn_rm_url": "rm:8088"}, "yarn_rm_url: must be an http"),
        ("local", {"input_roots": "/data"}, "list of absolute paths"),
        ("local", {"input_roots": ["data"]}, "list of absolute paths"),
        ("local", {"output_roots": "/out"}, "list of absolute paths"),
        ("local", {"output_roots": ["/out", "rel"]}, "list of absolute paths"),
        ("local", {"output_roots": [1]}, "list of absolute paths"),
        ("local", {"spark_home": {"a": 1}}, "single value"),
    ],
)
def test_mistakes_are_refused_with_the_key(kind: str, config: dict, needle: str) -> None:
    with pytest.raises(InvalidParameter) as err:
        validate_cluster_config(kind, config)
    assert needle in err.value.message


def test_stored_config_that_no_longer_passes_is_refused_when_read() -> None:
    """The typed settings engines read are built by the same rules: a stored config that does
    not pass them any more raises InvalidParameter (the job fails with it), never a bad argv."""
    with pytest.raises(InvalidParameter, match="k8s_namespace"):
        settings_of("k8s", {**GOOD["k8s"], "k8s_namespace": "Not_Valid"})
    with pytest.raises(InvalidParameter, match="k8s_image: is required"):
        settings_of("k8s", {"spark_master": "k8s://https://h:6443"})
    with pytest.raises(InvalidParameter, match="mapreduce_heap"):
        settings_of("local", {"mapreduce_heap": "-Xss1m"})


def test_flink_jobmanager_is_read_as_host_port() -> None:
    s = settings_of("flink-remote", {"flink_jobmanager": "http://10.0.0.5:8081/"})
    assert s.flink_jobmanager == "10.0.0.5:8081"


def test_output_roots_are_a_common_setting() -> None:
    for kind, extra in (("local", {}), ("yarn", {"hadoop_conf_dir": "/etc/hadoop"})):
        out = validate_cluster_config(
            kind, {**extra, "input_roots": ["/in"], "output_roots": ["/out", "/tmp/x"]}
        )
        assert out["output_roots"] == ["/out", "/tmp/x"] and out["input_roots"] == ["/in"]


def test_object_store_defaults_pass_through() -> None:
    out = validate_cluster_config("local", {"fs.obs.endpoint": "http://127.0.0.1:9000"})
    assert out == {"fs.obs.endpoint": "http://127.0.0.1:9000"}


def test_config_files_json_and_toml(tmp_path) -> None:
    j = tmp_path / "c.json"
    j.write_text('{"kind": "flink-remote", "flink_jobmanager": "jm:8081"}')
    t = tmp_path / "c.toml"
    t.write_text('kind = "yarn"\nhadoop_conf_dir = "/etc/hadoop/conf"\n')
    assert load_config_file(j)["flink_jobmanager"] == "jm:8081"
    assert load_config_file(t)["kind"] == "yarn"
    bad = tmp_path / "bad.toml"
    bad.write_text("kind = ")
    with pytest.raises(InvalidParameter):
        load_config_file(bad)
    with pytest.raises(InvalidParameter):
        load_config_file(tmp_path / "missing.json")
