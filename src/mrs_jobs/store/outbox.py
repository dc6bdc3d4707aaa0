"""The webhook outbox: an event's deliveries, written in the event's own transaction.

``enqueue`` is called by ``store/events.record_events`` for every event it writes: each
enabled subscription of the event's project (all its clusters, or the event's one) that asks
for the event's type gets a ``pending`` delivery carrying the body as it will be sent and a
``msg_id`` (the ``webhook-id`` of every attempt). So an event committed is a delivery owed,
and a transaction rolled back owes nothing. The supervisor's dispatcher sends them.
"""

from __future__ import annotations

import json
import uuid

from sqlalchemy import Connection, bindparam, insert, or_, select

from mrs_jobs.domain.events import FeedEvent
from mrs_jobs.store.tables import webhook_deliveries, webhooks

__all__ = ["enqueue", "new_msg_id"]


# Read in every transaction that records events (every submit and state change): built once,
# its values bound (building the expression per call cost more than running it).
_SUBSCRIPTIONS = select(webhooks.c.id, webhooks.c.cluster_id, webhooks.c.events).where(
    webhooks.c.project_id == bindparam("project_id"),
    webhooks.c.enabled.is_(True),
    or_(
        webhooks.c.cluster_id.is_(None),
        webhooks.c.cluster_id.in_(bindparam("clusters", expanding=True)),
    ),
)


def new_msg_id() -> str:
    return "msg_" + uuid.uuid4().hex


def enqueue(conn: Connection, events: list[FeedEvent]) -> int:
    """Queue the deliveries these events (of one project) owe; returns how many."""
    if not events:
        return 0
    params = {
        "project_id": events[0].project_id,
        "clusters": sorted({e.cluster_id for e in events}),
    }
    subs = conn.execute(_SUBSCRIPTIONS, params).all()
    if not subs:
        return 0
    rows = []
    for sub in subs:
        wanted = set(json.loads(sub.events))
        for event in events:
            if event.type not in wanted:
                continue
            if sub.cluster_id is not None and sub.cluster_id != event.cluster_id:
                continue
            rows.append(
                {
                    "msg_id": new_msg_id(),
                    "webhook_id": sub.id,
                    "project_id": event.project_id,
                    "job_id": event.job_id,
                    "event_type": event.type,
                    "seq": event.seq,
                    "payload": json.dumps(event.to_json(), separators=(",", ":")),
                    "state": "pending",
                    "attempts": 0,
                    "next_at_ms": event.at_ms,
                    "created_ms": event.at_ms,
                }
            )
    if rows:
        conn.execute(insert(webhook_deliveries), rows)
    return len(rows)
