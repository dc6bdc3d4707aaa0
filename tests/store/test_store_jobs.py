"""Job queries: scoping, hiding, purging, queue counting, kill flags."""

from __future__ import annotations

from jobrows import (
    add_sql_results,
    audit_rows,
    events_of,
    insert_job,
    insert_jobs,
    job_row,
    raw_job,
)

from mrs_jobs.domain.states import JobState
from mrs_jobs.domain.validation import ListQuery
from mrs_jobs.store import events as events_store
from mrs_jobs.store import jobs as job_store
from mrs_jobs.store.audit import record_audit

P, C = "p1", "c1"


def test_visibility_is_scoped_by_project_cluster_and_deletion(store) -> None:
    mine = insert_job(store, P, C)
    other_cluster = insert_job(store, P, "c2")
    other_project = insert_job(store, "p2", C)
    deleted = insert_job(store, P, C, deleted_ms=5)
    with store.read() as conn:
        assert job_store.get_visible(conn, P, C, mine) is not None
        for job_id in (other_cluster, other_project, deleted, "nope", "a\x00b"):
            assert job_store.get_visible(conn, P, C, job_id) is None
        found = job_store.find_visible_ids(
            conn, P, C, [mine, other_cluster, other_project, deleted, "a\x00b", mine]
        )
    assert found == {mine: "SUBMITTED"}
    with store.write() as conn:  # the locking variant answers the same
        assert job_store.find_visible_ids(conn, P, C, [deleted, mine], lock=True) == {
            mine: "SUBMITTED"
        }


def test_find_and_mark_over_chunk_boundaries(store) -> None:
    ids = insert_jobs(store, [job_row(P, C) for _ in range(1200)])
    with store.write() as conn:
        assert len(job_store.find_visible_ids(conn, P, C, ids, lock=True)) == 1200
        assert job_store.mark_deleted(conn, ids[:1100], 99) == 1100
        # Marking again finds nothing left to mark.
        assert job_store.mark_deleted(conn, ids[:10], 100) == 0
    with store.read() as conn:
        assert set(job_store.find_visible_ids(conn, P, C, ids)) == set(ids[1100:])
        total, page = job_store.list_visible(conn, P, C, ListQuery(limit=1000))
    assert total == 100 and {j.id for j in page} == set(ids[1100:])
    assert raw_job(store, ids[0])["deleted_ms"] == 99


def test_hide_visible_hides_only_what_is_in_scope_and_says_what(store) -> None:
    mine = insert_jobs(store, [job_row(P, C, state=s) for s in ("SUBMITTED", "RUNNING")])
    other_cluster = insert_job(store, P, "c2")
    other_project = insert_job(store, "p2", C)
    deleted = insert_job(store, P, C, deleted_ms=5)
    with store.write() as conn:
        hidden = job_store.hide_visible(
            conn, P, C, [*mine, other_cluster, other_project, deleted, "nope", "a\x00b"], 77
        )
    assert hidden == {mine[0]: "SUBMITTED", mine[1]: "RUNNING"}
    assert [raw_job(store, i)["deleted_ms"] for i in mine] == [77, 77]
    for untouched, was in ((other_cluster, 0), (other_project, 0), (deleted, 5)):
        assert raw_job(store, untouched)["deleted_ms"] == was
    ids = insert_jobs(store, [job_row(P, C) for _ in range(1100)])  # over the chunk size
    with store.write() as conn:
        assert len(job_store.hide_visible(conn, P, C, ids, 78)) == 1100
        assert job_store.hide_visible(conn, P, C, ids, 79) == {}


def test_purge_removes_every_row_of_the_job_but_not_the_audit(store) -> None:
    a = insert_job(store, P, C)
    b = insert_job(store, P, C)
    with store.write() as conn:
        events_store.record_event(conn, a, None, "NEW", "submitted", 1, project_id=P, cluster_id=C)
        events_store.record_event(conn, b, None, "NEW", "submitted", 1, project_id=P, cluster_id=C)
        record_audit(
            conn,
            at_ms=1,
            action="batch_delete",
            project_id=P,
            cluster_id=C,
            credential_id=None,
            request_id="r",
            detail={"job_ids": [a], "live": 0, "count": 1},
            outcome="deleted",
        )
    add_sql_results(store, a, {0: [{"x": "1"}], 1: [{"result": "succeed"}]})
    with store.write() as conn:
        job_store.purge(conn, [a])
    assert raw_job(store, a) is None and events_of(store, a) == []
    with store.read() as conn:
        from mrs_jobs.store.tables import sql_results

        assert conn.execute(sql_results.select()).all() == []
    assert raw_job(store, b) is not None and events_of(store, b) == [(None, "NEW")]
    (row,) = audit_rows(store, "batch_delete")
    assert row["detail"] == {"job_ids": [a], "live": 0, "count": 1}


def test_queue_count_ignores_deleted_and_other_states(store) -> None:
    insert_jobs(
        store,
        [
            job_row(P, C, state="SUBMITTED"),
            job_row(P, C, state="SUBMITTED"),
            job_row(P, C, state="SUBMITTED", deleted_ms=3),
            job_row(P, C, state="RUNNING"),
            job_row(P, "c2", state="SUBMITTED"),
        ],
    )
    with store.read() as conn:
        assert job_store.count_states(conn, C, [JobState.SUBMITTED]) == 2
        assert job_store.count_states(conn, C, [JobState.SUBMITTED, JobState.RUNNING]) == 3


def test_request_kill_only_flags_launched_live_jobs_once(store) -> None:
    states = ["SUBMITTED", "ACCEPTED", "RUNNING", "FINISHED", "KILLED"]
    ids = {s: insert_job(store, P, C, state=s) for s in states}
    with store.write() as conn:
        flagged = {s: job_store.request_kill(conn, ids[s], 42) for s in states}
        again = job_store.request_kill(conn, ids["RUNNING"], 43)
    assert flagged == {
        "SUBMITTED": False,
        "ACCEPTED": True,
        "RUNNING": True,
        "FINISHED": False,
        "KILLED": False,
    }
    assert again is False
    assert raw_job(store, ids["RUNNING"])["kill_requested_ms"] == 42
    assert raw_job(store, ids["SUBMITTED"])["kill_requested_ms"] == 0


def test_list_order_and_paging_at_store_level(store) -> None:
    rows = [job_row(P, C, id=f"{i:036d}", submitted_ms=1000) for i in range(5)]
    rows += [job_row(P, C, id="z" * 36, submitted_ms=999)]
    insert_jobs(store, rows)
    with store.read() as conn:
        total, asc = job_store.list_visible(conn, P, C, ListQuery(ascending=True, limit=4))
        _, page2 = job_store.list_visible(conn, P, C, ListQuery(ascending=True, limit=4, page=2))
        _, desc = job_store.list_visible(conn, P, C, ListQuery(limit=10))
    assert total == 6
    assert [j.id for j in asc + page2] == ["z" * 36] + [f"{i:036d}" for i in range(5)]
    assert [j.id for j in desc] == [f"{i:036d}" for i in reversed(range(5))] + ["z" * 36]


def test_purge_removes_every_row_of_many_jobs_and_nothing_else(store) -> None:
    """More ids than one SQLite statement takes (PostgreSQL: one array for all)."""
    ids = insert_jobs(store, [job_row(P, C) for _ in range(1201)])
    keep = insert_job(store, P, C)
    with store.write() as conn:
        events_store.record_events(
            conn,
            [
                {
                    "job_id": i,
                    "from_state": None,
                    "to_state": "NEW",
                    "reason": "",
                    "at_ms": 1,
                    "project_id": P,
                    "cluster_id": C,
                }
                for i in [*ids, keep]
            ],
        )
        job_store.purge(conn, ids)
    with store.read() as conn:
        assert [i for i in ids if job_store.get_job(conn, i) is not None] == []
        assert job_store.get_job(conn, keep) is not None
    assert all(events_of(store, i) == [] for i in ids[::100])
    assert events_of(store, keep) == [(None, "NEW")]
