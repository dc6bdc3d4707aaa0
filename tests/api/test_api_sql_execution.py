"""The MRS v2 SQL execution API (``.../sql-execution``): execute, show, cancel; every refusal;
an execution hidden from the job APIs and counts but claimed by the supervisor; project and
cluster isolation. The statements themselves run in tests/acceptance/test_sdk_sql_execution.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from api_helpers import assert_error, client_for, new_cluster, other_project
from fastapi.testclient import TestClient
from support import SigV4Auth

from mrs_jobs.api.app import create_app
from mrs_jobs.domain.sqlexecution import ENGINE_PROPERTY
from mrs_jobs.domain.states import JobResult, JobState
from mrs_jobs.errors import InvalidParameter
from mrs_jobs.settings import Settings
from mrs_jobs.store import jobs as job_store
from mrs_jobs.store import sql_executions as sql_store
from mrs_jobs.store import sql_results as sql_results_store
from mrs_jobs.store import supervision as sup_store

RUNNABLE = frozenset({"SparkSubmit", "SparkSql", "HiveSql"})


@pytest.fixture
def sql(api: Any, settings: Settings) -> TestClient:
    """A client of an app that can run SparkSql and HiveSql (the api fixture's cannot)."""
    app = create_app(settings, api.store, runnable_types=RUNNABLE, wake=lambda: None)
    return client_for(app, SigV4Auth(api.ak, api.sk, api.project_id))


def url(api: Any, cluster_id: str | None = None, project_id: str | None = None) -> str:
    return (
        f"/v2/{project_id or api.project_id}/clusters/{cluster_id or api.cluster_id}/sql-execution"
    )


def execute(sql: TestClient, api: Any, **body: Any) -> dict[str, Any]:
    payload = {"sql_type": "spark", "sql_content": "SELECT 1"} | body
    r = sql.post(url(api), json=payload)
    assert r.status_code == 200, r.text
    return r.json()


def show(sql: TestClient, api: Any, sql_id: str) -> dict[str, Any]:
    r = sql.get(f"{url(api)}/{sql_id}")
    assert r.status_code == 200, r.text
    return r.json()


def finish(api: Any, sql_id: str, rows: list[dict[str, str]], ok: bool = True) -> None:
    """What the supervisor records when the run ends: its rows, then its ending."""
    with api.store.write() as conn:
        for target in (JobState.ACCEPTED, JobState.RUNNING):
            assert job_store.transition(conn, sql_id, target) is not None
        sql_results_store.save_sql_results(conn, sql_id, {"0": rows}, 1000)
        result = JobResult.SUCCEEDED if ok else JobResult.FAILED
        values = {"result": result.value, "reason": "" if ok else "statement 0 failed"}
        assert job_store.transition(conn, sql_id, JobState.FINISHED, values=values)


def test_execute_answers_the_sdk_shape_and_show_follows(sql, api) -> None:
    body = execute(sql, api, sql_content="  SELECT 1 AS one  ", database="default")
    assert set(body) == {"id", "statement", "status"}
    assert body["status"] == "QUEUED" and body["statement"] == "SELECT 1 AS one"
    shown = show(sql, api, body["id"])
    assert shown == {"id": body["id"], "statement": "SELECT 1 AS one", "status": "QUEUED"}


def test_a_finished_statement_shows_its_rows_as_lists(sql, api) -> None:
    sql_id = execute(sql, api, sql_content="SHOW TABLES")["id"]
    finish(
        api,
        sql_id,
        [{"tableName": "t1", "isTemporary": "false"}, {"tableName": "t2", "isTemporary": "false"}],
    )
    shown = show(sql, api, sql_id)
    assert shown["status"] == "FINISHED"
    assert shown["content"] == [["t1", "false"], ["t2", "false"]]
    assert "message" not in shown and "result_location" not in shown


def test_ddl_finishes_with_empty_content(sql, api) -> None:
    sql_id = execute(sql, api, sql_content="CREATE TABLE t (a INT)")["id"]
    finish(api, sql_id, [{"result": "succeed"}])
    assert show(sql, api, sql_id)["content"] == []


def test_a_failed_statement_is_failed_with_the_engine_message(sql, api) -> None:
    sql_id = execute(sql, api, sql_content="SELEC 1")["id"]
    message = "[PARSE_SYNTAX_ERROR] Syntax error at or near 'SELEC'"
    finish(api, sql_id, [{"result": "failed", "message": message}], ok=False)
    shown = show(sql, api, sql_id)
    assert shown["status"] == "FAILED" and shown["message"] == message
    assert shown["content"] == []


def test_archive_path_gives_the_result_location_of_a_result_set(sql, api, tmp_path) -> None:
    out = tmp_path / "archive"
    api.clusters.update_cluster(api.cluster_id, settings={"output_roots": [str(tmp_path)]})
    sql_id = execute(sql, api, archive_path=str(out))["id"]
    finish(api, sql_id, [{"one": "1"}])
    assert show(sql, api, sql_id)["result_location"] == f"{out}/{sql_id}.csv"
    ddl = execute(sql, api, sql_content="CREATE TABLE x (a INT)", archive_path=str(out))["id"]
    finish(api, ddl, [{"result": "succeed"}])
    assert "result_location" not in show(sql, api, ddl)  # nothing to archive
    obs = execute(sql, api, archive_path="obs://bucket/results/")["id"]
    finish(api, obs, [{"one": "1"}])
    assert show(sql, api, obs)["result_location"] == f"obs://bucket/results/{obs}.csv"


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"sql_content": "SELECT 1"}, "sql_type"),
        ({"sql_type": "spark"}, "sql_content"),
        ({"sql_type": "spark", "sql_content": "SELECT 1", "bogus": 1}, "unknown field"),
        ({"sql_type": "spark", "sql_content": 1}, "sql_content"),
        ({"sql_type": "mysql", "sql_content": "SELECT 1"}, "sql_type must be one of"),
        ({"sql_type": "spark", "sql_content": "SELECT 1; SELECT 2"}, "single SQL statement"),
        ({"sql_type": "spark", "sql_content": " ; -- nothing"}, "no SQL statement"),
        ({"sql_type": "spark", "sql_content": "SELECT 1", "database": "a-b"}, "database"),
        ({"sql_type": "spark", "sql_content": "x" * 70_000}, "sql_content is over"),
        (
            {"sql_type": "spark", "sql_content": "SELECT 1", "archive_path": "hdfs://nn/x"},
            "archive_path",
        ),
        (
            {"sql_type": "spark", "sql_content": "SELECT 1", "archive_path": "obs://a/../b"},
            "archive_path",
        ),
        ({"sql_type": "spark", "sql_content": "SELECT 1", "archive_path": "rel/dir"}, "absolute"),
    ],
)
def test_bad_requests_are_400(sql, api, body, words) -> None:
    r = sql.post(url(api), json=body)
    assert words in assert_error(r, 400, "12000002")


def test_a_quoted_semicolon_is_one_statement(sql, api) -> None:
    assert execute(sql, api, sql_content="SELECT ';' AS s;")["statement"] == "SELECT ';' AS s"


def test_local_archive_must_be_under_the_output_roots(sql, api, tmp_path) -> None:
    api.clusters.update_cluster(api.cluster_id, settings={"output_roots": [str(tmp_path / "out")]})
    r = sql.post(
        url(api), json={"sql_type": "spark", "sql_content": "SELECT 1", "archive_path": "/etc"}
    )
    assert "output root" in assert_error(r, 400, "12000002")


def test_presto_without_a_coordinator_is_refused_clearly(sql, api) -> None:
    r = sql.post(url(api), json={"sql_type": "presto", "sql_content": "SELECT 1"})
    message = assert_error(r, 400, "12000002")
    assert "presto is not supported here without a Presto/Trino coordinator" in message
    assert "no presto_coordinator setting" in message


def test_presto_with_a_coordinator_is_queued_for_it(sql, api) -> None:
    api.clusters.update_cluster(api.cluster_id, settings={"presto_coordinator": "p:8080"})
    body = execute(sql, api, sql_type="PRESTO", sql_content="SELECT 1")
    assert body["status"] == "QUEUED" and show(sql, api, body["id"])["status"] == "QUEUED"
    with api.store.read() as conn:
        run = sql_store.get_execution(conn, api.project_id, api.cluster_id, body["id"])
    assert run is not None and run.properties == {ENGINE_PROPERTY: "presto"}
    assert list(run.arguments) == ["-e", "SELECT 1"]  # no database asked: presto_schema's


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"presto_coordinator": "ftp://p:21"}, "presto_coordinator"),
        ({"presto_coordinator": "no-port"}, "presto_coordinator"),
        ({"presto_dialect": "hive"}, "presto_dialect"),
        ({"presto_schema": "tiny"}, "presto_catalog"),
        ({"presto_user": "a b"}, "presto_user"),
    ],
)
def test_presto_settings_are_checked_when_saved(api, config, words) -> None:
    with pytest.raises(InvalidParameter, match=words):
        api.clusters.update_cluster(api.cluster_id, settings=config)


def test_a_cluster_without_hive_refuses_hive_sql(sql, api) -> None:
    cid = new_cluster(api, components=["Spark"])
    r = sql.post(url(api, cid), json={"sql_type": "hive", "sql_content": "SELECT 1"})
    assert_error(r, 400, "0168")
    r = sql.post(url(api, cid), json={"sql_type": "spark", "sql_content": "SELECT 1"})
    assert r.status_code == 200, r.text


def test_an_app_without_sql_engines_refuses(api) -> None:
    r = api.client.post(url(api), json={"sql_type": "spark", "sql_content": "SELECT 1"})
    assert "not installed" in assert_error(r, 400, "0057")


def test_the_queue_limit_holds(sql, api) -> None:
    cid = new_cluster(api, max_queued=1)
    assert (
        sql.post(url(api, cid), json={"sql_type": "spark", "sql_content": "SELECT 1"}).status_code
        == 200
    )
    r = sql.post(url(api, cid), json={"sql_type": "spark", "sql_content": "SELECT 2"})
    assert_error(r, 429, "0202")


def test_unknown_ids_and_clusters(sql, api) -> None:
    for sql_id in ("nope", "0" * 36, "x" * 65):
        assert_error(sql.get(f"{url(api)}/{sql_id}"), 400, "12000002")
        assert_error(sql.post(f"{url(api)}/{sql_id}/cancel"), 400, "12000002")
    r = sql.post(url(api, "no-such-cluster"), json={"sql_type": "spark", "sql_content": "SELECT 1"})
    assert "cluster does not exist" in assert_error(r, 400, "12000003")
    assert_error(sql.get(f"{url(api, 'no-such-cluster')}/{'0' * 36}"), 400, "12000003")


def test_a_job_id_is_not_an_sql_id_and_back(sql, api) -> None:
    job_id = api.submit("a-job")
    assert_error(sql.get(f"{url(api)}/{job_id}"), 400, "12000002")
    sql_id = execute(sql, api)["id"]
    assert_error(api.client.get(f"{api.base}/{sql_id}"), 400, "0176")
    assert_error(api.client.post(f"{api.base}/{sql_id}/kill"), 400, "0176")
    r = api.client.post(f"{api.base}/batch-delete", json={"job_id_list": [sql_id]})
    assert_error(r, 400, "0176")


def test_executions_are_not_in_the_job_list_or_its_counts(sql, api) -> None:
    api.submit("only-job")
    for _ in range(3):
        execute(sql, api)
    listed = api.client.get(api.base).json()
    assert listed["total_record"] == 1 and len(listed["job_list"]) == 1
    for query in ({"job_type": "SparkSql"}, {"job_state": "SUBMITTED"}):
        assert api.client.get(api.base, params=query).json()["total_record"] <= 1
    with api.store.read() as conn:
        assert job_store.count_states(conn, api.cluster_id, [JobState.SUBMITTED]) == 1


def test_metrics_count_executions_as_such_not_as_sql_jobs(sql, api) -> None:
    for _ in range(2):
        execute(sql, api)
    text = client_for(sql.app).get("/metrics").text
    lines = [line for line in text.splitlines() if line.startswith("mrs_jobs_jobs{")]
    ours = [line for line in lines if f'cluster_id="{api.cluster_id}"' in line]
    assert any('job_type="SqlExecution"' in x and 'state="SUBMITTED"' in x for x in ours), ours
    assert [x.rsplit(" ", 1)[1] for x in ours if 'job_type="SqlExecution"' in x] == ["2.0"]
    assert not [x for x in ours if 'job_type="SparkSql"' in x and not x.endswith(" 0.0")], ours
    depth = [
        x
        for x in text.splitlines()
        if x.startswith("mrs_jobs_queue_depth{") and api.cluster_id in x
    ]
    assert depth and depth[0].endswith(" 2.0"), depth  # executions wait for slots like jobs


def test_the_supervisor_claims_a_queued_execution(sql, api, tmp_path) -> None:
    sql_id = execute(sql, api)["id"]
    with api.store.read() as conn:
        assert (api.project_id, api.cluster_id) in sup_store.queued_clusters(conn)
    with api.store.write() as conn:
        claimed = sup_store.claim(
            conn, api.project_id, api.cluster_id, "sup-1", 1, lambda j: tmp_path / j, False
        )
    assert [j.id for j in claimed] == [sql_id]
    assert show(sql, api, sql_id)["status"] == "STARTING"


def test_cancel_of_a_queued_statement_fails_it_at_once(sql, api) -> None:
    sql_id = execute(sql, api)["id"]
    r = sql.post(f"{url(api)}/{sql_id}/cancel")
    assert r.status_code == 200 and r.json() == {"status": "SUCCEED"}
    shown = show(sql, api, sql_id)
    assert shown["status"] == "FAILED" and "cancelled" in shown["message"]
    again = sql.post(f"{url(api)}/{sql_id}/cancel")  # MRS: SUCCEED for an ended one too
    assert again.status_code == 200 and again.json() == {"status": "SUCCEED"}


def test_cancel_of_a_running_statement_asks_the_supervisor(sql, api) -> None:
    sql_id = execute(sql, api)["id"]
    with api.store.write() as conn:
        for target in (JobState.ACCEPTED, JobState.RUNNING):
            job_store.transition(conn, sql_id, target)
    assert sql.post(f"{url(api)}/{sql_id}/cancel").json() == {"status": "SUCCEED"}
    with api.store.read() as conn:
        job = job_store.get_job(conn, sql_id)
    assert job is not None and job.kill_requested_ms > 0 and job.kill_requested_by
    assert show(sql, api, sql_id)["status"] == "RUNNING"  # until the runner is gone


def test_another_project_cannot_see_or_cancel(sql, api) -> None:
    sql_id = execute(sql, api)["id"]
    b = other_project(api, components=["Spark", "Hive"])
    # B's credential on A's path: 403, nothing learnt.
    for r in (
        b.client.get(f"{url(api)}/{sql_id}"),
        b.client.post(f"{url(api)}/{sql_id}/cancel"),
        b.client.post(url(api), json={"sql_type": "spark", "sql_content": "SELECT 1"}),
    ):
        assert_error(r, 403, "12000052")
        assert sql_id not in r.text
    # B's own path naming A's id: as if it did not exist.
    b_sql = client_for(sql.app, SigV4Auth(b.ak, b.sk, b.project_id))
    b_url = url(api, b.cluster_id, b.project_id)
    assert_error(b_sql.get(f"{b_url}/{sql_id}"), 400, "12000002")
    assert_error(b_sql.post(f"{b_url}/{sql_id}/cancel"), 400, "12000002")
    # A's id on A's other cluster: not there either.
    other = new_cluster(api, components=["Spark"])
    assert_error(sql.get(f"{url(api, other)}/{sql_id}"), 400, "12000002")
    assert show(sql, api, sql_id)["status"] == "QUEUED"  # untouched


def test_unsigned_calls_learn_nothing(sql, api) -> None:
    sql_id = execute(sql, api)["id"]
    anon = client_for(sql.app)
    assert_error(anon.get(f"{url(api)}/{sql_id}"), 401, "APIGW.0301")
    assert_error(anon.post(url(api), json={"bogus": 1}), 401, "APIGW.0301")


def test_a_job_cannot_claim_the_sql_execution_engine_property(sql, api) -> None:
    body = {
        "job_type": "SparkSql",
        "job_name": "sneaky",
        "arguments": ["SELECT 1"],
        "properties": {"mrs.sql.engine": "presto"},
    }
    msg = assert_error(sql.post(api.base, json=body), 400, "12000002")
    assert "reserved" in msg
    assert api.client.get(api.base).json()["total_record"] == 0  # nothing stored
