"""Read-only queries behind ``/ready`` and ``/metrics``: kept to a few cheap statements."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, case, func, literal, select

from mrs_jobs.domain.states import JobState
from mrs_jobs.store.tables import clusters, job_events, jobs, supervisors

__all__ = [
    "ClusterLimits",
    "JobCount",
    "StartEvent",
    "cluster_limits",
    "heartbeat_ms",
    "job_counts",
    "max_event_id",
    "ping",
    "start_events",
]


@dataclass(frozen=True)
class JobCount:
    project_id: str
    cluster_id: str
    job_type: str
    state: str
    deleted: bool
    count: int


@dataclass(frozen=True)
class ClusterLimits:
    project_id: str
    cluster_id: str
    max_running: int
    max_queued: int


@dataclass(frozen=True)
class StartEvent:
    """A job reaching ACCEPTED (claimed a slot) or RUNNING (application started)."""

    to_state: str
    job_type: str
    at_ms: int
    submitted_ms: int
    started_ms: int


def ping(conn: Connection) -> None:
    conn.execute(select(literal(1))).scalar_one()


def heartbeat_ms(conn: Connection, supervisor_id: str) -> int | None:
    return conn.execute(
        select(supervisors.c.heartbeat_ms).where(supervisors.c.id == supervisor_id)
    ).scalar_one_or_none()


# How SQL executions (``deleted_ms`` negative, store/sql_executions.py) are counted: under this
# job type, not as the SparkSql/HiveSql jobs they run as; they take queue places and slots.
SQL_EXECUTION_TYPE = "SqlExecution"


def job_counts(conn: Connection) -> list[JobCount]:
    """Every job row counted once, by scope, type, state and whether it was batch-deleted."""
    deleted = case((jobs.c.deleted_ms > 0, 1), else_=0).label("deleted")
    job_type = case(
        (jobs.c.deleted_ms < 0, literal(SQL_EXECUTION_TYPE)), else_=jobs.c.job_type
    ).label("job_type")
    rows = conn.execute(
        select(
            jobs.c.project_id,
            jobs.c.cluster_id,
            job_type,
            jobs.c.state,
            deleted,
            func.count().label("n"),
        ).group_by(jobs.c.project_id, jobs.c.cluster_id, job_type, jobs.c.state, deleted)
    ).all()
    return [
        JobCount(r.project_id, r.cluster_id, r.job_type, r.state, bool(r.deleted), int(r.n))
        for r in rows
    ]


def cluster_limits(conn: Connection) -> list[ClusterLimits]:
    rows = conn.execute(
        select(clusters.c.project_id, clusters.c.id, clusters.c.max_running, clusters.c.max_queued)
    ).all()
    return [ClusterLimits(r.project_id, r.id, r.max_running, r.max_queued) for r in rows]


def max_event_id(conn: Connection) -> int:
    return int(conn.execute(select(func.max(job_events.c.id))).scalar_one_or_none() or 0)


def start_events(conn: Connection, after_id: int, upto_id: int, since_ms: int) -> list[StartEvent]:
    """ACCEPTED / RUNNING transitions with ``after_id < id <= upto_id`` at or after ``since_ms``."""
    rows = conn.execute(
        select(
            job_events.c.to_state,
            job_events.c.at_ms,
            jobs.c.job_type,
            jobs.c.submitted_ms,
            jobs.c.started_ms,
        )
        .select_from(job_events.join(jobs, jobs.c.id == job_events.c.job_id))
        .where(
            job_events.c.id > after_id,
            job_events.c.id <= upto_id,
            job_events.c.at_ms >= since_ms,
            job_events.c.to_state.in_([JobState.ACCEPTED.value, JobState.RUNNING.value]),
        )
    ).all()
    return [
        StartEvent(r.to_state, r.job_type, int(r.at_ms), int(r.submitted_ms), int(r.started_ms))
        for r in rows
    ]
