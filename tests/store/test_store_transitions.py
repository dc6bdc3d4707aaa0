"""The guarded state machine in the store (contract §4), on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import threading
import time

from jobrows import events_of, insert_job, raw_job
from sqlalchemy import select

from mrs_jobs.domain.states import JobState
from mrs_jobs.store import jobs as job_store
from mrs_jobs.store.tables import job_events

P, C = "p1", "c1"
STATES = ["NEW", "NEW_SAVING", "SUBMITTED", "ACCEPTED", "RUNNING", "FINISHED", "FAILED", "KILLED"]
LIVE = ["NEW", "NEW_SAVING", "SUBMITTED", "ACCEPTED", "RUNNING"]
# Written out from the contract, not derived from the code under test.
LEGAL = (
    {
        ("NEW", "NEW_SAVING"),
        ("NEW_SAVING", "SUBMITTED"),
        ("SUBMITTED", "ACCEPTED"),
        ("ACCEPTED", "RUNNING"),
        ("RUNNING", "FINISHED"),
    }
    | {(s, "KILLED") for s in LIVE}
    | {(s, "FAILED") for s in ("SUBMITTED", "ACCEPTED", "RUNNING")}
)


def test_every_pair_of_states(store, subtests) -> None:
    assert len(LEGAL) == 13
    for src, dst in itertools.product(STATES, STATES):
        with subtests.test(src=src, dst=dst):
            job_id = insert_job(store, P, C, state=src, result="UNDEFINED")
            with store.write() as conn:
                prev = job_store.transition(
                    conn, job_id, JobState(dst), reason=f"{src}->{dst}", values={"progress": 50.0}
                )
            row = raw_job(store, job_id)
            if (src, dst) in LEGAL:
                assert prev == src
                assert row["state"] == dst and row["progress"] == 50.0
                with store.read() as conn:
                    ev = conn.execute(select(job_events).where(job_events.c.job_id == job_id)).all()
                assert len(ev) == 1
                assert (ev[0].from_state, ev[0].to_state) == (src, dst)
                assert ev[0].reason == f"{src}->{dst}" and ev[0].at_ms > 0
            else:
                assert prev is None
                assert row["state"] == src and row["progress"] == 0.0, "values need a transition"
                assert events_of(store, job_id) == []


def test_terminal_states_never_change(store) -> None:
    for terminal in ("FINISHED", "FAILED", "KILLED"):
        job_id = insert_job(store, P, C, state=terminal)
        with store.write() as conn:
            for target in JobState:
                assert job_store.transition(conn, job_id, target) is None
        assert raw_job(store, job_id)["state"] == terminal
        assert events_of(store, job_id) == []


def test_full_lifecycle_is_recorded_in_order(store) -> None:
    job_id = insert_job(store, P, C, state="NEW")
    path = ["NEW_SAVING", "SUBMITTED", "ACCEPTED", "RUNNING", "FINISHED"]
    with store.write() as conn:
        for state in path:
            assert job_store.transition(conn, job_id, JobState(state)) is not None
    assert events_of(store, job_id) == list(zip(["NEW", *path[:-1]], path, strict=True))


def test_only_from_and_where_narrow_the_guard(store) -> None:
    queued = insert_job(store, P, C, state="SUBMITTED")
    running = insert_job(store, P, C, state="RUNNING")
    only_queued = [JobState.NEW, JobState.NEW_SAVING, JobState.SUBMITTED]
    with store.write() as conn:
        assert job_store.transition(conn, running, JobState.KILLED, only_from=only_queued) is None
        assert (
            job_store.transition(conn, queued, JobState.KILLED, only_from=only_queued)
            == "SUBMITTED"
        )
        # only_from can never widen the table.
        assert (
            job_store.transition(conn, running, JobState.ACCEPTED, only_from=[JobState.RUNNING])
            is None
        )
    deleted = insert_job(store, P, C, state="SUBMITTED", deleted_ms=7)
    from mrs_jobs.store.tables import jobs

    with store.write() as conn:
        prev = job_store.transition(conn, deleted, JobState.ACCEPTED, where=jobs.c.deleted_ms == 0)
    assert prev is None and raw_job(store, deleted)["state"] == "SUBMITTED"
    assert raw_job(store, running)["state"] == "RUNNING"


def test_unknown_job(store) -> None:
    with store.write() as conn:
        assert job_store.transition(conn, "no-such-job", JobState.KILLED) is None
    assert events_of(store, "no-such-job") == []


def _race(store, job_id: str, targets: list[JobState]) -> list[str | None]:  # type: ignore[no-untyped-def]
    barrier = threading.Barrier(len(targets))
    results: list[str | None | Exception] = [None] * len(targets)

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            with store.write() as conn:
                results[i] = job_store.transition(conn, job_id, targets[i], reason=f"t{i}")
                time.sleep(0.02)  # hold the transaction open while the other one tries
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(targets))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for r in results:
        assert not isinstance(r, Exception), repr(r)
    return results  # type: ignore[return-value]


def test_racing_the_same_transition_has_one_winner(store) -> None:
    for _ in range(8):
        job_id = insert_job(store, P, C, state="SUBMITTED")
        results = _race(store, job_id, [JobState.ACCEPTED, JobState.ACCEPTED])
        assert sorted(results, key=lambda r: r is None) == ["SUBMITTED", None]
        assert events_of(store, job_id) == [("SUBMITTED", "ACCEPTED")]


def test_racing_terminal_transitions_have_one_winner(store) -> None:
    for start in ("SUBMITTED", "RUNNING"):
        for _ in range(4):
            job_id = insert_job(store, P, C, state=start)
            targets = [JobState.KILLED, JobState.FAILED, JobState.KILLED]
            results = _race(store, job_id, targets)
            winners = [targets[i].value for i, r in enumerate(results) if r is not None]
            assert len(winners) == 1, results
            assert results.count(start) == 1
            assert events_of(store, job_id) == [(start, winners[0])]
            assert raw_job(store, job_id)["state"] == winners[0]


def test_racing_transitions_form_one_legal_serial_history(store) -> None:
    """ACCEPTED vs KILLED from SUBMITTED: either KILLED alone, or ACCEPTED then KILLED."""
    for _ in range(6):
        job_id = insert_job(store, P, C, state="SUBMITTED")
        results = _race(store, job_id, [JobState.ACCEPTED, JobState.KILLED])
        events = events_of(store, job_id)
        if results[0] is None:
            assert results[1] == "SUBMITTED"
            assert events == [("SUBMITTED", "KILLED")]
        else:
            assert results == ["SUBMITTED", "ACCEPTED"]
            assert events == [("SUBMITTED", "ACCEPTED"), ("ACCEPTED", "KILLED")]
        assert raw_job(store, job_id)["state"] == "KILLED"


def test_racing_threads_never_lose_an_update(store) -> None:
    """Many threads walking many jobs forward: each job's events form one legal path."""
    ids = [insert_job(store, P, C, state="NEW") for _ in range(6)]
    path = [JobState.NEW_SAVING, JobState.SUBMITTED, JobState.ACCEPTED, JobState.RUNNING]
    barrier = threading.Barrier(4)
    errors: list[Exception] = []

    def walker() -> None:
        barrier.wait()
        try:
            for _ in range(3):
                for job_id in ids:
                    for target in path:
                        with store.write() as conn:
                            job_store.transition(conn, job_id, target)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=walker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    for job_id in ids:
        assert raw_job(store, job_id)["state"] == "RUNNING"
        assert events_of(store, job_id) == [
            ("NEW", "NEW_SAVING"),
            ("NEW_SAVING", "SUBMITTED"),
            ("SUBMITTED", "ACCEPTED"),
            ("ACCEPTED", "RUNNING"),
        ]
