"""What SqlEngine builds for an SQL execution's presto statement (engines/presto.py): the
runner and its 0600 session file, the schema, the password and CA handed over, no Thrift
server started, and the refusals."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from mrs_jobs.domain.sqlexecution import ENGINE_PROPERTY
from mrs_jobs.engines.base import ClusterSpec, EngineRefused, JobSpec
from mrs_jobs.engines.sql import SqlEngine
from mrs_jobs.engines.thrift import ThriftServers


class NoServers(ThriftServers):
    def ensure(self, cluster: ClusterSpec):  # type: ignore[no-untyped-def]
        raise AssertionError("a presto statement starts no Thrift server")


def engine(tmp_path: Path) -> SqlEngine:
    return SqlEngine(NoServers(tmp_path / "clusters", "marker"), row_cap=7)


def job(*arguments: str, **properties: str) -> JobSpec:
    props = {ENGINE_PROPERTY: "presto"} | properties
    return JobSpec("job-1", "SparkSql", "sql-execution", list(arguments), props)


def cluster(**config: object) -> ClusterSpec:
    return ClusterSpec("c1", extra={"presto_coordinator": "trino.example:8080", **config})


def test_the_runner_gets_the_session_in_a_private_file(tmp_path) -> None:
    spec = cluster(presto_user="analyst", presto_catalog="tpch", presto_schema="sf1")
    launch = engine(tmp_path).build(job("--database", "tiny", "-e", "SELECT 1"), spec, tmp_path)
    assert launch.argv[1:3] == ["-m", "mrs_jobs.engines.runners.presto"]
    path = tmp_path / "sql.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    session = json.loads(path.read_text())
    assert session["coordinator"] == "http://trino.example:8080"
    assert (session["user"], session["catalog"], session["schema"]) == ("analyst", "tpch", "tiny")
    assert session["statements"] == ["SELECT 1"] and session["row_cap"] == 7
    assert "password" not in session
    assert "trino coordinator http://trino.example:8080 (tpch.tiny)" in launch.notes[0]


def test_without_a_database_the_clusters_schema(tmp_path) -> None:
    spec = cluster(presto_catalog="hive", presto_schema="sales", presto_dialect="presto")
    engine(tmp_path).build(job("-e", "SHOW TABLES"), spec, tmp_path)
    session = json.loads((tmp_path / "sql.json").read_text())
    assert (session["schema"], session["dialect"]) == ("sales", "presto")


def test_the_password_and_ca_are_handed_over(tmp_path) -> None:
    (tmp_path / "pw").write_text("s3cret\n")
    (tmp_path / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    spec = cluster(
        presto_coordinator="https://trino.example:8443",
        presto_password_file=str(tmp_path / "pw"),
        presto_ca_file=str(tmp_path / "ca.pem"),
    )
    work = tmp_path / "job"
    launch = engine(tmp_path).build(job("-e", "SELECT 1"), spec, work)
    session = json.loads((work / "sql.json").read_text())
    assert session["password"] == "s3cret" and session["ca_pem"].startswith("-----BEGIN")
    assert "s3cret" not in json.dumps(launch.notes) + json.dumps(launch.env)


@pytest.mark.parametrize(
    ("arguments", "config", "words"),
    [
        (("-e", "SELECT 1"), {"presto_coordinator": None}, "no presto_coordinator"),
        (("--database", "tiny", "-e", "SELECT 1"), {}, "needs the cluster's presto_catalog"),
        (("-e", "SELECT 1; SELECT 2"), {}, "one statement"),
        (
            ("-e", "SELECT 1"),
            {"presto_coordinator": "https://t:8443", "presto_password_file": "/nonexistent/pw"},
            "cannot read the cluster's presto_password_file",
        ),
    ],
)
def test_refusals(tmp_path, arguments, config, words) -> None:
    with pytest.raises(EngineRefused, match=words):
        engine(tmp_path).build(job(*arguments), cluster(**config), tmp_path)
