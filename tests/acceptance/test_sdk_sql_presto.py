"""MRS's own sql_type, presto, through the official SDK (``execute_sql``, ``show_sql_result``,
``cancel_sql``) on a real server whose cluster names a Presto/Trino coordinator: a local HTTP
server replaying the Trino client protocol (tests/fixtures/recorded/trino/). The statement
finishes with the coordinator's rows, bad SQL fails with its message, and cancel reaches the
coordinator as ``DELETE nextUri``. No Spark is needed."""

from __future__ import annotations

from typing import Any

from huaweicloudsdkmrs.v2 import (
    CancelSqlRequest,
    ExecuteSqlRequest,
    ShowSqlResultRequest,
    SqlExecutionReq,
)
from mrs_acceptance import expect_error, wait_until
from support_recorded import Replay, load, serve
from support_trino import BASE, SELECT, long_query

ENDED = frozenset({"FINISHED", "FAILED"})


def execute(server: Any, sql: str, **extra: Any) -> str:
    body = SqlExecutionReq(sql_type="presto", sql_content=sql, **extra)
    resp = server.client().execute_sql(ExecuteSqlRequest(cluster_id=server.cluster_id, body=body))
    assert resp.status == "QUEUED"
    return str(resp.id)


def wait(server: Any, sql_id: str, statuses: frozenset[str] = ENDED) -> Any:
    def probe() -> Any:
        found = server.client().show_sql_result(
            ShowSqlResultRequest(cluster_id=server.cluster_id, sql_id=sql_id)
        )
        return found if found.status in statuses else None

    return wait_until(f"{sql_id} in {sorted(statuses)}", probe, 60, interval=0.2)


def point_at(server: Any, base: str) -> None:
    server.admin(
        "update-cluster",
        server.cluster_id,
        *("--set", f"presto_coordinator={base}"),
        *("--set", "presto_user=analyst"),
        *("--set", "presto_catalog=tpch"),
    )


def test_without_a_coordinator_presto_is_a_clear_400(server) -> None:
    # First in the module: the module's server has no coordinator until the next test.
    exc = expect_error(lambda: execute(server, "SELECT 1"), 400, "12000002")
    assert "no presto_coordinator setting" in exc.error_msg


def test_select_finishes_with_the_rows_and_bad_sql_fails(server) -> None:
    replay = Replay(
        *(load(f"trino/{name}.json") for name in SELECT),
        load("trino/syntax_error_post.json"),
        load("trino/syntax_error_failed.json"),
    )
    statement = load("trino/select_post.json")["request"]["text"]
    with serve(replay) as base:
        replay.rebase(BASE, base)
        point_at(server, base)
        found = wait(server, execute(server, statement, database="tiny"))
        assert found.status == "FINISHED", found
        assert found.content == [
            ["1", "ARGENTINA", "NULL"],
            ["2", "BRAZIL", "NULL"],
            ["3", "CANADA", "NULL"],
            ["17", "PERU", "NULL"],
            ["24", "UNITED STATES", "NULL"],
        ]
        bad = wait(server, execute(server, "SELEC 1", database="tiny"))
    replay.done()
    assert bad.status == "FAILED"
    assert bad.message.startswith("SYNTAX_ERROR: line 1:1: mismatched input 'SELEC'")


def test_cancel_stops_the_query_on_the_coordinator(server) -> None:
    with long_query() as (base, seen):
        point_at(server, base)
        sql_id = execute(server, "SELECT count(*) FROM tpch.sf1000.lineitem")
        wait(server, sql_id, frozenset({"RUNNING"}))
        resp = server.client().cancel_sql(
            CancelSqlRequest(cluster_id=server.cluster_id, sql_id=sql_id)
        )
        assert resp.status == "SUCCEED"
        found = wait(server, sql_id)
    assert found.status == "FAILED" and "cancelled" in found.message
    deletes = [path for method, path in seen if method == "DELETE"]
    assert deletes == [load("trino/long_cancel.json")["request"]["path"]], seen
