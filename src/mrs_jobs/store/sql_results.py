"""The rows a job's SQL statements returned: stored when the job ends, read by the API.

One ``sql_results`` row per statement (its rows as JSON, capped); they go with the job when it
is purged (``store/jobs.purge``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from sqlalchemy import Connection, delete, insert, select

from mrs_jobs.store.tables import sql_results

__all__ = ["load_sql_results", "save_sql_results"]


def load_sql_results(conn: Connection, job_id: str) -> dict[str, list[dict[str, str]]]:
    """The stored rows of each statement of a job, keyed by the statement's index."""
    rows = conn.execute(
        select(sql_results.c.statement, sql_results.c.rows)
        .where(sql_results.c.job_id == job_id)
        .order_by(sql_results.c.statement)
    ).all()
    return {str(r.statement): json.loads(r.rows) for r in rows}


def save_sql_results(
    conn: Connection, job_id: str, results: Mapping[str, list[dict[str, str]]], cap: int
) -> None:
    """Store per-statement rows (at most ``cap`` each), replacing any earlier ones."""
    conn.execute(delete(sql_results).where(sql_results.c.job_id == job_id))
    rows = [
        {"job_id": job_id, "statement": int(index), "rows": json.dumps(list(value)[:cap])}
        for index, value in results.items()
    ]
    if rows:
        conn.execute(insert(sql_results), rows)
