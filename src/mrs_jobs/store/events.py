"""A job's history: one ``job_events`` row per state change, with its reason and its cause.

Every guarded transition writes its row in the same transaction (``store/jobs.transition``);
a submit writes its three at once. The rows go with the job when it is purged.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert, select

from mrs_jobs.domain.job import JobEvent
from mrs_jobs.store.tables import job_events

__all__ = ["list_events", "record_event", "record_events"]

#: A job changes state a handful of times; this bounds what one answer can hold.
MAX_EVENTS = 1000


def record_event(
    conn: Connection,
    job_id: str,
    from_state: str | None,
    to_state: str,
    reason: str,
    at_ms: int,
    actor: str | None = None,
) -> None:
    row = {"from_state": from_state, "to_state": to_state, "reason": reason, "actor": actor}
    conn.execute(insert(job_events).values(job_id=job_id, at_ms=at_ms, **row))


def record_events(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Several ``job_events`` rows in one statement (one round trip for a submit)."""
    conn.execute(insert(job_events), rows)


def list_events(conn: Connection, job_id: str) -> list[JobEvent]:
    """The job's state changes, oldest first (in the order they were written)."""
    rows = conn.execute(
        select(job_events)
        .where(job_events.c.job_id == job_id)
        .order_by(job_events.c.id)
        .limit(MAX_EVENTS)
    ).all()
    return [
        JobEvent(r.at_ms, r.from_state, r.to_state, r.reason or "", r.actor or "") for r in rows
    ]
