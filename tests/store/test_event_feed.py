"""The project's event stream in the store: cursors, commit order, what is in it, the outbox.

On SQLite and PostgreSQL (the ``store`` fixture).
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from jobrows import insert_job
from sqlalchemy import insert, select

from mrs_jobs.domain.events import event_type
from mrs_jobs.domain.states import JobState
from mrs_jobs.store import events as events_store
from mrs_jobs.store import jobs as job_store
from mrs_jobs.store.tables import webhook_deliveries, webhooks

P, C = "p1", "c1"


def _feed(store, project: str = P, after: int = 0, cluster: str | None = None):  # type: ignore[no-untyped-def]
    with store.read() as conn:
        return events_store.list_feed(conn, project, after, 1000, cluster)


def _move(store, job_id: str, target: JobState, **values) -> None:  # type: ignore[no-untyped-def]
    with store.write() as conn:
        assert job_store.transition(conn, job_id, target, values=values) is not None


def test_each_change_gets_the_projects_next_cursor_in_order(store) -> None:
    a = insert_job(store, P, C, state="SUBMITTED")
    b = insert_job(store, P, "c2", state="SUBMITTED")
    other = insert_job(store, "p2", C, state="SUBMITTED")
    _move(store, a, JobState.ACCEPTED)
    _move(store, other, JobState.ACCEPTED)
    _move(store, b, JobState.ACCEPTED)
    _move(store, a, JobState.RUNNING)
    _move(store, a, JobState.FINISHED, result="SUCCEEDED", finished_ms=5)
    _move(store, b, JobState.RUNNING)
    _move(store, b, JobState.FINISHED, result="FAILED", finished_ms=6)

    feed = _feed(store)
    assert [e.seq for e in feed] == [1, 2, 3, 4, 5, 6]
    assert [(e.job_id, e.type) for e in feed] == [
        (a, "job.accepted"),
        (b, "job.accepted"),
        (a, "job.started"),
        (a, "job.succeeded"),
        (b, "job.started"),
        (b, "job.failed"),  # FINISHED with final status FAILED, MRS's way
    ]
    assert [e.seq for e in _feed(store, after=3)] == [4, 5, 6]
    assert {e.job_id for e in _feed(store, cluster="c2")} == {b}
    assert [(e.job_id, e.seq) for e in _feed(store, "p2")] == [(other, 1)]
    with store.read() as conn:
        assert events_store.feed_heads(conn) == {P: 6, "p2": 1}
        assert events_store.feed_head(conn, P) == 6 and events_store.feed_head(conn, "p9") == 0


def test_an_sql_executions_changes_are_not_in_the_stream(store) -> None:
    hidden = insert_job(store, P, C, state="SUBMITTED", deleted_ms=-1)
    _move(store, hidden, JobState.ACCEPTED)
    assert _feed(store) == []
    with store.read() as conn:
        assert [e.to_state for e in events_store.list_events(conn, hidden)] == ["ACCEPTED"]


def test_a_retry_is_its_own_event_type() -> None:
    assert event_type("RUNNING", "SUBMITTED") == "job.retrying"
    assert event_type("NEW_SAVING", "SUBMITTED") == "job.submitted"
    assert event_type("RUNNING", "KILLED") == "job.killed"


def test_a_later_writer_of_the_project_waits_so_cursors_commit_in_order(store) -> None:
    """A reader never sees cursor n+1 committed while n is still to come."""
    a = insert_job(store, P, C, state="SUBMITTED")
    b = insert_job(store, P, C, state="SUBMITTED")
    first_in = threading.Event()
    seen_during: list[list[int]] = []

    def slow_first() -> None:
        with store.write() as conn:
            job_store.transition(conn, a, JobState.ACCEPTED)  # takes cursor 1
            first_in.set()
            time.sleep(0.5)

    t = threading.Thread(target=slow_first)
    t.start()
    assert first_in.wait(10)

    def second() -> None:
        with store.write() as conn:
            job_store.transition(conn, b, JobState.ACCEPTED)

    t2 = threading.Thread(target=second)
    t2.start()
    time.sleep(0.2)
    seen_during.append([e.seq for e in _feed(store)])
    t.join(10)
    t2.join(10)
    assert seen_during == [[]]  # neither committed yet: the second waits for the first
    assert [(e.seq, e.job_id) for e in _feed(store)] == [(1, a), (2, b)]


def _subscribe(store, hook_id: str, events: list[str], cluster: str | None = None) -> None:  # type: ignore[no-untyped-def]
    with store.write() as conn:
        conn.execute(
            insert(webhooks).values(
                id=hook_id,
                project_id=P,
                cluster_id=cluster,
                url="https://example.invalid/h",
                events=json.dumps(events),
                secret="sealed",
                enabled=True,
                description="",
                created_ms=1,
            )
        )


def test_events_queue_their_webhook_deliveries_in_the_same_transaction(store) -> None:
    _subscribe(store, "w-all", ["job.started", "job.succeeded", "job.failed"])
    _subscribe(store, "w-c2", ["job.started"], cluster="c2")
    a = insert_job(store, P, C, state="SUBMITTED")
    b = insert_job(store, P, "c2", state="SUBMITTED")
    for job in (a, b):
        _move(store, job, JobState.ACCEPTED)
        _move(store, job, JobState.RUNNING)
    _move(store, a, JobState.FINISHED, result="SUCCEEDED", finished_ms=5)
    with pytest.raises(RuntimeError), store.write() as conn:  # rolled back: owes nothing
        job_store.transition(conn, b, JobState.KILLED)
        raise RuntimeError("abort")
    with store.read() as conn:
        rows = conn.execute(select(webhook_deliveries).order_by(webhook_deliveries.c.id)).all()
    got = [(r.webhook_id, r.job_id, r.event_type, r.state) for r in rows]
    assert got == [
        ("w-all", a, "job.started", "pending"),
        ("w-all", b, "job.started", "pending"),
        ("w-c2", b, "job.started", "pending"),
        ("w-all", a, "job.succeeded", "pending"),
    ]
    assert len({r.msg_id for r in rows}) == 4
    body = json.loads(rows[-1].payload)
    assert body["type"] == "job.succeeded" and body["data"]["job_id"] == a
    assert body["data"]["final_status"] == "SUCCEEDED"


def test_commit_listeners_hear_commits_not_rollbacks(store) -> None:
    heard: list[int] = []
    stop = store.listen_commits(lambda: heard.append(1))
    a = insert_job(store, P, C, state="SUBMITTED")  # a write transaction that commits
    assert heard == [1]
    with pytest.raises(RuntimeError), store.write() as conn:
        job_store.transition(conn, a, JobState.ACCEPTED)
        raise RuntimeError("abort")
    with store.read() as conn:
        events_store.feed_heads(conn)
    assert heard == [1]  # neither a rollback nor a read is heard
    stop()
    _move(store, a, JobState.ACCEPTED)
    assert heard == [1]
