"""Webhook subscriptions, the outbox's deliveries and their attempt log.

Deliveries are written with their event (``store/outbox.py``); here they are claimed, and
their attempts recorded. A claim is a lease: the claimed rows' ``next_at_ms`` moves to the
lease's end in the claim's own short transaction, so the HTTP request runs outside any
transaction and another supervisor (``SKIP LOCKED`` on PostgreSQL) does not take them; a
supervisor killed between sending and recording sends again once the lease ran out, with the
same ``msg_id`` (at least once). A delivery is due only when no earlier delivery of the same
subscription and job is still pending, so a receiver gets a job's events in order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Select, and_, delete, exists, func, insert, select, update
from sqlalchemy.orm import aliased

from mrs_jobs.store.dialect import dialect_of
from mrs_jobs.store.tables import jobs, webhook_attempts, webhook_deliveries, webhooks

__all__ = [
    "PAUSED_MS",
    "Attempt",
    "DeliveryRow",
    "Due",
    "Webhook",
    "add_over_duration",
    "add_webhook",
    "any_due",
    "claim_due",
    "delete_webhook",
    "finished_before",
    "get_webhook",
    "list_deliveries",
    "list_webhooks",
    "mark_dead",
    "mark_delivered",
    "oldest_undelivered_ms",
    "over_duration_due",
    "record_attempt",
    "remove_deliveries",
    "reschedule",
    "set_enabled",
]

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"
#: ``next_at_ms`` of a disabled subscription's pending deliveries (9999-12-31).
PAUSED_MS = 253_402_300_799_000
_LIVE = ("ACCEPTED", "RUNNING")
d = webhook_deliveries


@dataclass(frozen=True)
class Webhook:
    id: str
    project_id: str
    cluster_id: str | None
    url: str
    events: list[str]
    secret: str  # sealed
    over_duration_s: int | None
    enabled: bool
    description: str
    created_ms: int


def _webhook(row: Any) -> Webhook:
    m = dict(row._mapping)
    m["events"] = json.loads(m["events"])
    m["enabled"] = bool(m["enabled"])
    return Webhook(**m)


def add_webhook(conn: Connection, wh: Webhook) -> None:
    values = {**wh.__dict__, "events": json.dumps(wh.events)}
    conn.execute(insert(webhooks).values(**values))


def get_webhook(conn: Connection, webhook_id: str) -> Webhook | None:
    row = conn.execute(select(webhooks).where(webhooks.c.id == webhook_id)).first()
    return None if row is None else _webhook(row)


def list_webhooks(conn: Connection, project_id: str | None = None) -> list[Webhook]:
    q = select(webhooks).order_by(webhooks.c.created_ms, webhooks.c.id)
    if project_id is not None:
        q = q.where(webhooks.c.project_id == project_id)
    return [_webhook(r) for r in conn.execute(q)]


def set_enabled(conn: Connection, webhook_id: str, enabled: bool, at_ms: int) -> bool:
    """Enable or disable a subscription. A disabled one's pending deliveries are parked at
    :data:`PAUSED_MS` (out of every claim's index range) and due again at once when enabled."""
    res = conn.execute(update(webhooks).where(webhooks.c.id == webhook_id).values(enabled=enabled))
    pending = and_(d.c.webhook_id == webhook_id, d.c.state == PENDING)
    if enabled:
        conn.execute(update(d).where(pending, d.c.next_at_ms == PAUSED_MS).values(next_at_ms=at_ms))
    else:
        conn.execute(update(d).where(pending).values(next_at_ms=PAUSED_MS))
    return res.rowcount > 0


def delete_webhook(conn: Connection, webhook_id: str) -> bool:
    """Remove a subscription with its deliveries and their attempts."""
    ids = select(d.c.id).where(d.c.webhook_id == webhook_id).scalar_subquery()
    conn.execute(delete(webhook_attempts).where(webhook_attempts.c.delivery_id.in_(ids)))
    conn.execute(delete(d).where(d.c.webhook_id == webhook_id))
    return conn.execute(delete(webhooks).where(webhooks.c.id == webhook_id)).rowcount > 0


@dataclass(frozen=True)
class Due:
    """A claimed delivery, with what sending it needs."""

    id: int
    msg_id: str
    webhook_id: str
    job_id: str
    event_type: str
    payload: str
    attempts: int
    created_ms: int
    url: str
    secret: str  # sealed


def _due(now_ms: int) -> Select[Any]:
    """Pending deliveries of enabled subscriptions whose time has come and whose job has no
    earlier pending delivery to the same subscription, oldest first."""
    earlier = aliased(d)
    blocked = exists().where(
        earlier.c.webhook_id == d.c.webhook_id,
        earlier.c.job_id == d.c.job_id,
        earlier.c.id < d.c.id,
        earlier.c.state == PENDING,
    )
    return (
        select(
            d.c.id,
            d.c.msg_id,
            d.c.webhook_id,
            d.c.job_id,
            d.c.event_type,
            d.c.payload,
            d.c.attempts,
            d.c.created_ms,
            webhooks.c.url,
            webhooks.c.secret,
        )
        .join(webhooks, webhooks.c.id == d.c.webhook_id)
        .where(d.c.state == PENDING, d.c.next_at_ms <= now_ms, webhooks.c.enabled.is_(True))
        .where(~blocked)
        .order_by(d.c.next_at_ms, d.c.id)
    )


def any_due(conn: Connection, now_ms: int) -> bool:
    """Whether a claim would find something (a read, before taking the write lock)."""
    return conn.execute(_due(now_ms).limit(1)).first() is not None


def claim_due(conn: Connection, now_ms: int, lease_until_ms: int, limit: int) -> list[Due]:
    """Take up to ``limit`` due deliveries (:func:`_due`) until ``lease_until_ms``."""
    q = _due(now_ms).limit(limit)
    if dialect_of(conn).skip_locked:
        q = q.with_for_update(skip_locked=True, of=d)
    rows = [Due(**r._mapping) for r in conn.execute(q)]
    if rows:
        conn.execute(
            update(d)
            .where(d.c.id.in_([r.id for r in rows]), d.c.state == PENDING)
            .values(next_at_ms=lease_until_ms)
        )
    return rows


def record_attempt(
    conn: Connection,
    delivery_id: int,
    at_ms: int,
    status: int | None,
    error: str | None,
    duration_ms: int,
) -> None:
    conn.execute(
        insert(webhook_attempts).values(
            delivery_id=delivery_id,
            at_ms=at_ms,
            status=status,
            error=error,
            duration_ms=duration_ms,
        )
    )


def mark_delivered(conn: Connection, delivery_id: int, at_ms: int, status: int) -> bool:
    return _finish(conn, delivery_id, DELIVERED, at_ms, status, None)


def mark_dead(
    conn: Connection, delivery_id: int, at_ms: int, status: int | None, error: str | None
) -> bool:
    return _finish(conn, delivery_id, DEAD, at_ms, status, error)


def _finish(
    conn: Connection,
    delivery_id: int,
    state: str,
    at_ms: int,
    status: int | None,
    error: str | None,
) -> bool:
    res = conn.execute(
        update(d)
        .where(d.c.id == delivery_id, d.c.state == PENDING)
        .values(
            state=state,
            attempts=d.c.attempts + 1,
            finished_ms=at_ms,
            last_status=status,
            last_error=error,
        )
    )
    return res.rowcount > 0


def reschedule(
    conn: Connection,
    due: Due,
    next_at_ms: int,
    status: int | None,
    error: str | None,
) -> bool:
    """Count a failed attempt and wait until ``next_at_ms``; the job's later deliveries to the
    same subscription wait as long (they could not go before it anyway), so during a long
    outage a claim does not read past them."""
    res = conn.execute(
        update(d)
        .where(d.c.id == due.id, d.c.state == PENDING)
        .values(
            attempts=d.c.attempts + 1, next_at_ms=next_at_ms, last_status=status, last_error=error
        )
    )
    conn.execute(
        update(d)
        .where(
            d.c.webhook_id == due.webhook_id,
            d.c.job_id == due.job_id,
            d.c.id > due.id,
            d.c.state == PENDING,
            d.c.next_at_ms < next_at_ms,
        )
        .values(next_at_ms=next_at_ms)
    )
    return res.rowcount > 0


@dataclass(frozen=True)
class Attempt:
    at_ms: int
    status: int | None
    error: str | None
    duration_ms: int


@dataclass
class DeliveryRow:
    id: int
    msg_id: str
    webhook_id: str
    job_id: str
    event_type: str
    seq: int | None
    state: str
    attempts: int
    next_at_ms: int
    created_ms: int
    finished_ms: int | None
    last_status: int | None
    last_error: str | None
    log: list[Attempt] = field(default_factory=list)


def list_deliveries(
    conn: Connection,
    *,
    webhook_id: str | None = None,
    state: str | None = None,
    job_id: str | None = None,
    limit: int = 100,
) -> list[DeliveryRow]:
    """Deliveries, newest first, each with its attempts (oldest first)."""
    cols = [c for c in d.c if c.name not in ("payload", "project_id")]
    q = select(*cols).order_by(d.c.id.desc()).limit(limit)
    if webhook_id is not None:
        q = q.where(d.c.webhook_id == webhook_id)
    if state is not None:
        q = q.where(d.c.state == state)
    if job_id is not None:
        q = q.where(d.c.job_id == job_id)
    rows = [DeliveryRow(**r._mapping) for r in conn.execute(q)]
    by_id = {r.id: r for r in rows}
    if by_id:
        a = webhook_attempts.c
        for r in conn.execute(
            select(a.delivery_id, a.at_ms, a.status, a.error, a.duration_ms)
            .where(a.delivery_id.in_(list(by_id)))
            .order_by(a.id)
        ):
            by_id[r.delivery_id].log.append(Attempt(r.at_ms, r.status, r.error, r.duration_ms))
    return rows


def oldest_undelivered_ms(conn: Connection) -> int | None:
    """When the oldest pending delivery was created (None: nothing pending)."""
    return conn.execute(select(func.min(d.c.created_ms)).where(d.c.state == PENDING)).scalar()


def finished_before(conn: Connection, before_ms: int, limit: int) -> list[int]:
    """Up to ``limit`` deliveries delivered or dead before ``before_ms`` (a read)."""
    q = (
        select(d.c.id)
        .where(d.c.state.in_([DELIVERED, DEAD]), d.c.finished_ms < before_ms)
        .limit(limit)
    )
    return list(conn.execute(q).scalars())


def remove_deliveries(conn: Connection, ids: list[int]) -> int:
    """Remove these deliveries with their attempts."""
    if not ids:
        return 0
    conn.execute(delete(webhook_attempts).where(webhook_attempts.c.delivery_id.in_(ids)))
    return conn.execute(delete(d).where(d.c.id.in_(ids))).rowcount


def over_duration_due(
    conn: Connection, now_ms: int, window_ms: int, limit: int
) -> list[tuple[Webhook, dict[str, Any]]]:
    """(subscription, job) pairs owed a ``job.over_duration``: launched jobs that crossed the
    subscription's ``over_duration_s`` within ``window_ms`` (older crossings had theirs, kept
    that long) and have none yet."""
    subs = [
        w
        for w in list_webhooks(conn)
        if w.enabled and w.over_duration_s and "job.over_duration" in w.events
    ]
    out: list[tuple[Webhook, dict[str, Any]]] = []
    for sub in subs:
        crossed = jobs.c.started_ms + sub.over_duration_s * 1000  # type: ignore[operator]
        had = exists().where(
            d.c.webhook_id == sub.id, d.c.job_id == jobs.c.id, d.c.event_type == "job.over_duration"
        )
        q = (
            select(jobs.c.id, jobs.c.project_id, jobs.c.cluster_id, jobs.c.state, jobs.c.started_ms)
            .where(
                jobs.c.project_id == sub.project_id,
                jobs.c.state.in_(_LIVE),
                jobs.c.deleted_ms == 0,
                jobs.c.started_ms > 0,
                crossed <= now_ms,
                crossed > now_ms - window_ms,
                ~had,
            )
            .limit(limit)
        )
        if sub.cluster_id is not None:
            q = q.where(jobs.c.cluster_id == sub.cluster_id)
        out.extend((sub, dict(r._mapping)) for r in conn.execute(q))
    return out


def add_over_duration(conn: Connection, rows: list[dict[str, Any]]) -> int:
    """Queue ``job.over_duration`` deliveries; one with the same ``msg_id`` is kept as it is."""
    if not rows:
        return 0
    stmt = (
        dialect_of(conn)
        .insert(d)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["msg_id"])
        .returning(d.c.id)
    )
    return len(conn.execute(stmt).all())
