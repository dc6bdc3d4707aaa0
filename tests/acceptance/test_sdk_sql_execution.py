"""MRS v2 SQL execution through the official SDK (``execute_sql``, ``show_sql_result``,
``cancel_sql``) on a real server and the cluster's real Spark Thrift Server (one per module):
statements with their rows, archives to a local root and to an S3 server, a cancel that stops
the statement on the Thrift server, and bad SQL failing with the engine's words.
"""

from __future__ import annotations

import csv
import io
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from huaweicloudsdkmrs.v2 import (
    CancelSqlRequest,
    ExecuteSqlRequest,
    ShowJobExeListNewRequest,
    ShowSqlResultRequest,
    SqlExecutionReq,
)
from mrs_acceptance import expect_error, marked_processes, wait_until
from support_s3 import S3Store, running_s3

pytestmark = pytest.mark.spark

ENDED = frozenset({"FINISHED", "FAILED"})


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Store]:
    with running_s3("sqlexec") as store:
        yield store


def execute(server: Any, sql: str, sql_type: str = "spark", **extra: Any) -> str:
    body = SqlExecutionReq(sql_type=sql_type, sql_content=sql, **extra)
    resp = server.client().execute_sql(ExecuteSqlRequest(cluster_id=server.cluster_id, body=body))
    assert resp.status == "QUEUED" and resp.statement == sql.strip().rstrip(";").strip()
    return resp.id


def show(server: Any, sql_id: str) -> Any:
    return server.client().show_sql_result(
        ShowSqlResultRequest(cluster_id=server.cluster_id, sql_id=sql_id)
    )


def wait(server: Any, sql_id: str, statuses: frozenset[str] = ENDED, timeout: float = 120) -> Any:
    def probe() -> Any:
        found = show(server, sql_id)
        return found if found.status in statuses else None

    return wait_until(f"{sql_id} in {sorted(statuses)}", probe, timeout, interval=0.2)


def finished(server: Any, sql: str, **extra: Any) -> Any:
    sql_id = execute(server, sql, **extra)
    found = wait(server, sql_id)
    assert found.status == "FINISHED", (found.status, found.message)
    return found


def test_statements_run_with_their_rows_and_stay_out_of_the_job_list(server) -> None:
    assert finished(server, "CREATE TABLE sqlx_t (a INT, s STRING)").content == []
    done = finished(server, "INSERT INTO sqlx_t VALUES (1, 'x'), (2, NULL);")
    assert done.content == []
    rows = finished(server, "SELECT a, s FROM sqlx_t ORDER BY a")
    assert rows.content == [["1", "x"], ["2", "NULL"]] and rows.result_location is None
    # hive runs on the same server and metastore; database= is the session's database. Two
    # statements at once: each is its own run, sharing the server.
    show_id = execute(server, "SHOW TABLES", sql_type="hive", database="default")
    count_id = execute(server, "SELECT count(*) AS n FROM sqlx_t WHERE s IS NULL", sql_type="hive")
    tables, counted = wait(server, show_id), wait(server, count_id)
    assert ["default", "sqlx_t", "false"] in tables.content
    assert counted.content == [["1"]]
    jobs = server.client().show_job_exe_list_new(
        ShowJobExeListNewRequest(cluster_id=server.cluster_id)
    )
    assert jobs.total_record == 0 and not jobs.job_list  # executions are not jobs


def test_archive_to_a_local_root_holds_every_row(server, tmp_path: Path) -> None:
    out = tmp_path / "archive"
    sql = "SELECT id, id * 2 AS twice, CAST(NULL AS STRING) AS nothing FROM range(2500)"
    found = finished(server, sql, archive_path=str(out))
    assert found.result_location == f"{out}/{found.id}.csv"
    assert len(found.content) == 1000 and found.content[1] == ["1", "2", "NULL"]  # the cap
    with open(found.result_location, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["id", "twice", "nothing"] and len(rows) == 2501
    assert rows[2500] == ["2499", "4998", ""]
    ddl = finished(server, "CREATE TABLE IF NOT EXISTS sqlx_a (a INT)", archive_path=str(out))
    assert ddl.result_location is None  # no result set, no archive
    assert sorted(p.name for p in out.iterdir()) == [f"{found.id}.csv"]


def test_archive_to_an_object_store_with_the_cluster_settings(server, s3) -> None:
    bucket = s3.new_bucket("sqlarch")
    server.admin(
        "update-cluster",
        server.cluster_id,
        *("--set", f"fs.obs.endpoint={s3.endpoint}"),
        *("--set", f"fs.obs.access.key={s3.access_key}"),
        *("--set", f"fs.obs.secret.key={s3.secret_key}"),
    )
    found = finished(
        server,
        "SELECT 'a,b' AS x, 1 AS y UNION ALL SELECT 'c', 2",
        archive_path=f"obs://{bucket}/res",
    )
    assert found.result_location == f"obs://{bucket}/res/{found.id}.csv"
    body = s3.objects(bucket)[f"res/{found.id}.csv"].decode()
    assert sorted(csv.reader(io.StringIO(body))) == [["a,b", "1"], ["c", "2"], ["x", "y"]]
    jobdir = server.job_dir(found.id)
    assert not (jobdir / "sql.json").exists()  # the keys' only file is gone
    logs = "".join((jobdir / n).read_text() for n in ("stdout.log", "stderr.log"))
    assert s3.secret_key not in logs


def _running_spark_jobs(ui_port: int) -> list[dict] | None:
    """The Thrift server's running Spark jobs (its UI's REST API); None when the UI did not
    answer in time (a busy machine)."""
    base = f"http://127.0.0.1:{ui_port}/api/v1/applications"
    try:
        with urllib.request.urlopen(base, timeout=20) as r:
            app = json.load(r)[0]["id"]
        with urllib.request.urlopen(f"{base}/{app}/jobs?status=running", timeout=20) as r:
            return list(json.load(r))
    except OSError:
        return None


def test_cancel_stops_the_statement_on_the_thrift_server(server) -> None:
    sql = "SELECT count(*) FROM range(2000000000) a CROSS JOIN range(2000000000) b"
    sql_id = execute(server, sql)
    assert wait(server, sql_id, frozenset({"RUNNING"}), 60).status == "RUNNING"
    ui_port = json.loads((server.job_dir(sql_id) / "engine.json").read_text())["ui_port"]
    wait_until("the statement running on the server", lambda: _running_spark_jobs(ui_port), 60)
    resp = server.client().cancel_sql(CancelSqlRequest(cluster_id=server.cluster_id, sql_id=sql_id))
    assert resp.status == "SUCCEED"
    found = wait(server, sql_id, timeout=30)
    assert found.status == "FAILED" and "cancelled" in found.message, found.message
    assert not marked_processes(sql_id)  # the runner is gone
    # ... and the server runs nothing any more: the statement was cancelled there.
    wait_until("no running Spark job", lambda: _running_spark_jobs(ui_port) == [], 60)
    log = (server.job_dir(sql_id) / "stderr.log").read_text()
    assert "the running statement was cancelled on the server" in log
    again = server.client().cancel_sql(
        CancelSqlRequest(cluster_id=server.cluster_id, sql_id=sql_id)
    )
    assert again.status == "SUCCEED"  # MRS: an ended statement too


def test_bad_sql_fails_with_the_engine_message(server) -> None:
    found = wait(server, execute(server, "SELEC 1"))
    assert found.status == "FAILED" and "PARSE_SYNTAX_ERROR" in found.message
    assert "\tat " not in found.message  # Java frames dropped
    missing = wait(server, execute(server, "SELECT * FROM sqlx_no_such_table"))
    assert missing.status == "FAILED" and "TABLE_OR_VIEW_NOT_FOUND" in missing.message


def test_refusals_through_the_sdk(server) -> None:
    client, cid = server.client(), server.cluster_id

    def run(body: SqlExecutionReq) -> Any:
        return client.execute_sql(ExecuteSqlRequest(cluster_id=cid, body=body))

    exc = expect_error(
        lambda: run(SqlExecutionReq(sql_type="spark", sql_content="SELECT 1; SELECT 2")),
        400,
        "12000002",
    )
    assert "single SQL statement" in exc.error_msg
    exc = expect_error(
        lambda: run(SqlExecutionReq(sql_type="presto", sql_content="SELECT 1")), 400, "12000002"
    )
    assert "presto is not supported here" in exc.error_msg
    expect_error(
        lambda: client.show_sql_result(ShowSqlResultRequest(cluster_id=cid, sql_id="0" * 36)),
        400,
        "12000002",
    )
