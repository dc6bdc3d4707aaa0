"""How a job ends: every end-of-job rule in one pure function.

Whatever saw the job end — the local supervisor reading a run's exit status, the detached
tracker asking a remote engine, a kill before launch — describes what it saw as an
:class:`Outcome`; :func:`decide` turns that and the job's current state into the one
:class:`Ending` (state, result, reason) the store records. Nothing here does I/O.

The rules (contract §4, YARN's states and results):

- a kill somebody asked for (kill, batch delete) ends KILLED, whatever the run did;
- a run its engine killed (a remote cancel, an operator) ends KILLED with that reason;
- exit code 0 ends FINISHED/SUCCEEDED (through RUNNING if the application never said so);
- a failure of an application that was RUNNING and left an exit status ends FINISHED/FAILED
  (YARN and MRS: the application finished, unsuccessfully), or FAILED/FAILED on a cluster
  whose ``failed_job_state`` is FAILED (for clients that read job_state only);
- everything else — it never ran, its exit is unknown (lost), it timed out — ends FAILED/FAILED.

(ours) A failed ending is then weighed against the job's retries (:func:`plan_retry`): an
attempt that exited non-zero, was lost or timed out, with retries left, goes back to the queue
instead; a kill (asked for, or in the engine) never retries, nor does an engine that could not
even start (it would not start the next time either).
"""

from __future__ import annotations

from dataclasses import dataclass

from mrs_jobs.domain.retries import RetryPolicy
from mrs_jobs.domain.states import JobResult, JobState

__all__ = [
    "Ending",
    "Outcome",
    "Retry",
    "attempt_label",
    "decide",
    "exit_reason",
    "killed_before_launch",
    "plan_retry",
]


@dataclass(frozen=True)
class Outcome:
    """What is known of a job's run at its end.

    ``exited`` is False when the run left no exit status (its processes were lost).
    ``lost_reason`` is the service's own explanation when it knows better than an exit
    code (the engine no longer knows the application, the service stopped before launch).
    """

    exited: bool = True
    returncode: int | None = None
    signal: int | None = None
    start_error: str | None = None  # the engine could not even start (exec failed...)
    lost_reason: str | None = None
    kill_asked: bool = False  # a kill or delete was asked for through the API
    killed_in_engine: bool = False  # the engine itself says the application was killed
    timeout_seconds: int | None = None  # set when the job's deadline had passed

    @property
    def succeeded(self) -> bool:
        return (
            self.exited
            and self.returncode == 0
            and self.signal is None
            and self.start_error is None
            and self.lost_reason is None
        )

    @classmethod
    def lost(cls, reason: str | None = None, **kw: object) -> Outcome:
        """A run that left no exit status."""
        return cls(exited=False, lost_reason=reason, **kw)  # type: ignore[arg-type]


@dataclass(frozen=True)
class Ending:
    """What the store records when a job ends."""

    state: JobState
    result: JobResult
    reason: str
    via_running: bool = False  # move ACCEPTED -> RUNNING first (it ran, but never said so)


def exit_reason(outcome: Outcome) -> str:
    """The user-readable reason of a run that did not succeed, from its exit alone."""
    if not outcome.exited:
        return "the engine process was lost (it left no exit status)"
    if outcome.start_error:
        return f"the engine could not start: {outcome.start_error}"
    if outcome.signal:
        return f"the engine was stopped by signal {outcome.signal}"
    return f"the engine exited with code {outcome.returncode}"


def decide(
    state: JobState, outcome: Outcome, failed_job_state: JobState = JobState.FINISHED
) -> Ending:
    """The ending of a job now in ``state`` whose run ended as ``outcome`` says.

    ``failed_job_state`` is the state an application that ran and then failed ends in: its
    cluster's setting, FINISHED (MRS's) unless the cluster says FAILED."""
    if outcome.kill_asked:
        return Ending(JobState.KILLED, JobResult.KILLED, "killed on request")
    if outcome.killed_in_engine:
        return Ending(JobState.KILLED, JobResult.KILLED, outcome.lost_reason or "killed")
    if outcome.succeeded:
        return Ending(
            JobState.FINISHED,
            JobResult.SUCCEEDED,
            "exit code 0",
            via_running=state == JobState.ACCEPTED,
        )
    reason = outcome.lost_reason or exit_reason(outcome)
    timed_out = outcome.timeout_seconds is not None
    if timed_out:
        reason = f"timed out after {outcome.timeout_seconds} s (mrs.job.timeout)"
    ran_to_an_end = state == JobState.RUNNING and outcome.exited and not timed_out
    ended_as = failed_job_state if ran_to_an_end else JobState.FAILED
    return Ending(ended_as, JobResult.FAILED, reason)


def killed_before_launch(attempt: int = 1) -> Ending:
    """A queued job killed (or deleted) before any engine started: nothing ran (or, queued
    for a retry, nothing of the next attempt)."""
    reason = f"killed while queued for attempt {attempt}" if attempt > 1 else "killed before launch"
    return Ending(JobState.KILLED, JobResult.KILLED, reason)


@dataclass(frozen=True)
class Retry:
    """A failed attempt that goes back to the queue instead of ending the job."""

    failed_attempt: int  # 1-based
    attempts: int  # in all, the first included
    delay_seconds: int
    reason: str  # the failed attempt's own reason

    @property
    def summary(self) -> str:
        """The event's reason: which attempt failed, why, and when the next one starts."""
        return (
            f"{attempt_label(self.failed_attempt, self.attempts)} failed: {self.reason}; "
            f"retrying in {self.delay_seconds} s"
        )


def attempt_label(attempt: int, attempts: int) -> str:
    return f"attempt {attempt} of {attempts}"


def plan_retry(ending: Ending, outcome: Outcome, attempt: int, policy: RetryPolicy) -> Retry | None:
    """The retry of attempt ``attempt`` (1-based) that ended as ``ending``; None when the job
    ends now: it did not fail, it was killed, its engine could not start, or no retry is left."""
    if ending.result != JobResult.FAILED or outcome.kill_asked or outcome.killed_in_engine:
        return None
    if outcome.start_error or attempt >= policy.attempts:
        return None
    return Retry(attempt, policy.attempts, policy.backoff_seconds(attempt), ending.reason)
