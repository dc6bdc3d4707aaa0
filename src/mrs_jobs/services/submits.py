"""What a submit writes (its job row, its three events), and queueing a batch of prepared
submits in one write transaction (the write of group commit, services/group_commit.py).

Each cluster named in the batch is locked once (in id order, so two batches never wait on
each other in a cycle) and its queue counted once; each item is then judged alone, as a
single submit would be: its cluster must exist for its project, run its type, and have room
in its queue (counting the items of this batch queued before it). The accepted jobs, their
three submit events each and their audit rows are written in one statement per table. An
item refused answers with its own error and writes nothing, so it never refuses another.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from mrs_jobs.domain.job import Job
from mrs_jobs.domain.jobtypes import JobType
from mrs_jobs.domain.queues import DEFAULT_QUEUE, queue_of
from mrs_jobs.domain.states import JobResult, JobState
from mrs_jobs.errors import ClusterNotFound, DomainError, QueueFull
from mrs_jobs.services.context import Caller
from mrs_jobs.store import events as events_store
from mrs_jobs.store import jobs as job_store
from mrs_jobs.store.audit import audit_row, record_audit_rows
from mrs_jobs.store.tenants import Cluster, lock_cluster

__all__ = [
    "PendingSubmit",
    "Submitted",
    "new_job_row",
    "queue_batch",
    "submit_events",
    "yarn_queue",
]


@dataclass(frozen=True)
class PendingSubmit:
    """A validated submit, its secret values already sealed (bound to ``job_id``)."""

    caller: Caller
    cluster_id: str
    job_type: JobType
    job_name: str
    arguments: Sequence[str]  # as sent: the YARN queue may be named in them
    stored_arguments: list[str]  # as stored: secret values sealed
    properties: Mapping[str, str]  # as stored: secret values sealed
    job_id: str


@dataclass(frozen=True)
class Submitted:
    """What a submit answers: the job's id, and the job unless it was an idempotent retry of
    a job since deleted and purged (the answer is still that job's id)."""

    id: str
    job: Job | None


def new_job_row(
    job_id: str,
    caller: Caller,
    cluster_id: str,
    job_type: JobType,
    job_name: str,
    arguments: Sequence[str],
    properties: Mapping[str, str],
    at: int,
    queue: str = DEFAULT_QUEUE,
) -> dict[str, object]:
    """The complete ``jobs`` row of a job just queued (the returned Job is built from it)."""
    return {
        "id": job_id,
        "project_id": caller.project_id,
        "cluster_id": cluster_id,
        "job_name": job_name,
        "job_type": job_type.value,
        "user_name": caller.user_name,
        "queue": queue,
        "state": JobState.SUBMITTED.value,
        "result": JobResult.UNDEFINED.value,
        "progress": 0.0,
        "submitted_ms": at,
        "started_ms": 0,
        "finished_ms": 0,
        "arguments": json.dumps(list(arguments)),
        "properties": json.dumps(dict(properties)),
        "launcher_id": "",
        "app_id": "",
        "tracking_url": "",
        "reason": "",
        "deleted_ms": 0,
        "kill_requested_ms": 0,
        "kill_requested_by": None,
        "kill_sent_ms": 0,
        "owner": None,
        "pid": None,
        "pid_start": None,
        "workdir": None,
        "deadline_ms": 0,  # set when the engine is launched (mrs.job.timeout)
        "attempt": 1,
        "retry_at_ms": 0,
        "cpu_seconds": None,
        "peak_memory_mb": None,
    }


def yarn_queue(cluster: Cluster) -> str:
    """The queue a YARN cluster sends its jobs to unless they name one ("" otherwise)."""
    if cluster.kind != "yarn":
        return ""
    return str(cluster.config.get("yarn_queue") or "").strip()


def submit_events(
    job_id: str, at: int, actor: str, project_id: str | None, cluster_id: str
) -> list[dict[str, object]]:
    """The three transitions of a submit, as ``transition()`` would have recorded them
    (``project_id`` None: not in the project's event stream, as an SQL execution's)."""
    steps = [
        (None, JobState.NEW, "submitted"),
        (JobState.NEW, JobState.NEW_SAVING, ""),
        (JobState.NEW_SAVING, JobState.SUBMITTED, "queued"),
    ]
    return [
        {
            "job_id": job_id,
            "from_state": None if src is None else src.value,
            "to_state": dst.value,
            "reason": reason,
            "at_ms": at,
            "actor": actor,
            "project_id": project_id,
            "cluster_id": cluster_id,
        }
        for src, dst, reason in steps
    ]


Check = Callable[[Cluster, JobType], None]


def _new_row(item: PendingSubmit, cluster: Cluster, at: int) -> dict[str, object]:
    queue = queue_of(item.job_type, item.arguments, item.properties, yarn_queue(cluster))
    return new_job_row(
        item.job_id,
        item.caller,
        cluster.id,
        item.job_type,
        item.job_name,
        item.stored_arguments,
        item.properties,
        at,
        queue,
    )


def queue_batch(
    conn: Connection, batch: Sequence[PendingSubmit], *, check: Check
) -> list[Submitted | DomainError]:
    """Queue every item its cluster accepts, in this transaction; each item's outcome."""
    outcomes: list[Submitted | DomainError | None] = [None] * len(batch)
    by_cluster: dict[tuple[str, str], list[int]] = {}
    for i, item in enumerate(batch):
        by_cluster.setdefault((item.cluster_id, item.caller.project_id), []).append(i)
    at = job_store.now_ms()
    rows: list[dict[str, object]] = []
    for cluster_id, project_id in sorted(by_cluster):
        indexes = by_cluster[(cluster_id, project_id)]
        cluster = lock_cluster(conn, project_id, cluster_id)
        if cluster is None:
            for i in indexes:
                outcomes[i] = ClusterNotFound(cluster_id)
            continue
        queued = job_store.count_states(conn, cluster.id, [JobState.SUBMITTED])
        for i in indexes:
            try:
                check(cluster, batch[i].job_type)
                if queued >= cluster.max_queued:
                    raise QueueFull(cluster.id, cluster.max_queued)
            except DomainError as exc:
                outcomes[i] = exc
                continue
            queued += 1
            values = _new_row(batch[i], cluster, at)
            rows.append(values)
            outcomes[i] = Submitted(batch[i].job_id, job_store.job_from_row(values))
    if rows:
        _write(conn, [batch[i] for i, o in enumerate(outcomes) if isinstance(o, Submitted)], rows)
    return [o for o in outcomes if o is not None]


def _write(conn: Connection, items: list[PendingSubmit], rows: list[dict[str, object]]) -> None:
    at = int(rows[0]["submitted_ms"])  # type: ignore[call-overload]
    job_store.insert_jobs(conn, rows)
    by_project: dict[str, list[dict[str, object]]] = {}
    for item, row in zip(items, rows, strict=True):
        project_id = item.caller.project_id
        cluster_id = str(row["cluster_id"])
        events = submit_events(item.job_id, at, item.caller.actor, project_id, cluster_id)
        by_project.setdefault(project_id, []).extend(events)
    # the event stream's cursors are per project, each a row locked to commit: taken in
    # project order, as the clusters are, so two batches never wait on each other in a cycle
    for project_id in sorted(by_project):
        events_store.record_events(conn, by_project[project_id])
    record_audit_rows(
        conn,
        [
            audit_row(
                at_ms=at,
                action="submit",
                project_id=item.caller.project_id,
                cluster_id=str(row["cluster_id"]),
                credential_id=item.caller.credential_id,
                request_id=item.caller.request_id,
                detail={
                    "job_id": item.job_id,
                    "job_type": item.job_type.value,
                    "job_name": item.job_name,
                },
                outcome="accepted",
                **item.caller.decision,
            )
            for item, row in zip(items, rows, strict=True)
        ],
    )
