"""Property tests for the stored state machine (contract section 4), against a real store.

Random sequences of transition attempts (some narrowed with ``only_from``, some rolled back)
and concurrent attempts from several threads: the stored state always follows the table in
``domain/states.py``, every success is recorded in ``job_events`` in order, a terminal job
never changes, and of racing writers at most one leaves any given state.
"""

from __future__ import annotations

import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jobrows import events_of, insert_job, raw_job
from sqlalchemy import select

from mrs_jobs.domain.states import (
    LIVE_STATES,
    ON_REQUEST_ONLY,
    TERMINAL_STATES,
    TRANSITIONS,
    JobState,
    sources_of,
)
from mrs_jobs.store import Store
from mrs_jobs.store import jobs as job_store
from mrs_jobs.store.tables import job_events

P, C = "pprops", "cprops"
STATES = list(JobState)
LEGAL = {(src.value, dst.value) for dst, srcs in TRANSITIONS.items() for src in srcs}
TERMINAL = {s.value for s in TERMINAL_STATES}

COMMON = dict(
    deadline=None,
    derandomize=True,
    database=None,
    # The store fixture is shared by the examples on purpose: every example has its own job.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class Boom(Exception):
    """Raised inside a write transaction to roll it back."""


attempts = st.lists(
    st.tuples(
        st.sampled_from(STATES),  # target
        st.one_of(st.none(), st.frozensets(st.sampled_from(STATES), min_size=1)),  # only_from
        st.floats(0, 100, allow_nan=False),  # progress written with the transition
        st.booleans(),  # roll the transaction back afterwards
    ),
    max_size=25,
)


def test_the_table_never_leaves_a_terminal_state() -> None:
    assert all(src not in TERMINAL for src, _ in LEGAL)
    assert not TRANSITIONS.get(JobState.NEW), "NEW is only ever inserted"


@settings(max_examples=200, **COMMON)
@given(initial=st.sampled_from(STATES), steps=attempts)
def test_random_attempts_follow_the_table(
    sqlite_store: Store,
    initial: JobState,
    steps: list[tuple[JobState, frozenset[JobState] | None, float, bool]],
) -> None:
    store = sqlite_store
    job_id = insert_job(store, P, C, state=initial.value, progress=0.0)
    current, progress = initial.value, 0.0
    expected_events: list[tuple[str | None, str]] = []
    for i, (target, only_from, new_progress, rollback) in enumerate(steps):
        allowed = {s.value for s in sources_of(target)}
        if only_from is not None:
            allowed &= {s.value for s in only_from}
        else:  # edges taken only when asked for by name (the requeue)
            allowed -= {s.value for s in ON_REQUEST_ONLY.get(target, frozenset())}
        legal = current in allowed
        prev: str | None = None
        try:
            with store.write() as conn:
                prev = job_store.transition(
                    conn,
                    job_id,
                    target,
                    reason=f"step {i}",
                    values={"progress": new_progress},
                    only_from=only_from,
                )
                if rollback:
                    raise Boom()
        except Boom:
            pass
        assert prev == (current if legal else None), (i, current, target, only_from)
        if legal and not rollback:
            assert (current, target.value) in LEGAL
            assert current not in TERMINAL
            expected_events.append((current, target.value))
            current, progress = target.value, new_progress
        row = raw_job(store, job_id)
        assert row is not None
        assert (row["state"], row["progress"]) == (current, progress), (i, target, rollback)
    assert events_of(store, job_id) == expected_events
    with store.read() as conn:
        rows = conn.execute(
            select(job_events.c.reason, job_events.c.at_ms)
            .where(job_events.c.job_id == job_id)
            .order_by(job_events.c.id)
        ).all()
    steps_recorded = [int(r.reason.split()[1]) for r in rows]
    assert steps_recorded == sorted(steps_recorded), "events are recorded in order"
    assert [r.at_ms for r in rows] == sorted(r.at_ms for r in rows)


@settings(max_examples=50, **COMMON)
@given(terminal=st.sampled_from(sorted(TERMINAL)), targets=st.lists(st.sampled_from(STATES)))
def test_terminal_jobs_never_change(
    sqlite_store: Store, terminal: str, targets: list[JobState]
) -> None:
    job_id = insert_job(sqlite_store, P, C, state=terminal, progress=42.0)
    before = raw_job(sqlite_store, job_id)
    with sqlite_store.write() as conn:
        for target in targets:
            assert job_store.transition(conn, job_id, target, values={"progress": 1.0}) is None
    assert raw_job(sqlite_store, job_id) == before
    assert events_of(sqlite_store, job_id) == []


@pytest.mark.timeout(120)
@settings(max_examples=60, **COMMON)
@given(
    initial=st.sampled_from(STATES),
    targets=st.lists(st.sampled_from(STATES), min_size=2, max_size=6),
)
def test_concurrent_attempts_have_at_most_one_winner_per_state(
    store: Store, initial: JobState, targets: list[JobState]
) -> None:
    job_id = insert_job(store, P, C, state=initial.value)
    barrier = threading.Barrier(len(targets))
    results: list[str | None] = [None] * len(targets)
    errors: list[BaseException] = []

    def attempt(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            with store.write() as conn:
                results[i] = job_store.transition(conn, job_id, targets[i], reason=f"thread {i}")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(len(targets))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    wins = [(prev, targets[i].value) for i, prev in enumerate(results) if prev is not None]
    # At most one writer leaves any given state (but for the one cycle: a claim that went back
    # to the queue is claimed again) ...
    if ("ACCEPTED", "SUBMITTED") not in wins:
        assert len({prev for prev, _ in wins}) == len(wins), wins
    # ... and what won is one legal chain from the initial state, recorded in commit order.
    events = events_of(store, job_id)
    assert sorted(events) == sorted(wins)
    state = initial.value
    for src, dst in events:
        assert src == state and (src, dst) in LEGAL, (events, initial)
        state = dst
    assert raw_job(store, job_id)["state"] == state
    if initial.value in TERMINAL:
        assert not wins
    if initial in LIVE_STATES and JobState.KILLED in targets:
        # KILLED is legal from every live state: whenever its thread ran, the job ended.
        assert state in TERMINAL, (events, targets)
