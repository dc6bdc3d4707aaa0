"""X-Idempotency-Key records for submit (one row per project and key)."""

from __future__ import annotations

from sqlalchemy import Connection, select

from mrs_jobs.store.dialect import dialect_of
from mrs_jobs.store.tables import submit_keys

__all__ = ["claim_key", "find_key"]


def find_key(conn: Connection, project_id: str, key: str) -> tuple[str, str] | None:
    """(request_hash, job_id) recorded for this key, if any."""
    row = conn.execute(
        select(submit_keys.c.request_hash, submit_keys.c.job_id).where(
            submit_keys.c.project_id == project_id, submit_keys.c.idem_key == key
        )
    ).first()
    return (row.request_hash, row.job_id) if row else None


def claim_key(
    conn: Connection, project_id: str, key: str, request_hash: str, job_id: str, at_ms: int
) -> bool:
    """Record the key for a new job; False if another submit holds it already.

    ``ON CONFLICT DO NOTHING`` makes two concurrent submits with one key safe on both
    databases: the loser inserts nothing (on PostgreSQL it waits for the winner's commit).
    """
    stmt = (
        dialect_of(conn)
        .insert(submit_keys)
        .values(
            project_id=project_id,
            idem_key=key,
            request_hash=request_hash,
            job_id=job_id,
            created_ms=at_ms,
        )
        .on_conflict_do_nothing(index_elements=["project_id", "idem_key"])
        .returning(submit_keys.c.job_id)
    )
    # RETURNING, not rowcount: drivers need not report a row count for INSERT.
    return conn.execute(stmt).first() is not None
