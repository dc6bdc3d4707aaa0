"""What a cluster's ended jobs used, summed by user, job type or day: one GROUP BY on ``jobs``.

Counted: jobs of the project and cluster that ended (FINISHED, FAILED, KILLED) with
``finished_ms`` in ``[since, until)`` and are still visible through the API (not batch-deleted,
not an SQL execution). ``ix_jobs_ended`` (cluster_id, finished_ms) finds them without reading
the cluster's other jobs. The same query is the roll-up's total (without a group) and the
counters ``/metrics`` reports (jobs ended after an event cursor).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, case, func, select

from mrs_jobs.domain.states import JobState
from mrs_jobs.store.tables import job_events, jobs

__all__ = ["DAY_MS", "EndedUsage", "UsageRow", "ended_usage", "usage_by"]

DAY_MS = 86_400_000
_ENDED = (JobState.FINISHED.value, JobState.FAILED.value, JobState.KILLED.value)


@dataclass(frozen=True)
class UsageRow:
    """One group: ``key`` is the user name, the job type, or the UTC day (days since the
    epoch). Sums and the maximum leave out jobs whose usage is not known (NULL)."""

    key: str | int
    jobs: int
    measured: int  # jobs whose cpu_seconds is known
    cpu_seconds: float
    peak_memory_mb: int | None  # the largest of the group's jobs
    memory_mb_seconds: float  # per job: peak_memory_mb × its run time (started → finished)


def _memory_time() -> Any:
    """A job's memory over its run, in MB-seconds: its peak held for its whole run time."""
    run_ms = case((jobs.c.started_ms > 0, jobs.c.finished_ms - jobs.c.started_ms), else_=0)
    return jobs.c.peak_memory_mb * run_ms / 1000.0


def usage_by(
    conn: Connection, project_id: str, cluster_id: str, since_ms: int, until_ms: int, group: str
) -> list[UsageRow]:
    """The cluster's ended jobs in ``[since_ms, until_ms)`` summed per ``group`` (one of
    ``domain.usage.GROUPS``), in key order."""
    key = {
        "user": jobs.c.user_name,
        "job_type": jobs.c.job_type,
        "day": jobs.c.finished_ms // DAY_MS,
    }[group].label("key")
    rows = conn.execute(
        select(
            key,
            func.count().label("jobs"),
            func.count(jobs.c.cpu_seconds).label("measured"),
            func.coalesce(func.sum(jobs.c.cpu_seconds), 0.0).label("cpu"),
            func.max(jobs.c.peak_memory_mb).label("peak"),
            func.coalesce(func.sum(_memory_time()), 0.0).label("memory"),
        )
        .where(
            jobs.c.project_id == project_id,
            jobs.c.cluster_id == cluster_id,
            jobs.c.finished_ms >= max(1, since_ms),
            jobs.c.finished_ms < until_ms,
            jobs.c.state.in_(_ENDED),
            jobs.c.deleted_ms == 0,
        )
        .group_by(key)
        .order_by(key)
    ).all()
    return [
        UsageRow(
            key=r.key if group != "day" else int(r.key),
            jobs=int(r.jobs),
            measured=int(r.measured),
            cpu_seconds=float(r.cpu),
            peak_memory_mb=None if r.peak is None else int(r.peak),
            memory_mb_seconds=float(r.memory),
        )
        for r in rows
    ]


@dataclass(frozen=True)
class EndedUsage:
    """What the jobs that ended between two event ids used, per cluster and job type."""

    project_id: str
    cluster_id: str
    job_type: str
    jobs: int
    cpu_seconds: float
    memory_mb_seconds: float


def ended_usage(conn: Connection, after_id: int, upto_id: int, since_ms: int) -> list[EndedUsage]:
    """Jobs whose ending (a transition to FINISHED, FAILED or KILLED) has an event id in
    ``(after_id, upto_id]`` and a time at or after ``since_ms``, summed by scope and job
    type. Their usage is written in the ending's own transaction, so it is there when the
    event is."""
    ended = select(job_events.c.job_id).where(
        job_events.c.id > after_id,
        job_events.c.id <= upto_id,
        job_events.c.at_ms >= since_ms,
        job_events.c.to_state.in_(_ENDED),
    )
    rows = conn.execute(
        select(
            jobs.c.project_id,
            jobs.c.cluster_id,
            jobs.c.job_type,
            func.count().label("jobs"),
            func.coalesce(func.sum(jobs.c.cpu_seconds), 0.0).label("cpu"),
            func.coalesce(func.sum(_memory_time()), 0.0).label("memory"),
        )
        .where(jobs.c.id.in_(ended), jobs.c.deleted_ms >= 0)
        .group_by(jobs.c.project_id, jobs.c.cluster_id, jobs.c.job_type)
    ).all()
    return [
        EndedUsage(
            r.project_id, r.cluster_id, r.job_type, int(r.jobs), float(r.cpu), float(r.memory)
        )
        for r in rows
    ]
