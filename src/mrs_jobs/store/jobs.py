"""Job queries used by the services. Every transition is a guarded UPDATE.

All reads for the API are scoped by project *and* cluster and skip batch-deleted jobs, so a
job of another project is indistinguishable from one that does not exist.

Secret property values and sensitive (``@``) arguments are stored sealed (services/jobs.py)
and replaced by the mask when the job ends: :func:`transition` to an end state does it in the
same UPDATE.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    and_,
    asc,
    bindparam,
    delete,
    desc,
    func,
    insert,
    select,
    update,
)

from mrs_jobs.domain.job import Job
from mrs_jobs.domain.jobtypes import JobType
from mrs_jobs.domain.render import ARGUMENT_MASK, MASK, is_secret_key, is_sensitive_argument
from mrs_jobs.domain.states import (
    LIVE_STATES,
    ON_REQUEST_ONLY,
    TERMINAL_STATES,
    JobResult,
    JobState,
    sources_of,
)
from mrs_jobs.domain.validation import ListQuery
from mrs_jobs.store.dialect import dialect_of
from mrs_jobs.store.events import record_event
from mrs_jobs.store.tables import job_counts, job_events, jobs, sql_results

__all__ = [
    "VISIBLE_ONE",
    "count_states",
    "find_visible_ids",
    "get_job",
    "get_visible",
    "hide_visible",
    "insert_job",
    "insert_jobs",
    "job_from_row",
    "list_visible",
    "mark_deleted",
    "masked_arguments",
    "masked_properties",
    "now_ms",
    "purge",
    "request_kill",
    "scrub_secrets",
    "transition",
]


_LIVE_VALUES = [s.value for s in LIVE_STATES]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


#: Columns copied to the Job as they are (the rest are decoded in :func:`job_from_row`).
_PLAIN_COLUMNS = (
    "id",
    "project_id",
    "cluster_id",
    "job_name",
    "user_name",
    "queue",
    "progress",
    "submitted_ms",
    "started_ms",
    "finished_ms",
    "launcher_id",
    "app_id",
    "tracking_url",
    "reason",
    "deleted_ms",
    "kill_requested_ms",
    "kill_requested_by",
    "kill_sent_ms",
    "owner",
    "pid",
    "pid_start",
    "workdir",
    "deadline_ms",
    "attempt",
    "retry_at_ms",
    "cpu_seconds",
    "peak_memory_mb",
)


def job_from_row(row: Row[Any] | Mapping[str, Any]) -> Job:
    """A ``jobs`` row as the domain's Job: state, type and result as their enums, arguments
    and properties decoded."""
    m = row._mapping if isinstance(row, Row) else row
    return Job(
        **{name: m[name] for name in _PLAIN_COLUMNS},
        job_type=JobType(m["job_type"]),
        state=JobState(m["state"]),
        result=JobResult(m["result"]),
        arguments=json.loads(m["arguments"]),
        properties=json.loads(m["properties"]),
    )


def insert_job(conn: Connection, values: Mapping[str, Any]) -> None:
    # Values as parameters, not in the statement: SQLAlchemy then reuses the compiled INSERT
    # instead of building a cache key over every value (half of a submit's own CPU).
    conn.execute(insert(jobs), dict(values))


def insert_jobs(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Complete ``jobs`` rows in one statement (one row: as :func:`insert_job`)."""
    if len(rows) == 1:
        insert_job(conn, rows[0])
    elif rows:
        conn.execute(insert(jobs), [dict(v) for v in rows])


def transition(
    conn: Connection,
    job_id: str,
    target: JobState,
    *,
    reason: str = "",
    values: Mapping[str, Any] | None = None,
    only_from: Iterable[JobState] | None = None,
    where: Any = None,
    actor: str | None = None,
) -> JobState | None:
    """Move a job to ``target`` if its state allows it; returns the previous state or None.

    The guard is in the UPDATE itself, so two writers racing on one job cannot both win. The
    previous state is read inside the same write transaction, after the lock is held. A job
    entering an end state loses its secret values in the same UPDATE (see :func:`scrub_secrets`):
    whoever ends it (supervisor, kill before launch, take-over), nothing sealed outlives it.
    """
    allowed = set(sources_of(target))
    if only_from is not None:
        allowed &= set(only_from)
    else:
        allowed -= ON_REQUEST_ONLY.get(target, frozenset())
    if not allowed:
        return None
    row = conn.execute(
        select(
            jobs.c.state,
            jobs.c.properties,
            jobs.c.arguments,
            jobs.c.project_id,
            jobs.c.cluster_id,
            jobs.c.deleted_ms,
        )
        .where(jobs.c.id == job_id)
        .with_for_update()
    ).first()
    if row is None or row.state not in allowed:
        return None
    prev = JobState(row.state)
    cond = and_(jobs.c.id == job_id, jobs.c.state.in_([s.value for s in allowed]))
    if where is not None:
        cond = and_(cond, where)
    changes = dict(values or {})
    if target in TERMINAL_STATES:
        masked = masked_properties(row.properties)
        if masked is not None:
            changes["properties"] = masked
        masked = masked_arguments(row.arguments)
        if masked is not None:
            changes["arguments"] = masked
    res = conn.execute(update(jobs).where(cond).values(state=target.value, **changes))
    if res.rowcount != 1:
        return None
    record_event(
        conn,
        job_id,
        prev.value,
        target.value,
        reason,
        now_ms(),
        actor,
        project_id=row.project_id if row.deleted_ms >= 0 else None,  # < 0: an SQL execution
        cluster_id=row.cluster_id,
        result=changes.get("result") if target is JobState.FINISHED else None,
    )
    return prev


def masked_properties(stored: str) -> str | None:
    """``stored`` (a properties column) with every secret value replaced by the mask; None
    when there is nothing to replace (or the text is not a JSON object)."""
    try:
        props = json.loads(stored)
    except ValueError:
        return None
    if not isinstance(props, dict):
        return None
    if all(v == MASK for k, v in props.items() if is_secret_key(k)):
        return None
    return json.dumps({k: MASK if is_secret_key(k) else v for k, v in props.items()})


def masked_arguments(stored: str) -> str | None:
    """``stored`` (an arguments column) with every sensitive argument (``@``, sealed or not)
    replaced by ``@`` and the mask; None when there is nothing to replace."""
    try:
        args = json.loads(stored)
    except ValueError:
        return None
    if not isinstance(args, list):
        return None
    masked = [ARGUMENT_MASK if isinstance(a, str) and is_sensitive_argument(a) else a for a in args]
    return None if masked == args else json.dumps(masked)


def scrub_secrets(conn: Connection, job_id: str) -> bool:
    """Replace the secret values and sensitive arguments of an ended job by the mask (sealed
    values, and plain ones of rows stored before values were sealed); False if there was
    nothing to replace.

    :func:`transition` does this for every job it ends; this is for rows ended before."""
    row = conn.execute(
        select(jobs.c.properties, jobs.c.arguments)
        .where(jobs.c.id == job_id, jobs.c.state.in_([s.value for s in TERMINAL_STATES]))
        .with_for_update()
    ).first()
    if row is None:
        return False
    changes = {}
    masked = masked_properties(row.properties)
    if masked is not None:
        changes["properties"] = masked
    masked = masked_arguments(row.arguments)
    if masked is not None:
        changes["arguments"] = masked
    if not changes:
        return False
    res = conn.execute(
        update(jobs)
        .where(
            jobs.c.id == job_id,
            jobs.c.properties == row.properties,
            jobs.c.arguments == row.arguments,
        )
        .values(**changes)
    )
    return res.rowcount == 1


def _visible(project_id: str, cluster_id: str) -> Any:
    return and_(
        jobs.c.project_id == project_id, jobs.c.cluster_id == cluster_id, jobs.c.deleted_ms == 0
    )


# The two lookups every show and every supervisor step make, built once: building the
# expression per call cost more than running it (bench/README.md, "Issue 21").
VISIBLE_ONE = select(jobs).where(
    jobs.c.project_id == bindparam("project_id"),
    jobs.c.cluster_id == bindparam("cluster_id"),
    jobs.c.deleted_ms == 0,
    jobs.c.id == bindparam("job_id"),
)
_ONE = select(jobs).where(jobs.c.id == bindparam("job_id"))


def get_visible(conn: Connection, project_id: str, cluster_id: str, job_id: str) -> Job | None:
    if "\x00" in job_id:
        return None  # no job id has a NUL, and PostgreSQL refuses one in a query (a 500)
    params = {"project_id": project_id, "cluster_id": cluster_id, "job_id": job_id}
    row = conn.execute(VISIBLE_ONE, params).first()
    return job_from_row(row) if row else None


def get_job(conn: Connection, job_id: str) -> Job | None:
    row = conn.execute(_ONE, {"job_id": job_id}).first()
    return job_from_row(row) if row else None


def list_visible(
    conn: Connection, project_id: str, cluster_id: str, q: ListQuery
) -> tuple[int, list[Job]]:
    conds = [_visible(project_id, cluster_id)]
    for column, value in (
        (jobs.c.job_name, q.job_name),
        (jobs.c.id, q.job_id),
        (jobs.c.user_name, q.user),
        (jobs.c.queue, q.queue),
        (jobs.c.job_type, q.job_type),
        (jobs.c.state, q.job_state),
        (jobs.c.result, q.job_result),
    ):
        if value is not None:
            conds.append(column == value)
    if q.job_name_contains is not None:
        # A scan of the scope's rows (the scope index leads), literal: % and _ are escaped.
        conds.append(jobs.c.job_name.icontains(q.job_name_contains, autoescape=True))
    if q.submitted_time_begin is not None:
        conds.append(jobs.c.submitted_ms >= q.submitted_time_begin)
    if q.submitted_time_end is not None:
        conds.append(jobs.c.submitted_ms <= q.submitted_time_end)
    where = and_(*conds)
    if _counted(q):
        total = _sum_counts(conn, project_id, cluster_id, q.job_state, q.job_type)
    else:
        total = conn.execute(select(func.count()).select_from(jobs).where(where)).scalar_one()
    order = asc if q.ascending else desc
    rows = conn.execute(
        select(jobs)
        .where(where)
        .order_by(order(jobs.c.submitted_ms), order(jobs.c.id))
        .limit(q.limit)
        .offset((q.page - 1) * q.limit)
    ).all()
    return int(total), [job_from_row(r) for r in rows]


_CHUNK = 500  # ids per statement on SQLite (bound-parameter limit of older builds)


def _counted(q: ListQuery) -> bool:
    """Whether ``job_counts`` answers this query's total (no filter, or state and/or type)."""
    return (
        q.job_name is None
        and q.job_name_contains is None
        and q.job_id is None
        and q.user is None
        and q.queue is None
        and q.job_result is None
        and q.submitted_time_begin is None
        and q.submitted_time_end is None
    )


def _sum_counts(
    conn: Connection,
    project_id: str,
    cluster_id: str,
    state: str | None,
    job_type: str | None,
) -> int:
    """Visible jobs of a scope from ``job_counts`` (a few rows, never the jobs)."""
    q = select(func.coalesce(func.sum(job_counts.c.n), 0)).where(
        job_counts.c.cluster_id == cluster_id, job_counts.c.project_id == project_id
    )
    if state is not None:
        q = q.where(job_counts.c.state == state)
    if job_type is not None:
        q = q.where(job_counts.c.job_type == job_type)
    return int(conn.execute(q).scalar_one())


def find_visible_ids(
    conn: Connection, project_id: str, cluster_id: str, ids: list[str], *, lock: bool = False
) -> dict[str, JobState]:
    """id -> state for those of ``ids`` that are visible jobs of this project and cluster.

    Looked up by primary key alone, the scope checked here: given ``project_id = ? AND
    cluster_id = ?`` SQLite (no statistics) walks a scope index over the whole cluster instead.
    ``lock`` holds the rows until commit (PostgreSQL), taken in id order so two writers
    locking overlapping sets cannot deadlock; a row another writer has just hidden is
    re-read after its commit and left out, so the caller sees what is really missing.
    """
    wanted = sorted({i for i in ids if "\x00" not in i})  # NUL: no such job, and PG refuses it
    found: dict[str, JobState] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        q = select(
            jobs.c.id, jobs.c.state, jobs.c.project_id, jobs.c.cluster_id, jobs.c.deleted_ms
        ).where(jobs.c.id.in_(chunk))
        if lock:
            q = q.order_by(jobs.c.id).with_for_update()
        for row in conn.execute(q):
            if row.project_id == project_id and row.cluster_id == cluster_id:
                if row.deleted_ms == 0:
                    found[row.id] = JobState(row.state)
    return found


def mark_deleted(conn: Connection, ids: list[str], at_ms: int) -> int:
    """Hide jobs from every API at once; the supervisor kills and purges them. Returns rows.

    By primary key only: the caller has just verified (and on PostgreSQL locked) the rows with
    :func:`find_visible_ids` in this transaction.
    """
    total = 0
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        res = conn.execute(
            update(jobs)
            .where(jobs.c.id.in_(chunk), jobs.c.deleted_ms == 0)
            .values(deleted_ms=at_ms)
        )
        total += res.rowcount
    return total


def hide_visible(
    conn: Connection, project_id: str, cluster_id: str, ids: list[str], at_ms: int
) -> dict[str, JobState]:
    """Hide those of ``ids`` that are visible jobs of this scope; id -> state of each hidden.

    The caller rolls back unless every id came back (all or nothing). SQLite: a primary-key
    lookup, then the update, under the transaction's write lock. PostgreSQL: one ``UPDATE ...
    RETURNING`` (the planner has statistics, so the scope can stay in the WHERE); it locks the
    rows it changes, and a row another writer hides first is re-checked after that commit and
    left out, as the locking read did.
    """
    wanted = sorted({i for i in ids if "\x00" not in i})  # NUL: no such job, and PG refuses it
    if not dialect_of(conn).scoped_update_returning:
        found = find_visible_ids(conn, project_id, cluster_id, wanted)
        mark_deleted(conn, list(found), at_ms)
        return found
    if not wanted:
        return {}
    rows = conn.execute(
        update(jobs)
        .where(_visible(project_id, cluster_id), dialect_of(conn).in_ids(jobs.c.id, wanted))
        .values(deleted_ms=at_ms)
        .returning(jobs.c.id, jobs.c.state)
    ).all()
    return {r.id: JobState(r.state) for r in rows}


def request_kill(conn: Connection, job_id: str, at_ms: int, by: str | None = None) -> bool:
    """Flag a launched job for the supervisor to kill (``by``: who asked, for its history);
    False if it is not launched-and-live."""
    res = conn.execute(
        update(jobs)
        .where(
            jobs.c.id == job_id,
            jobs.c.state.in_([JobState.ACCEPTED.value, JobState.RUNNING.value]),
            jobs.c.kill_requested_ms == 0,
        )
        .values(kill_requested_ms=at_ms, kill_requested_by=by)
    )
    return res.rowcount == 1


_COUNT_STATES = select(func.coalesce(func.sum(job_counts.c.n), 0)).where(
    job_counts.c.cluster_id == bindparam("cluster_id"),
    job_counts.c.state.in_(bindparam("states", expanding=True)),
)


def count_states(conn: Connection, cluster_id: str, states: Iterable[JobState]) -> int:
    """Visible jobs of a cluster in ``states`` (a batch-deleted job is gone before its purge).
    Read by every submit: the statement is built once."""
    params = {"cluster_id": cluster_id, "states": [s.value for s in states]}
    return int(conn.execute(_COUNT_STATES, params).scalar_one())


def purge(conn: Connection, job_ids: list[str]) -> None:
    """Remove every row of the given jobs (record, events, SQL results)."""
    dialect = dialect_of(conn)
    for chunk in dialect.id_chunks(job_ids):
        conn.execute(delete(sql_results).where(dialect.in_ids(sql_results.c.job_id, chunk)))
        conn.execute(delete(job_events).where(dialect.in_ids(job_events.c.job_id, chunk)))
        conn.execute(delete(jobs).where(dialect.in_ids(jobs.c.id, chunk)))
