"""The end-of-job rules (domain/outcome.py): one table, whichever path saw the job end."""

from __future__ import annotations

import pytest

from mrs_jobs.domain.outcome import Outcome, decide, exit_reason, killed_before_launch
from mrs_jobs.domain.states import TRANSITIONS, JobResult, JobState

RUNNING, ACCEPTED = JobState.RUNNING, JobState.ACCEPTED


@pytest.mark.parametrize(
    ("state", "outcome", "expected"),
    [
        # success, with or without the application having said it runs
        (RUNNING, Outcome(returncode=0), (JobState.FINISHED, JobResult.SUCCEEDED, "exit code 0")),
        (ACCEPTED, Outcome(returncode=0), (JobState.FINISHED, JobResult.SUCCEEDED, "exit code 0")),
        # a kill asked for wins over whatever the run did, success included
        (
            RUNNING,
            Outcome(returncode=0, kill_asked=True),
            (JobState.KILLED, JobResult.KILLED, "killed on request"),
        ),
        (
            ACCEPTED,
            Outcome.lost(kill_asked=True),
            (JobState.KILLED, JobResult.KILLED, "killed on request"),
        ),
        # killed in its engine (remote cancel): KILLED with the engine's reason
        (
            RUNNING,
            Outcome(
                signal=9,
                killed_in_engine=True,
                lost_reason="the application was killed in its engine",
            ),
            (JobState.KILLED, JobResult.KILLED, "the application was killed in its engine"),
        ),
        (RUNNING, Outcome(killed_in_engine=True), (JobState.KILLED, JobResult.KILLED, "killed")),
        # a running application that failed: it finished, unsuccessfully
        (
            RUNNING,
            Outcome(returncode=3),
            (JobState.FINISHED, JobResult.FAILED, "the engine exited with code 3"),
        ),
        (
            RUNNING,
            Outcome(signal=15),
            (JobState.FINISHED, JobResult.FAILED, "the engine was stopped by signal 15"),
        ),
        # one that never said it runs failed before running
        (
            ACCEPTED,
            Outcome(returncode=3),
            (JobState.FAILED, JobResult.FAILED, "the engine exited with code 3"),
        ),
        (
            ACCEPTED,
            Outcome(start_error="no java"),
            (JobState.FAILED, JobResult.FAILED, "the engine could not start: no java"),
        ),
        # no exit status: lost, FAILED even when it was running
        (
            RUNNING,
            Outcome.lost(),
            (
                JobState.FAILED,
                JobResult.FAILED,
                "the engine process was lost (it left no exit status)",
            ),
        ),
        (
            ACCEPTED,
            Outcome.lost("the service stopped before the engine was started"),
            (
                JobState.FAILED,
                JobResult.FAILED,
                "the service stopped before the engine was started",
            ),
        ),
        # the service's own reason wins over the exit code (a remote engine's message)
        (
            RUNNING,
            Outcome(returncode=1, lost_reason="driver OOM"),
            (JobState.FINISHED, JobResult.FAILED, "driver OOM"),
        ),
        # a timeout is FAILED with the timeout as its reason, even from RUNNING
        (
            RUNNING,
            Outcome(signal=9, timeout_seconds=30),
            (JobState.FAILED, JobResult.FAILED, "timed out after 30 s (mrs.job.timeout)"),
        ),
        # but a kill asked for still says so
        (
            RUNNING,
            Outcome(signal=9, timeout_seconds=30, kill_asked=True),
            (JobState.KILLED, JobResult.KILLED, "killed on request"),
        ),
    ],
)
def test_decide(state: JobState, outcome: Outcome, expected: tuple) -> None:
    ending = decide(state, outcome)
    assert (ending.state, ending.result, ending.reason) == expected


def test_success_from_accepted_passes_through_running() -> None:
    assert decide(ACCEPTED, Outcome(returncode=0)).via_running
    assert not decide(RUNNING, Outcome(returncode=0)).via_running


def test_every_ending_is_a_legal_transition() -> None:
    """Whatever decide answers, the store can take it from the state it was given."""
    outcomes = [
        Outcome(returncode=0),
        Outcome(returncode=2),
        Outcome(signal=9),
        Outcome.lost(),
        Outcome(kill_asked=True),
        Outcome(killed_in_engine=True),
        Outcome(returncode=1, timeout_seconds=5),
    ]
    for state in (JobState.ACCEPTED, JobState.RUNNING):
        for outcome in outcomes:
            ending = decide(state, outcome)
            source = JobState.RUNNING if ending.via_running else state
            assert source in TRANSITIONS[ending.state], (state, outcome, ending)


def test_killed_before_launch() -> None:
    ending = killed_before_launch()
    assert (ending.state, ending.result) == (JobState.KILLED, JobResult.KILLED)
    for queued in (JobState.NEW, JobState.NEW_SAVING, JobState.SUBMITTED):
        assert queued in TRANSITIONS[ending.state]


def test_exit_reason_never_empty() -> None:
    assert exit_reason(Outcome(returncode=None)) == "the engine exited with code None"
    assert "lost" in exit_reason(Outcome.lost())
