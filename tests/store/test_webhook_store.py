"""The webhook outbox in the store: claims keep each job's order, leases, attempts, dead
letters, over-duration once, cleanup. On SQLite and PostgreSQL (the ``store`` fixture)."""

from __future__ import annotations

import threading

from jobrows import insert_job

from mrs_jobs.domain.states import JobState
from mrs_jobs.store import jobs as job_store
from mrs_jobs.store import webhooks as wh
from mrs_jobs.store.jobs import now_ms

P, C = "p1", "c1"


def _sub(store, events: list[str], *, od: int | None = None, cluster: str | None = None) -> str:  # type: ignore[no-untyped-def]
    hook = wh.Webhook(
        id=f"w-{len(events)}-{od}-{cluster}",
        project_id=P,
        cluster_id=cluster,
        url="http://127.0.0.1:9/",
        events=events,
        secret="sealed",
        over_duration_s=od,
        enabled=True,
        description="",
        created_ms=now_ms(),
    )
    with store.write() as conn:
        wh.add_webhook(conn, hook)
    return hook.id


def _move(store, job_id: str, target: JobState, **values) -> None:  # type: ignore[no-untyped-def]
    with store.write() as conn:
        assert job_store.transition(conn, job_id, target, values=values) is not None


def _claim(store, limit: int = 100, lease: int = 60_000) -> list[wh.Due]:  # type: ignore[no-untyped-def]
    at = now_ms() + 1
    with store.write() as conn:
        return wh.claim_due(conn, at, at + lease, limit)


def _lifecycle(store, job_id: str) -> None:  # type: ignore[no-untyped-def]
    _move(store, job_id, JobState.ACCEPTED)
    _move(store, job_id, JobState.RUNNING)
    _move(store, job_id, JobState.FINISHED, result="SUCCEEDED", finished_ms=now_ms())


def test_a_jobs_deliveries_are_claimed_one_at_a_time_in_order(store) -> None:
    _sub(store, ["job.accepted", "job.started", "job.succeeded"])
    a = insert_job(store, P, C, state="SUBMITTED")
    b = insert_job(store, P, C, state="SUBMITTED")
    _lifecycle(store, a)
    _lifecycle(store, b)
    seen: list[tuple[str, str]] = []
    for _ in range(3):
        got = _claim(store)
        assert sorted(d.job_id for d in got) == sorted([a, b])  # one per job per claim
        assert _claim(store) == []  # leased: nobody else takes them, nor what follows
        with store.write() as conn:
            for d in got:
                wh.record_attempt(conn, d.id, now_ms(), 200, None, 1)
                assert wh.mark_delivered(conn, d.id, now_ms(), 200)
                assert not wh.mark_delivered(conn, d.id, now_ms(), 200)  # once
        seen += [(d.job_id, d.event_type) for d in got]
    assert _claim(store) == []
    for job in (a, b):
        assert [t for j, t in seen if j == job] == ["job.accepted", "job.started", "job.succeeded"]
    with store.read() as conn:
        rows = wh.list_deliveries(conn, job_id=a)
        assert wh.oldest_undelivered_ms(conn) is None
    assert [r.state for r in rows] == ["delivered"] * 3
    assert all(len(r.log) == 1 and r.log[0].status == 200 for r in rows)


def test_a_failed_attempt_waits_and_holds_back_the_jobs_later_events(store) -> None:
    _sub(store, ["job.accepted", "job.started"])
    a = insert_job(store, P, C, state="SUBMITTED")
    _move(store, a, JobState.ACCEPTED)
    _move(store, a, JobState.RUNNING)
    (first,) = _claim(store)
    with store.write() as conn:
        wh.record_attempt(conn, first.id, now_ms(), 500, "HTTP 500", 3)
        assert wh.reschedule(conn, first, now_ms() + 3_600_000, 500, "HTTP 500")
    assert _claim(store) == []  # the retry is not due, and job.started waits behind it
    with store.read() as conn:
        later = wh.list_deliveries(conn, job_id=a)[0]
        assert later.event_type == "job.started"
        assert later.next_at_ms >= now_ms() + 3_000_000  # parked as long: claims skip it
        assert not wh.any_due(conn, now_ms())
    with store.read() as conn:
        assert wh.oldest_undelivered_ms(conn) is not None
    later_on = now_ms() + 3_700_000  # the retry's time came, it failed again: dead
    with store.write() as conn:
        assert wh.mark_dead(conn, first.id, later_on, 500, "HTTP 500")
        (second,) = wh.claim_due(conn, later_on, later_on + 60_000, 10)
    # a dead letter no longer holds the job back
    assert second.event_type == "job.started"
    with store.read() as conn:
        (dead,) = wh.list_deliveries(conn, state="dead")
    assert (dead.attempts, dead.last_status, [x.error for x in dead.log]) == (
        2,
        500,
        ["HTTP 500"],
    )


def test_an_expired_lease_is_claimed_again_with_the_same_msg_id(store) -> None:
    _sub(store, ["job.accepted"])
    a = insert_job(store, P, C, state="SUBMITTED")
    _move(store, a, JobState.ACCEPTED)
    (first,) = _claim(store, lease=0)  # the claimer died before recording
    (again,) = _claim(store)
    assert (again.id, again.msg_id) == (first.id, first.msg_id)


def test_concurrent_claimers_never_take_the_same_delivery(store) -> None:
    _sub(store, ["job.accepted"])
    for _ in range(60):
        _move(store, insert_job(store, P, C, state="SUBMITTED"), JobState.ACCEPTED)
    taken: list[int] = []
    lock = threading.Lock()

    def claimer() -> None:
        while True:
            got = _claim(store, limit=7)
            if not got:
                return
            with lock:
                taken.extend(d.id for d in got)

    threads = [threading.Thread(target=claimer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(taken) == 60 and len(set(taken)) == 60


def test_over_duration_is_owed_once_per_subscription_and_job(store) -> None:
    sub = _sub(store, ["job.over_duration"], od=60)
    now = now_ms()
    old = insert_job(store, P, C, state="RUNNING", started_ms=now - 120_000)
    insert_job(store, P, C, state="RUNNING", started_ms=now - 10_000)  # not yet
    insert_job(store, P, C, state="FINISHED", started_ms=now - 120_000)  # ended
    insert_job(store, P, C, state="RUNNING", started_ms=now - 30 * 86_400_000)  # long ago
    with store.read() as conn:
        owed = wh.over_duration_due(conn, now, 7 * 86_400_000, 100)
    assert [(s.id, j["id"]) for s, j in owed] == [(sub, old)]
    row = {
        "msg_id": "msg_od_x",
        "webhook_id": sub,
        "project_id": P,
        "job_id": old,
        "event_type": "job.over_duration",
        "seq": None,
        "payload": "{}",
        "state": "pending",
        "attempts": 0,
        "next_at_ms": now,
        "created_ms": now,
    }
    with store.write() as conn:
        assert wh.add_over_duration(conn, [row]) == 1
        assert wh.add_over_duration(conn, [row]) == 0  # same msg_id: kept as it was
    with store.read() as conn:
        assert wh.over_duration_due(conn, now, 7 * 86_400_000, 100) == []


def test_cleanup_removes_only_finished_deliveries_past_the_retention(store) -> None:
    _sub(store, ["job.accepted", "job.started"])
    a = insert_job(store, P, C, state="SUBMITTED")
    _move(store, a, JobState.ACCEPTED)
    _move(store, a, JobState.RUNNING)
    (first,) = _claim(store)
    with store.write() as conn:
        wh.record_attempt(conn, first.id, 1, 200, None, 1)
        wh.mark_delivered(conn, first.id, 1000, 200)
        assert wh.finished_before(conn, 500, 10) == []
        ids = wh.finished_before(conn, 2000, 10)
        assert ids == [first.id]
        assert wh.remove_deliveries(conn, ids) == 1
    with store.read() as conn:
        left = wh.list_deliveries(conn)
    assert [r.event_type for r in left] == ["job.started"]  # pending: kept


def test_a_disabled_subscription_parks_its_pending_deliveries(store) -> None:
    sub = _sub(store, ["job.accepted"])
    a = insert_job(store, P, C, state="SUBMITTED")
    _move(store, a, JobState.ACCEPTED)
    with store.write() as conn:
        assert wh.set_enabled(conn, sub, False, now_ms())
    with store.read() as conn:
        assert not wh.any_due(conn, now_ms() + 10**9)
        assert wh.list_deliveries(conn)[0].next_at_ms == wh.PAUSED_MS
    assert _claim(store) == []
    b = insert_job(store, P, C, state="SUBMITTED")
    _move(store, b, JobState.ACCEPTED)  # disabled: nothing queued for it
    with store.write() as conn:
        assert wh.set_enabled(conn, sub, True, now_ms())
    assert [d.job_id for d in _claim(store)] == [a]
