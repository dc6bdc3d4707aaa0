"""A job's history and its project's event stream: one ``job_events`` row per state change.

Every guarded transition writes its row in the same transaction (``store/jobs.transition``);
a submit writes its three at once. Each row also takes the project's next cursor ``seq`` from
``event_cursors``: bumping that row locks it until the transaction commits, so another
writer of the same project waits and a project's events become visible in cursor order (a
stream reader that has seen ``seq`` n never later finds a smaller one appear). The webhook
deliveries of the events are written in the same transaction (``store/outbox.py``). The rows
go with the job when it is purged.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select

from mrs_jobs.domain.events import FeedEvent
from mrs_jobs.domain.job import JobEvent
from mrs_jobs.store import outbox
from mrs_jobs.store.dialect import dialect_of
from mrs_jobs.store.tables import event_cursors, job_events

__all__ = ["feed_head", "feed_heads", "list_events", "list_feed", "record_event", "record_events"]

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
    *,
    project_id: str | None,
    cluster_id: str,
    result: str | None = None,
) -> None:
    """One state change; ``project_id`` None keeps it out of the project's stream (an SQL
    execution's, store/sql_executions.py)."""
    row = {"from_state": from_state, "to_state": to_state, "reason": reason, "actor": actor}
    record_events(
        conn,
        [
            {
                "job_id": job_id,
                "at_ms": at_ms,
                "project_id": project_id,
                "cluster_id": cluster_id,
                "result": result,
                **row,
            }
        ],
    )


def record_events(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Several ``job_events`` rows of one project in one statement (one round trip for a
    submit); each row names its ``project_id`` (None: not in the stream) and ``cluster_id``.
    They take consecutive cursors, and their webhook deliveries are queued."""
    if not rows:
        return
    project_id = rows[0]["project_id"]
    if project_id is None:  # an SQL execution's: its own history only, not in the stream
        conn.execute(insert(job_events), [{"result": None, "actor": None, **r} for r in rows])
        return
    first = _take_seqs(conn, project_id, len(rows))
    full = [{"result": None, "actor": None, **row, "seq": first + i} for i, row in enumerate(rows)]
    conn.execute(insert(job_events), full)
    outbox.enqueue(conn, [_feed_event(r) for r in full])


def _take_seqs(conn: Connection, project_id: str, n: int) -> int:
    """Reserve ``n`` cursors of the project; returns the first. The bumped row stays locked
    until the caller's transaction ends (PostgreSQL; SQLite has one writer anyway)."""
    dialect = dialect_of(conn)
    stmt = _TAKE_SEQS.get(dialect.name)
    if stmt is None:  # built once per dialect; the values are parameters (compiled once)
        stmt = dialect.insert(event_cursors).values(project_id=bindparam("p"), seq=bindparam("n"))
        stmt = stmt.on_conflict_do_update(
            index_elements=[event_cursors.c.project_id],
            set_={"seq": event_cursors.c.seq + bindparam("n")},
        ).returning(event_cursors.c.seq)
        _TAKE_SEQS[dialect.name] = stmt
    last = int(conn.execute(stmt, {"p": project_id, "n": n}).scalar_one())
    return last - n + 1


_TAKE_SEQS: dict[str, Any] = {}


def _feed_event(row: Any) -> FeedEvent:
    get = row.get if isinstance(row, dict) else row._mapping.get
    return FeedEvent(
        seq=int(get("seq")),
        project_id=get("project_id"),
        cluster_id=get("cluster_id") or "",
        job_id=get("job_id"),
        from_state=get("from_state"),
        to_state=get("to_state"),
        reason=get("reason") or "",
        at_ms=int(get("at_ms")),
        result=get("result"),
    )


def list_feed(
    conn: Connection,
    project_id: str,
    after: int,
    limit: int,
    cluster_id: str | None = None,
) -> list[FeedEvent]:
    """The project's events after cursor ``after``, in cursor order (at most ``limit``),
    only those of ``cluster_id`` if given."""
    conds = [job_events.c.project_id == project_id, job_events.c.seq > after]
    if cluster_id is not None:
        conds.append(job_events.c.cluster_id == cluster_id)
    rows = conn.execute(
        select(job_events).where(*conds).order_by(job_events.c.seq).limit(limit)
    ).all()
    return [_feed_event(r) for r in rows]


def feed_heads(conn: Connection) -> dict[str, int]:
    """The last cursor of every project (a few rows: what a stream's waiters poll)."""
    return {r.project_id: int(r.seq) for r in conn.execute(select(event_cursors)).all()}


def feed_head(conn: Connection, project_id: str) -> int:
    """The last cursor of one project (0: no event yet)."""
    seq = conn.execute(
        select(func.coalesce(func.max(event_cursors.c.seq), 0)).where(
            event_cursors.c.project_id == project_id
        )
    ).scalar_one()
    return int(seq)


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
