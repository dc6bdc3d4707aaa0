"""The state machine table matches contract §4 exactly."""

from __future__ import annotations

from mrs_jobs.domain.states import (
    LIVE_STATES,
    ON_REQUEST_ONLY,
    TERMINAL_STATES,
    TRANSITIONS,
    JobResult,
    JobState,
    sources_of,
)


def test_states_and_results_are_yarns_upper_case() -> None:
    assert [s.value for s in JobState] == [
        "NEW",
        "NEW_SAVING",
        "SUBMITTED",
        "ACCEPTED",
        "RUNNING",
        "FINISHED",
        "FAILED",
        "KILLED",
    ]
    assert {r.value for r in JobResult} == {"UNDEFINED", "SUCCEEDED", "FAILED", "KILLED"}


def test_live_and_terminal_partition_the_states() -> None:
    assert {s.value for s in LIVE_STATES} == {
        "NEW",
        "NEW_SAVING",
        "SUBMITTED",
        "ACCEPTED",
        "RUNNING",
    }
    assert {s.value for s in TERMINAL_STATES} == {"FINISHED", "FAILED", "KILLED"}
    assert LIVE_STATES | TERMINAL_STATES == set(JobState)
    assert not LIVE_STATES & TERMINAL_STATES


def test_transition_table_is_the_contracts() -> None:
    table = {(src.value, dst.value) for dst, srcs in TRANSITIONS.items() for src in srcs}
    live = ["NEW", "NEW_SAVING", "SUBMITTED", "ACCEPTED", "RUNNING"]
    assert table == (
        {
            ("NEW", "NEW_SAVING"),
            ("NEW_SAVING", "SUBMITTED"),
            ("SUBMITTED", "ACCEPTED"),
            ("ACCEPTED", "RUNNING"),
            ("RUNNING", "FINISHED"),
            # ours: a claim whose engine provably never started returns to the queue
            ("ACCEPTED", "SUBMITTED"),
            # ours: a failed attempt with retries left is queued again (mrs.job.retries)
            ("RUNNING", "SUBMITTED"),
        }
        | {(s, "KILLED") for s in live}
        | {(s, "FAILED") for s in ("SUBMITTED", "ACCEPTED", "RUNNING")}
    )
    assert sources_of(JobState.NEW) == frozenset()
    for terminal in TERMINAL_STATES:
        assert all(terminal not in srcs for srcs in TRANSITIONS.values())


def test_requeue_and_retry_edges_are_taken_only_by_name() -> None:
    """ACCEPTED | RUNNING -> SUBMITTED (the requeue of a claim that never started, the retry of
    a failed attempt) are the supervisor's alone: a plain move to SUBMITTED never takes them."""
    assert ON_REQUEST_ONLY[JobState.SUBMITTED] == {JobState.ACCEPTED, JobState.RUNNING}
    assert ON_REQUEST_ONLY[JobState.SUBMITTED] <= sources_of(JobState.SUBMITTED)
