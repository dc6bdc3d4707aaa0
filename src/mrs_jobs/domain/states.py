"""The job state machine, declared once.

States and results are YARN's (contract §4). The store enforces the table below with guarded
updates (``UPDATE ... WHERE state IN (allowed)``), so it holds with several writers.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "LIVE_STATES",
    "ON_REQUEST_ONLY",
    "TERMINAL_STATES",
    "TRANSITIONS",
    "JobResult",
    "JobState",
    "sources_of",
]


class JobState(StrEnum):
    NEW = "NEW"
    NEW_SAVING = "NEW_SAVING"
    SUBMITTED = "SUBMITTED"  # (ours) in the cluster's queue, waiting for a running slot
    ACCEPTED = "ACCEPTED"  # (ours) engine process started, application not yet running
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"


class JobResult(StrEnum):
    UNDEFINED = "UNDEFINED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    KILLED = "KILLED"


LIVE_STATES: frozenset[JobState] = frozenset(
    {JobState.NEW, JobState.NEW_SAVING, JobState.SUBMITTED, JobState.ACCEPTED, JobState.RUNNING}
)
TERMINAL_STATES: frozenset[JobState] = frozenset(
    {JobState.FINISHED, JobState.FAILED, JobState.KILLED}
)

#: target state -> the states it may be entered from.
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.NEW_SAVING: frozenset({JobState.NEW}),
    # ACCEPTED -> SUBMITTED: a claim whose engine provably never started goes back to the queue.
    # (ours) ACCEPTED | RUNNING -> SUBMITTED: a failed attempt with retries left (mrs.job.retries)
    # is queued again; the job stays live until its last attempt ends.
    JobState.SUBMITTED: frozenset({JobState.NEW_SAVING, JobState.ACCEPTED, JobState.RUNNING}),
    JobState.ACCEPTED: frozenset({JobState.SUBMITTED}),
    JobState.RUNNING: frozenset({JobState.ACCEPTED}),
    # An application that ran ends FINISHED (result SUCCEEDED, or FAILED: MRS's way) ...
    JobState.FINISHED: frozenset({JobState.RUNNING}),
    JobState.KILLED: LIVE_STATES,
    # ... FAILED when it never ran, was lost or timed out; and RUNNING -> FAILED is also how an
    # application that ran and failed ends on a cluster whose ``failed_job_state`` is FAILED.
    JobState.FAILED: frozenset({JobState.SUBMITTED, JobState.ACCEPTED, JobState.RUNNING}),
}


#: Edges of the table taken only when asked for by name (``transition(..., only_from=...)``),
#: never by a plain move to the target: the requeue of a claim whose engine never started and
#: the retry of a failed attempt, both taken by the supervisor alone (``store/supervision.py``
#: ``requeue`` and ``retry``, each guarded by the job's owner and no kill asked).
ON_REQUEST_ONLY: dict[JobState, frozenset[JobState]] = {
    JobState.SUBMITTED: frozenset({JobState.ACCEPTED, JobState.RUNNING}),
}


def sources_of(target: JobState) -> frozenset[JobState]:
    """States from which ``target`` may be entered; empty for NEW (only inserted)."""
    return TRANSITIONS.get(target, frozenset())
