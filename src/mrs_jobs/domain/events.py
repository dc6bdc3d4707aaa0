"""What a client is told of a job's state changes: event types and the event's JSON shape.

Every state change of a job is one event of its project's stream (``store/events.py``), with a
project-wide cursor ``seq``. Its type names what happened in the words of a job's user, not
the state machine's: a job that reaches RUNNING has *started*, one that reaches FINISHED has
*succeeded*, one that leaves ACCEPTED or RUNNING for SUBMITTED is *retrying* (another attempt,
``mrs.job.retries``). The same JSON is a stream answer's item, an SSE event's data and a
webhook's body (the Standard Webhooks shape: ``type``, ``timestamp``, ``data``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mrs_jobs.domain.states import JobResult, JobState

__all__ = [
    "EVENT_TYPES",
    "OVER_DURATION",
    "SUBSCRIBABLE",
    "FeedEvent",
    "event_type",
]

_BY_TARGET = {
    JobState.NEW: "job.created",
    JobState.NEW_SAVING: "job.saving",
    JobState.SUBMITTED: "job.submitted",
    JobState.ACCEPTED: "job.accepted",
    JobState.RUNNING: "job.started",
    JobState.FINISHED: "job.succeeded",
    JobState.FAILED: "job.failed",
    JobState.KILLED: "job.killed",
}
RETRYING = "job.retrying"
#: Not a state change: a job still running after a subscription's ``over_duration_s``.
OVER_DURATION = "job.over_duration"
EVENT_TYPES = frozenset({*_BY_TARGET.values(), RETRYING})
#: What a webhook can subscribe to (the creation steps of a submit are one ``job.submitted``).
SUBSCRIBABLE = frozenset(
    {
        "job.submitted",
        "job.accepted",
        "job.started",
        "job.retrying",
        "job.succeeded",
        "job.failed",
        "job.killed",
        OVER_DURATION,
    }
)


def event_type(from_state: str | None, to_state: str, result: str | None = None) -> str:
    """The event type of a change from ``from_state`` to ``to_state`` (``result``: the job's
    final status, which tells a FINISHED that failed, MRS's way, from one that succeeded)."""
    target = JobState(to_state)
    if target is JobState.FINISHED and result == JobResult.FAILED.value:
        return "job.failed"
    if target is JobState.SUBMITTED and from_state in (
        JobState.ACCEPTED.value,
        JobState.RUNNING.value,
    ):
        return RETRYING
    return _BY_TARGET.get(target, "job." + to_state.lower())


@dataclass(frozen=True)
class FeedEvent:
    """One event of a project's stream."""

    seq: int
    project_id: str
    cluster_id: str
    job_id: str
    from_state: str | None
    to_state: str
    reason: str
    at_ms: int
    result: str | None = None

    @property
    def type(self) -> str:
        return event_type(self.from_state, self.to_state, self.result)

    def to_json(self) -> dict[str, Any]:
        """The event as the stream, SSE and webhooks give it."""
        return {
            "type": self.type,
            "timestamp": datetime.fromtimestamp(self.at_ms / 1000, UTC).isoformat(
                timespec="milliseconds"
            ),
            "data": {
                "event_id": str(self.seq),
                "project_id": self.project_id,
                "cluster_id": self.cluster_id,
                "job_id": self.job_id,
                "from_state": self.from_state,
                "to_state": self.to_state,
                "final_status": self.result,
                "reason": self.reason,
                "at": self.at_ms,
            },
        }
