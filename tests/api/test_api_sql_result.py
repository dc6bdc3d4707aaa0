"""SQL result (contract §9): wrong type 0179, unfinished 0180, results keyed by statement, a
failed statement's record at its index."""

from __future__ import annotations

from api_helpers import assert_error, other_project
from jobrows import add_sql_results, insert_job, transition_path
from support_sql import PARSE_ERROR, run_fake

from mrs_jobs.runtime import jobdir
from mrs_jobs.store import sql_results as sql_results_store


def url(api, job_id: str) -> str:  # type: ignore[no-untyped-def]
    return f"{api.base}/{job_id}/sql-result"


def test_spark_submit_job_is_0179(api) -> None:
    queued = api.submit("q")
    assert "SparkSubmit" in assert_error(api.client.get(url(api, queued)), 400, "0179")
    done = api.submit("d")
    transition_path(api.store, done, "ACCEPTED", "RUNNING", "FINISHED", result="SUCCEEDED")
    assert_error(api.client.get(url(api, done)), 400, "0179")
    for job_type in ("MapReduce", "DistCp", "Flink"):
        other = insert_job(api.store, api.project_id, api.cluster_id, job_type=job_type)
        assert job_type in assert_error(api.client.get(url(api, other)), 400, "0179")


def test_unfinished_sql_job_is_0180(api, subtests) -> None:
    for state in ("NEW", "NEW_SAVING", "SUBMITTED", "ACCEPTED", "RUNNING"):
        with subtests.test(state=state):
            job_id = insert_job(
                api.store, api.project_id, api.cluster_id, job_type="SparkSql", state=state
            )
            add_sql_results(api.store, job_id, {0: [{"a": "1"}]})  # partial: not shown
            msg = assert_error(api.client.get(url(api, job_id)), 400, "0180")
            assert job_id in msg and state in msg


def test_finished_sql_job_results(api) -> None:
    job_id = insert_job(
        api.store,
        api.project_id,
        api.cluster_id,
        job_type="SparkSql",
        state="FINISHED",
        arguments=[
            "CREATE TABLE t (a INT, b STRING); INSERT INTO t VALUES (1, 'x'); SELECT a, b FROM t"
        ],
    )
    rows_0 = [{"result": "succeed"}]
    rows_2 = [{"a": "1", "b": "x"}, {"a": "2", "b": "y, z"}]
    add_sql_results(api.store, job_id, {2: rows_2, 0: rows_0, 1: rows_0, 10: []})
    r = api.client.get(url(api, job_id))
    assert r.status_code == 202, r.text
    assert r.json() == {"sql_results": {"0": rows_0, "1": rows_0, "2": rows_2, "10": []}}
    for value in r.json()["sql_results"]["2"][0].values():
        assert isinstance(value, str)


def test_every_sql_type_and_every_ended_state_has_results(api, subtests) -> None:
    for job_type in ("SparkSql", "SparkScript", "HiveSql", "HiveScript"):
        for state in ("FINISHED", "FAILED", "KILLED"):
            with subtests.test(job_type=job_type, state=state):
                job_id = insert_job(
                    api.store, api.project_id, api.cluster_id, job_type=job_type, state=state
                )
                r = api.client.get(url(api, job_id))
                assert r.status_code == 202, r.text
                assert r.json() == {"sql_results": {}}
                add_sql_results(api.store, job_id, {0: [{"n": "7"}]})
                assert api.client.get(url(api, job_id)).json() == {
                    "sql_results": {"0": [{"n": "7"}]}
                }


def test_sql_results_are_scoped(api) -> None:
    other = other_project(api)
    theirs = insert_job(
        api.store, other.project_id, other.cluster_id, job_type="SparkSql", state="FINISHED"
    )
    add_sql_results(api.store, theirs, {0: [{"secret": "theirs"}]})
    r = api.client.get(url(api, theirs))
    assert_error(r, 400, "0176")
    assert "theirs" not in r.json()["error_msg"].replace(theirs, "")
    deleted = insert_job(
        api.store,
        api.project_id,
        api.cluster_id,
        job_type="SparkSql",
        state="FINISHED",
        deleted_ms=1,
    )
    assert_error(api.client.get(url(api, deleted)), 400, "0176")


def test_a_failed_statement_comes_through_at_its_index(api, monkeypatch, tmp_path) -> None:
    """What the SQL job process leaves (runners/sql.py), as the supervisor stores it when the
    job ends (jobdir.read_sql_results, store save_sql_results), answered unchanged."""
    job_id = insert_job(
        api.store,
        api.project_id,
        api.cluster_id,
        job_type="SparkSql",
        state="FINISHED",
        arguments=["SELECT 1; SELEC 2; SELECT 3"],
    )
    run_fake(monkeypatch, tmp_path, ["SELECT 1", "SELEC 2", "SELECT 3"])
    with api.store.write() as conn:
        sql_results_store.save_sql_results(
            conn, job_id, jobdir.read_sql_results(tmp_path) or {}, 1000
        )
    r = api.client.get(url(api, job_id))
    assert r.status_code == 202, r.text
    assert r.json() == {
        "sql_results": {
            "0": [{"1": "1"}],
            "1": [{"result": "failed", "message": PARSE_ERROR}],
        }
    }
