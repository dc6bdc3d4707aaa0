"""SQL executions (MRS ``sql-execution``): ``jobs`` rows the job APIs never show.

An execution is run by the supervisor exactly as a one-statement SparkSql/HiveSql job (claim,
box, Thrift server, kill, restart, its results in ``sql_results``), so it is a ``jobs`` row.
What keeps it out of the job APIs is its ``deleted_ms``: :data:`SQL_EXECUTION` (negative).
Every job API reads ``deleted_ms = 0`` (the list indexes lead with it), the ``job_counts``
triggers count only ``deleted_ms = 0`` rows, a batch delete hides only those, and purges take
``deleted_ms > 0``: so an execution is in no job list, count, total, console or delete, without
a column or a trigger of its own. Claiming (store/supervision.py) takes ``deleted_ms <= 0``.
"""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from mrs_jobs.domain.job import Job
from mrs_jobs.domain.states import JobState
from mrs_jobs.store.jobs import job_from_row
from mrs_jobs.store.tables import jobs

__all__ = ["SQL_EXECUTION", "count_queued", "get_execution"]

#: ``jobs.deleted_ms`` of an SQL execution (< 0: never visible to the job APIs, never purged
#: as a deleted job).
SQL_EXECUTION = -1


def get_execution(conn: Connection, project_id: str, cluster_id: str, sql_id: str) -> Job | None:
    """The execution ``sql_id`` of this project and cluster, else None (another project's is
    indistinguishable from none). By primary key, the scope checked on the row."""
    if "\x00" in sql_id:
        return None  # PostgreSQL refuses a NUL in a query
    row = conn.execute(select(jobs).where(jobs.c.id == sql_id)).first()
    if row is None or row.deleted_ms != SQL_EXECUTION:
        return None
    if row.project_id != project_id or row.cluster_id != cluster_id:
        return None
    return job_from_row(row)


def count_queued(conn: Connection, cluster_id: str) -> int:
    """Executions of a cluster waiting for a running slot (the state index; a few rows)."""
    return int(
        conn.execute(
            select(func.count())
            .select_from(jobs)
            .where(
                jobs.c.state == JobState.SUBMITTED.value,
                jobs.c.cluster_id == cluster_id,
                jobs.c.deleted_ms == SQL_EXECUTION,
            )
        ).scalar_one()
    )
