"""The audit trail: one row per submit, kill and batch delete; it outlives the jobs."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, insert, select

from mrs_jobs.store.tables import audit

__all__ = ["audit_row", "list_audit", "record_audit", "record_audit_rows"]


def audit_row(
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
) -> dict[str, Any]:
    """One audit row's values; ``permission``/``decision``: the action the request was
    checked for (the caller's ``action``) and the answer, allow or deny."""
    return {
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
    }


def record_audit_rows(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Several rows of :func:`audit_row` in one statement."""
    if len(rows) == 1:  # values as parameters: the compiled INSERT is reused
        conn.execute(insert(audit), rows[0])
    elif rows:
        conn.execute(insert(audit), rows)


def record_audit(conn: Connection, **row: Any) -> None:
    """One audit row (the keywords of :func:`audit_row`)."""
    record_audit_rows(conn, [audit_row(**row)])


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
