"""Queries of the supervisor: claiming, heartbeats, kills pending, deleted jobs to purge."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    delete,
    func,
    insert,
    literal_column,
    or_,
    select,
    text,
    union,
    update,
)

from mrs_jobs.domain.job import Job
from mrs_jobs.domain.states import LIVE_STATES, JobResult, JobState
from mrs_jobs.store.dialect import dialect_of
from mrs_jobs.store.jobs import job_from_row, transition
from mrs_jobs.store.tables import clusters, job_counts, jobs, sql_results, supervisors
from mrs_jobs.store.tenants import lock_cluster

__all__ = [
    "claim",
    "deleted_jobs",
    "heartbeat",
    "is_live",
    "live_supervisors",
    "requeue",
    "retry",
    "kill_pending",
    "live_types_by_cluster",
    "live_owned",
    "live_runs",
    "queued_clusters",
    "raise_progress",
    "set_fields",
    "adopt",
    "orphaned_jobs",
]

_LAUNCHED = [JobState.ACCEPTED.value, JobState.RUNNING.value]


def heartbeat(conn: Connection, sup_id: str, host: str, pid: int, at_ms: int) -> None:
    res = conn.execute(
        update(supervisors)
        .where(supervisors.c.id == sup_id)
        .values(heartbeat_ms=at_ms, host=host, pid=pid)
    )
    if res.rowcount == 0:
        conn.execute(
            insert(supervisors).values(
                id=sup_id, host=host, pid=pid, started_ms=at_ms, heartbeat_ms=at_ms
            )
        )


def orphaned_jobs(
    conn: Connection, sup_id: str, stale_before_ms: int
) -> list[tuple[Job, str | None]]:
    """Launched jobs of other supervisors that stopped heartbeating, with the owner's host."""
    owner = supervisors.alias("owner")
    rows = conn.execute(
        select(jobs, owner.c.host.label("owner_host"))
        .select_from(jobs.outerjoin(owner, jobs.c.owner == owner.c.id))
        .where(
            jobs.c.state.in_(_LAUNCHED),
            or_(jobs.c.owner.is_(None), jobs.c.owner != sup_id),
            or_(owner.c.id.is_(None), owner.c.heartbeat_ms < stale_before_ms),
        )
    ).all()
    return [(job_from_row(r), r.owner_host) for r in rows]


def adopt(conn: Connection, job_id: str, old_owner: str | None, sup_id: str) -> bool:
    """Take a job over from a gone owner; False if somebody else was quicker."""
    cond = jobs.c.owner.is_(None) if old_owner is None else jobs.c.owner == old_owner
    res = conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id, cond, jobs.c.state.in_(_LAUNCHED))
        .values(owner=sup_id)
    )
    return res.rowcount == 1


def live_owned(conn: Connection, sup_id: str) -> list[Job]:
    rows = conn.execute(
        select(jobs).where(jobs.c.state.in_(_LAUNCHED), jobs.c.owner == sup_id)
    ).all()
    return [job_from_row(r) for r in rows]


def is_live(conn: Connection, job_id: str) -> bool:
    """Whether a job is launched and not ended, whoever owns it."""
    row = conn.execute(
        select(jobs.c.id).where(jobs.c.id == job_id, jobs.c.state.in_(_LAUNCHED))
    ).first()
    return row is not None


def live_runs(conn: Connection, job_ids: list[str]) -> dict[str, tuple[int, str | None]]:
    """Of ``job_ids``, the launched, not ended jobs: id -> (attempt, its owner's host). Read
    500 ids a statement (SQLite's bound-parameter limit of older builds)."""
    owner = supervisors.alias("owner")
    found: dict[str, tuple[int, str | None]] = {}
    for start in range(0, len(job_ids), 500):
        rows = conn.execute(
            select(jobs.c.id, jobs.c.attempt, owner.c.host)
            .select_from(jobs.outerjoin(owner, jobs.c.owner == owner.c.id))
            .where(jobs.c.id.in_(job_ids[start : start + 500]), jobs.c.state.in_(_LAUNCHED))
        ).all()
        found.update({r.id: (int(r.attempt or 1), r.host) for r in rows})
    return found


def live_supervisors(conn: Connection, since_ms: int) -> set[str]:
    """Ids of supervisors that heartbeated at or after ``since_ms``."""
    rows = conn.execute(select(supervisors.c.id).where(supervisors.c.heartbeat_ms >= since_ms))
    return {r.id for r in rows}


def requeue(conn: Connection, job_id: str, sup_id: str) -> bool:
    """Give a claimed job whose engine never started back to the queue (owner, start cleared)."""
    return (
        transition(
            conn,
            job_id,
            JobState.SUBMITTED,
            reason="back to the queue: the engine was never started",
            values={"owner": None, "started_ms": 0, "workdir": None, "pid": None},
            only_from=[JobState.ACCEPTED],
            where=and_(jobs.c.owner == sup_id, jobs.c.pid.is_(None)),
            actor=f"supervisor {sup_id}",
        )
        is not None
    )


def retry(
    conn: Connection,
    job: Job,
    *,
    retry_at_ms: int,
    reason: str,
    diagnostics: str,
    actor: str,
    usage: dict[str, object] | None = None,
) -> bool:
    """Queue a job whose attempt failed again for its next attempt (mrs.job.retries); False
    when that was refused: a kill or delete was asked meanwhile, another writer moved or took
    the job, or this attempt was already settled. ``usage`` (``cpu_seconds``,
    ``peak_memory_mb``, the attempts' totals so far) is recorded with it.

    The run's traces go with it (owner, pid, application, progress, deadline, result, any SQL
    rows), so the next attempt starts as a fresh run and a stale one cannot be taken for it;
    its directory stays (its logs go on with the next attempt's).
    """
    owner = jobs.c.owner.is_(None) if job.owner is None else jobs.c.owner == job.owner
    moved = transition(
        conn,
        job.id,
        JobState.SUBMITTED,
        reason=reason,
        values={
            "attempt": job.attempt + 1,
            "retry_at_ms": retry_at_ms,
            "reason": diagnostics,
            "result": JobResult.UNDEFINED.value,
            "owner": None,
            "pid": None,
            "pid_start": None,
            "started_ms": 0,
            "finished_ms": 0,
            "app_id": "",
            "tracking_url": "",
            "progress": 0.0,
            "deadline_ms": 0,
            "kill_sent_ms": 0,
            **(usage or {}),
        },
        only_from=[JobState.ACCEPTED, JobState.RUNNING],
        where=and_(
            owner,
            jobs.c.attempt == job.attempt,
            jobs.c.kill_requested_ms == 0,
            jobs.c.deleted_ms == 0,  # deleted, or an SQL execution (< 0): never retried
        ),
        actor=actor,
    )
    if moved is None:
        return False
    conn.execute(delete(sql_results).where(sql_results.c.job_id == job.id))
    return True


def kill_pending(conn: Connection, sup_id: str, now_ms: int) -> list[Job]:
    """Launched jobs of this supervisor to stop: killed, deleted, or past their deadline."""
    rows = conn.execute(
        select(jobs).where(
            jobs.c.state.in_(_LAUNCHED),
            jobs.c.owner == sup_id,
            or_(
                jobs.c.kill_requested_ms > 0,
                jobs.c.deleted_ms > 0,
                and_(jobs.c.deadline_ms > 0, jobs.c.deadline_ms <= now_ms),
            ),
        )
    ).all()
    return [job_from_row(r) for r in rows]


def deleted_jobs(conn: Connection, limit: int = 500) -> list[Job]:
    rows = conn.execute(
        select(jobs).where(jobs.c.deleted_ms > 0).order_by(jobs.c.deleted_ms).limit(limit)
    ).all()
    return [job_from_row(r) for r in rows]


def queued_clusters(conn: Connection, now_ms: int | None = None) -> list[tuple[str, str]]:
    """(project_id, cluster_id) pairs with jobs waiting in SUBMITTED *and* a free running slot.

    The supervisor opens a write transaction per pair to claim, so a full cluster must not be
    listed: each pass (and each wake after a submit) would otherwise take the write lock for
    nothing. Queued jobs come from ``job_counts`` (a few rows, not the queue); launched jobs
    are counted as :func:`claim` counts them, a deleted one still holding its slot. With
    ``now_ms``, a cluster whose queued jobs all wait out a retry's backoff is not listed either
    (an EXISTS on the state index: its first queued row is due unless it is a retry).
    """
    # SQL executions (deleted_ms < 0, store/sql_executions.py) are not in job_counts: their
    # queued rows come from the state index.
    queued = union(
        select(job_counts.c.project_id, job_counts.c.cluster_id).where(
            job_counts.c.state == JobState.SUBMITTED.value, job_counts.c.n > 0
        ),
        select(jobs.c.project_id, jobs.c.cluster_id).where(
            jobs.c.state == JobState.SUBMITTED.value, jobs.c.deleted_ms < 0
        ),
    ).subquery()
    launched = (
        select(func.count())
        .select_from(jobs)
        .where(jobs.c.cluster_id == clusters.c.id, jobs.c.state.in_(_LAUNCHED))
        .scalar_subquery()
    )
    q = (
        select(clusters.c.project_id, clusters.c.id)
        .join(
            queued,
            and_(
                queued.c.cluster_id == clusters.c.id, queued.c.project_id == clusters.c.project_id
            ),
        )
        .where(clusters.c.max_running > launched)
    )
    if now_ms is not None:
        due = select(jobs.c.id).where(
            jobs.c.state == JobState.SUBMITTED.value,
            jobs.c.cluster_id == clusters.c.id,
            jobs.c.retry_at_ms <= now_ms,
        )
        q = q.where(due.exists())
    rows = conn.execute(q).all()
    return [(r.project_id, r.id) for r in rows]


def claim(
    conn: Connection,
    project_id: str,
    cluster_id: str,
    sup_id: str,
    at_ms: int,
    workdir_of: Any,
    skip_locked: bool,
) -> list[Job]:
    """Move up to the cluster's free slots of queued jobs to ACCEPTED, owned by ``sup_id``.

    The cluster row is locked for the transaction (PostgreSQL), so two supervisors cannot
    both see the same free slot; the guarded transition stops a job being claimed twice.
    """
    cluster = lock_cluster(conn, project_id, cluster_id)
    if cluster is None:
        return []
    running = conn.execute(
        select(func.count())
        .select_from(jobs)
        .where(jobs.c.cluster_id == cluster_id, jobs.c.state.in_(_LAUNCHED))
    ).scalar_one()
    free = cluster.max_running - int(running)
    if free <= 0:
        return []
    q = (
        select(jobs.c.id)
        .where(
            and_(
                jobs.c.cluster_id == cluster_id,
                jobs.c.state == JobState.SUBMITTED.value,
                jobs.c.deleted_ms <= 0,  # < 0: an SQL execution (store/sql_executions.py)
                jobs.c.kill_requested_ms == 0,
                jobs.c.retry_at_ms <= at_ms,  # a retry waits out its backoff in the queue
            )
        )
        .order_by(jobs.c.submitted_ms, jobs.c.id)
        .limit(free)
    )
    if skip_locked:
        q = q.with_for_update(skip_locked=True)
    claimed: list[Job] = []
    for job_id in conn.execute(q).scalars().all():
        ok = transition(
            conn,
            job_id,
            JobState.ACCEPTED,
            reason=f"launching on {sup_id}",
            values={"owner": sup_id, "started_ms": at_ms, "workdir": str(workdir_of(job_id))},
            where=and_(jobs.c.deleted_ms <= 0, jobs.c.kill_requested_ms == 0),
            actor=f"supervisor {sup_id}",
        )
        if ok:
            row = conn.execute(select(jobs).where(jobs.c.id == job_id)).first()
            claimed.append(job_from_row(row))  # type: ignore[arg-type]
    return claimed


def set_fields(conn: Connection, job_id: str, **values: Any) -> None:
    conn.execute(update(jobs).where(jobs.c.id == job_id).values(**values))


def raise_progress(conn: Connection, job_id: str, progress: float) -> bool:
    """Raise a running job's progress, never lower it: the guard is in the UPDATE itself
    (``progress < :new`` and a live state), so two writers reading an older value cannot lower
    it either, nor can a late observation touch a job that has ended. True when it rose."""
    res = conn.execute(
        update(jobs)
        .where(
            jobs.c.id == job_id,
            jobs.c.progress < progress,
            jobs.c.state.in_(_LAUNCHED),
        )
        .values(progress=progress)
    )
    return res.rowcount > 0


def live_types_by_cluster(conn: Connection) -> dict[str, set[str]]:
    """cluster_id -> job types of its live (not ended) jobs.

    Visible jobs come from ``job_counts`` (a few rows per cluster, kept by triggers), never
    from the jobs: reading every queued job's type cost 20-60 ms with 16k queued. Deleted jobs
    still live (their kill pending) are read through the partial index of jobs awaiting purge.
    """
    live = [s.value for s in LIVE_STATES]
    visible = conn.execute(
        select(job_counts.c.cluster_id, job_counts.c.job_type)
        .where(job_counts.c.state.in_(live), job_counts.c.n > 0)
        .distinct()
    ).all()
    if dialect_of(conn).is_sqlite:
        # Without statistics SQLite would take the state index and read every queued job; the
        # partial index holds only jobs awaiting purge (its WHERE must be matched literally).
        hidden_q = (
            select(literal_column("cluster_id"), literal_column("job_type"))
            .select_from(text("jobs INDEXED BY ix_jobs_deleted"))
            .where(text("deleted_ms > 0"), literal_column("state").in_(live))
        )
    else:
        hidden_q = select(jobs.c.cluster_id, jobs.c.job_type).where(
            jobs.c.deleted_ms > 0, jobs.c.state.in_(live)
        )
    hidden = conn.execute(hidden_q.distinct()).all()
    out: dict[str, set[str]] = {}
    for r in (*visible, *hidden):
        out.setdefault(r.cluster_id, set()).add(r.job_type)
    return out
