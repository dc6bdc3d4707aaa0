"""sql_type presto end to end: the API queues the execution, the real supervisor runs the real
presto runner boxed, and the runner speaks the Trino client protocol to a coordinator at
``presto_coordinator`` (a local HTTP server replaying tests/fixtures/recorded/trino/). It
FINISHES with the coordinator's rows, FAILS with the coordinator's error message, and a cancel
reaches the coordinator as ``DELETE nextUri``."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest
from api_helpers import assert_error, client_for
from fastapi.testclient import TestClient
from support import SigV4Auth
from support_recorded import Replay, load, self_signed, serve
from support_supervisor import drive, marked_pids
from support_trino import BASE, SELECT, long_query

from mrs_jobs.api.app import create_app
from mrs_jobs.engines.registry import EngineRegistry
from mrs_jobs.engines.sql import SqlEngine
from mrs_jobs.engines.thrift import ThriftServers
from mrs_jobs.errors import InvalidParameter
from mrs_jobs.settings import Settings, installation_id
from mrs_jobs.store import sql_executions as sql_store
from mrs_jobs.supervisor.loop import Supervisor


@pytest.fixture
def sql(api: Any, settings: Settings) -> TestClient:
    app = create_app(settings, api.store, runnable_types=frozenset({"SparkSql"}), wake=lambda: None)
    return client_for(app, SigV4Auth(api.ak, api.sk, api.project_id))


@pytest.fixture
def sup(api: Any, settings: Settings) -> Supervisor:
    servers = ThriftServers(settings.data_dir / "clusters", installation_id(settings))
    return Supervisor(api.store, settings, EngineRegistry([SqlEngine(servers)]))


def url(api: Any) -> str:
    return f"/v2/{api.project_id}/clusters/{api.cluster_id}/sql-execution"


def execute(sql: TestClient, api: Any, statement: str, **body: Any) -> str:
    r = sql.post(url(api), json={"sql_type": "presto", "sql_content": statement} | body)
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def show(sql: TestClient, api: Any, sql_id: str) -> dict[str, Any]:
    r = sql.get(f"{url(api)}/{sql_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def until(sup: Supervisor, sql: TestClient, api: Any, sql_id: str, *statuses: str) -> dict:
    drive(sup, lambda: show(sql, api, sql_id)["status"] in statuses, timeout=30)
    return show(sql, api, sql_id)


def coordinator(api: Any, base: str, **more: str) -> None:
    settings = {"presto_coordinator": base, "presto_user": "analyst", "presto_catalog": "tpch"}
    api.clusters.update_cluster(api.cluster_id, settings=settings | more)


def test_a_presto_statement_finishes_with_the_coordinators_rows(sql, api, sup) -> None:
    replay = Replay(*(load(f"trino/{name}.json") for name in SELECT))
    statement = load("trino/select_post.json")["request"]["text"]
    with serve(replay) as base:
        replay.rebase(BASE, base)
        coordinator(api, base)
        sql_id = execute(sql, api, statement, database="tiny")  # the schema
        shown = until(sup, sql, api, sql_id, "FINISHED", "FAILED")
    replay.done()
    assert shown["status"] == "FINISHED", shown
    assert shown["content"] == [
        ["1", "ARGENTINA", "NULL"],
        ["2", "BRAZIL", "NULL"],
        ["3", "CANADA", "NULL"],
        ["17", "PERU", "NULL"],
        ["24", "UNITED STATES", "NULL"],
    ]
    assert shown["statement"] == statement and "message" not in shown
    with api.store.read() as conn:
        run = sql_store.get_execution(conn, api.project_id, api.cluster_id, sql_id)
    assert run is not None and run.workdir
    assert f"coordinator at {base}" in (Path(run.workdir) / "stderr.log").read_text()
    assert not (Path(run.workdir) / "sql.json").exists()  # its session file went with the run


def test_the_presto_dialect_and_the_clusters_schema(sql, api, sup) -> None:
    replay = Replay(load("trino/presto_post.json"), load("trino/presto_finished.json"))
    with serve(replay) as base:
        replay.rebase(BASE, base)
        coordinator(
            api, base, presto_dialect="presto", presto_catalog="hive", presto_schema="sales"
        )
        sql_id = execute(sql, api, "SHOW TABLES")  # no database: the cluster's presto_schema
        shown = until(sup, sql, api, sql_id, "FINISHED", "FAILED")
    replay.done()
    assert shown["status"] == "FINISHED" and shown["content"] == [["orders"], ["visits"]]


def test_https_with_basic_authentication(sql, api, sup, tmp_path) -> None:
    """A coordinator behind TLS with a private CA (``presto_ca_file``) and a password
    (``presto_password_file``): every request carries HTTP basic authentication."""
    password = "s3cret-Pw_77"
    secret = tmp_path / "presto.password"
    secret.write_text(password + "\n")
    secret.chmod(0o600)
    cert, key = self_signed(tmp_path)
    basic = "Basic " + base64.b64encode(f"analyst:{password}".encode()).decode()
    replay = Replay(
        *(load(f"trino/{name}.json") for name in ("ddl_post", "ddl_finished")),
        extra_headers={"Authorization": basic},
    )
    with serve(replay, tls=(cert, key)) as base:
        replay.rebase(BASE, base)
        assert base.startswith("https://")
        coordinator(
            api,
            base,
            presto_schema="tiny",
            presto_password_file=str(secret),
            presto_ca_file=str(cert),
        )
        sql_id = execute(sql, api, load("trino/ddl_post.json")["request"]["text"])
        shown = until(sup, sql, api, sql_id, "FINISHED", "FAILED")
    replay.done()
    assert shown["status"] == "FINISHED" and shown["content"] == [], shown


def test_a_password_needs_https(api) -> None:
    with pytest.raises(InvalidParameter, match="presto_password_file"):
        coordinator(api, "http://127.0.0.1:8080", presto_password_file="/etc/presto.pw")


def test_a_failing_statement_fails_with_the_coordinators_message(sql, api, sup) -> None:
    replay = Replay(load("trino/syntax_error_post.json"), load("trino/syntax_error_failed.json"))
    with serve(replay) as base:
        replay.rebase(BASE, base)
        coordinator(api, base, presto_schema="tiny")
        sql_id = execute(sql, api, "SELEC 1")
        shown = until(sup, sql, api, sql_id, "FINISHED", "FAILED")
    replay.done()
    assert shown["status"] == "FAILED"
    assert shown["message"].startswith("SYNTAX_ERROR: line 1:1: mismatched input 'SELEC'")


def test_cancel_deletes_the_query_on_the_coordinator(sql, api, sup) -> None:
    with long_query() as (base, seen):
        coordinator(api, base)
        sql_id = execute(sql, api, "SELECT count(*) FROM tpch.sf1000.lineitem")
        until(sup, sql, api, sql_id, "RUNNING")
        ours = os.readlink("/proc/self/ns/pid")
        boxed = [p for p in marked_pids(sql_id) if os.readlink(f"/proc/{p}/ns/pid") != ours]
        assert boxed, "the runner runs in its box (a pid namespace of its own)"
        r = sql.post(f"{url(api)}/{sql_id}/cancel")
        assert r.status_code == 200 and r.json() == {"status": "SUCCEED"}
        shown = until(sup, sql, api, sql_id, "FINISHED", "FAILED")
    assert shown["status"] == "FAILED" and "cancelled" in shown["message"], shown
    deletes = [path for method, path in seen if method == "DELETE"]
    assert deletes == [load("trino/long_cancel.json")["request"]["path"]], seen


def test_a_cluster_without_a_coordinator_gets_a_clear_400(sql, api) -> None:
    r = sql.post(url(api), json={"sql_type": "presto", "sql_content": "SELECT 1"})
    message = assert_error(r, 400, "12000002")
    assert "no presto_coordinator setting" in message and api.cluster_id in message
