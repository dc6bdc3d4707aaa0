"""The audit trail: one row per submit, kill and batch delete; it outlives the jobs."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, insert, select

from mrs_jobs.store.tables import audit

__all__ = ["list_audit", "record_audit"]


def record_audit(
    conn: Connection,
    *,
    at_ms: int,
    action: str,
    project_id: str,
    cluster_id: str | None,
    credential_id: str | None,
    request_id: str | None,
    detail: dict[str, Any],
    outcome: str,
    permission: str | None = None,
    decision: str | None = None,
) -> None:
    """One audit row; ``permission``/``decision``: the action the request was checked for
    (the caller's ``action``) and the answer, allow or deny."""
    conn.execute(  # values as parameters: the compiled INSERT is reused
        insert(audit),
        {
            "at_ms": at_ms,
            "action": action,
            "project_id": project_id,
            "cluster_id": cluster_id,
            "credential_id": credential_id,
            "request_id": request_id,
            "detail": json.dumps(detail, separators=(",", ":")),
            "outcome": outcome,
            "permission": permission,
            "decision": decision,
        },
    )


def list_audit(
    conn: Connection, *, project_id: str | None = None, action: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    q = select(audit).order_by(audit.c.id.desc()).limit(limit)
    if project_id:
        q = q.where(audit.c.project_id == project_id)
    if action:
        q = q.where(audit.c.action == action)
    out = []
    for row in conn.execute(q):
        d = dict(row._mapping)
        d["detail"] = json.loads(d["detail"])
        out.append(d)
    return out
