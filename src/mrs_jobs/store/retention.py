"""Queries of retention: a cluster's expired ended jobs, old audit rows, stale submit keys.

Retention reads a cluster's expired ended jobs (a terminal state with ``finished_ms`` > 0,
not deleted yet) and the supervisor's purge (``supervisor/purge.py``) removes their rows and
files. Jobs and SQL executions (``deleted_ms`` = -1) of a cluster are read together, in the
order of the ``ix_jobs_ended (cluster_id, finished_ms)`` index. An operator's ``admin purge``
(another process) marks the ended jobs it matches deleted (``deleted_ms`` > 0) instead, the
way a batch delete does, re-checking in the UPDATE that each has ended, and the server's purge
removes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, delete, func, or_, select, update

from mrs_jobs.domain.job import Job
from mrs_jobs.domain.states import TERMINAL_STATES
from mrs_jobs.store.jobs import job_from_row
from mrs_jobs.store.tables import audit, jobs, submit_keys

__all__ = [
    "EndedFilter",
    "count_matching",
    "matching_ids",
    "sample_matching",
    "delete_old_audit",
    "delete_old_submit_keys",
    "expired_jobs",
    "keep_newest_cutoff",
    "mark_expired",
]

_TERMINAL = sorted(s.value for s in TERMINAL_STATES)


def _ended() -> tuple[object, ...]:
    """Not yet marked (0: a job, -1: an SQL execution), ended, with an end time."""
    return (jobs.c.deleted_ms <= 0, jobs.c.finished_ms > 0, jobs.c.state.in_(_TERMINAL))


def expired_jobs(
    conn: Connection,
    cluster_id: str,
    before_ms: int,
    limit: int,
    *,
    after: tuple[int, str] | None = None,
) -> list[Job]:
    """The oldest ended jobs of a cluster that ended before ``before_ms`` (at most ``limit``),
    in (end time, id) order, after the job at ``after`` (an end time and an id) if given."""
    conds = [jobs.c.cluster_id == cluster_id, jobs.c.finished_ms < before_ms, *_ended()]
    if after is not None:
        at, job_id = after
        conds.append(
            or_(jobs.c.finished_ms > at, and_(jobs.c.finished_ms == at, jobs.c.id > job_id))
        )
    rows = conn.execute(
        select(jobs).where(*conds).order_by(jobs.c.finished_ms, jobs.c.id).limit(limit)
    ).all()
    return [job_from_row(r) for r in rows]


def keep_newest_cutoff(conn: Connection, cluster_id: str, keep: int) -> int:
    """The end time of the ``keep``-th newest ended job of a cluster (older ones are past a
    retention_max_jobs of ``keep``); 0 when it has no more than ``keep``. Jobs ending in the
    same millisecond as that one are kept too, so at least ``keep`` stay."""
    row = conn.execute(
        select(jobs.c.finished_ms)
        .where(jobs.c.cluster_id == cluster_id, *_ended())
        .order_by(jobs.c.finished_ms.desc())
        .offset(keep - 1)
        .limit(1)
    ).first()
    return int(row.finished_ms) if row is not None else 0


def mark_expired(conn: Connection, ids: list[str], at_ms: int) -> int:
    """Mark these jobs deleted for the purge, re-checking in the UPDATE that each has ended
    and is not marked yet. Returns how many were marked."""
    if not ids:
        return 0
    res = conn.execute(update(jobs).where(jobs.c.id.in_(ids), *_ended()).values(deleted_ms=at_ms))
    return int(res.rowcount)


def delete_old_audit(conn: Connection, before_ms: int, limit: int) -> int:
    """Delete up to ``limit`` of the oldest audit rows written before ``before_ms``."""
    ids = [
        r.id
        for r in conn.execute(
            select(audit.c.id).where(audit.c.at_ms < before_ms).order_by(audit.c.at_ms).limit(limit)
        ).all()
    ]
    if not ids:
        return 0
    return int(conn.execute(delete(audit).where(audit.c.id.in_(ids))).rowcount)


def delete_old_submit_keys(conn: Connection, before_ms: int, limit: int) -> int:
    """Delete up to ``limit`` idempotency keys recorded before ``before_ms``."""
    rows = conn.execute(
        select(submit_keys.c.project_id, submit_keys.c.idem_key)
        .where(submit_keys.c.created_ms < before_ms)
        .order_by(submit_keys.c.created_ms)
        .limit(limit)
    ).all()
    gone = 0
    for r in rows:
        gone += conn.execute(
            delete(submit_keys).where(
                submit_keys.c.project_id == r.project_id,
                submit_keys.c.idem_key == r.idem_key,
                submit_keys.c.created_ms < before_ms,
            )
        ).rowcount
    return gone


@dataclass(frozen=True)
class EndedFilter:
    """Which ended, visible jobs an operator's ``admin purge`` takes (None: any)."""

    cluster_id: str | None = None
    states: tuple[str, ...] = ()  # terminal states only; empty: all of them
    ended_before_ms: int | None = None
    name_contains: str | None = None


def _matching(f: EndedFilter) -> list[Any]:
    states = list(f.states) or _TERMINAL
    conds: list[Any] = [
        jobs.c.deleted_ms == 0,  # visible jobs (SQL executions are retention's alone)
        jobs.c.finished_ms > 0,
        jobs.c.state.in_(states),
    ]
    if f.cluster_id is not None:
        conds.append(jobs.c.cluster_id == f.cluster_id)
    if f.ended_before_ms is not None:
        conds.append(jobs.c.finished_ms < f.ended_before_ms)
    if f.name_contains is not None:
        conds.append(jobs.c.job_name.icontains(f.name_contains, autoescape=True))
    return conds


def count_matching(conn: Connection, f: EndedFilter) -> int:
    return int(
        conn.execute(select(func.count()).select_from(jobs).where(*_matching(f))).scalar_one()
    )


def sample_matching(conn: Connection, f: EndedFilter, limit: int) -> list[dict[str, Any]]:
    """The oldest few matching jobs (id, name, state, cluster, end time) to show first."""
    rows = conn.execute(
        select(jobs.c.id, jobs.c.job_name, jobs.c.state, jobs.c.cluster_id, jobs.c.finished_ms)
        .where(*_matching(f))
        .order_by(jobs.c.finished_ms, jobs.c.id)
        .limit(limit)
    ).all()
    return [dict(r._mapping) for r in rows]


def matching_ids(conn: Connection, f: EndedFilter, limit: int) -> list[str]:
    rows = conn.execute(
        select(jobs.c.id).where(*_matching(f)).order_by(jobs.c.finished_ms).limit(limit)
    ).all()
    return [r.id for r in rows]
