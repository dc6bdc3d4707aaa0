"""Submit, list, show, kill and sql-result (contract §5-§7, §9)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence

from sqlalchemy import Connection, select

from mrs_jobs.domain.job import Job
from mrs_jobs.domain.jobtypes import COMPONENT_ERRORS, SQL_JOB_TYPES, JobType, component_of
from mrs_jobs.domain.states import TERMINAL_STATES, JobResult, JobState
from mrs_jobs.domain.validation import ListQuery, validate_submission
from mrs_jobs.errors import (
    ClusterNotFound,
    ComponentMissing,
    InvalidParameter,
    JobAlreadyEnded,
    JobNotFinished,
    JobNotFound,
    QueueFull,
    WrongJobType,
)
from mrs_jobs.services.context import Caller, Waker
from mrs_jobs.store import Store
from mrs_jobs.store import jobs as job_store
from mrs_jobs.store.audit import record_audit
from mrs_jobs.store.tables import sql_results
from mrs_jobs.store.tenants import Cluster, get_cluster, lock_cluster

__all__ = ["JobService"]


class JobService:
    """The job use cases over one store; ``wake`` nudges the supervisor after a change."""

    def __init__(self, store: Store, *, runnable_types: frozenset[str], wake: Waker) -> None:
        self.store = store
        self.runnable_types = runnable_types
        self.wake = wake

    # -- helpers -----------------------------------------------------------------------------
    @staticmethod
    def _cluster(conn: Connection, caller: Caller, cluster_id: str, lock: bool = False) -> Cluster:
        cluster = (
            lock_cluster(conn, caller.project_id, cluster_id)
            if lock
            else get_cluster(conn, caller.project_id, cluster_id)
        )
        if cluster is None:
            raise ClusterNotFound(cluster_id)
        return cluster

    def _visible(self, conn: Connection, caller: Caller, cluster_id: str, job_id: str) -> Job:
        self._cluster(conn, caller, cluster_id)
        job = job_store.get_visible(conn, caller.project_id, cluster_id, job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    # -- use cases ---------------------------------------------------------------------------
    def submit(
        self,
        caller: Caller,
        cluster_id: str,
        *,
        job_type: str,
        job_name: str,
        arguments: Sequence[str],
        properties: Mapping[str, str],
    ) -> Job:
        parsed = validate_submission(job_type, job_name, arguments, properties)
        job_id = str(uuid.uuid4())
        with self.store.write() as conn:
            cluster = self._cluster(conn, caller, cluster_id, lock=True)
            self._check_runnable(cluster, parsed)
            queued = job_store.count_states(conn, cluster.id, [JobState.SUBMITTED])
            if queued >= cluster.max_queued:
                raise QueueFull(cluster.id, cluster.max_queued)
            at = job_store.now_ms()
            job_store.insert_job(
                conn,
                {
                    "id": job_id,
                    "project_id": caller.project_id,
                    "cluster_id": cluster.id,
                    "job_name": job_name,
                    "job_type": parsed.value,
                    "user_name": caller.user_name,
                    "queue": "default",
                    "state": JobState.NEW.value,
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
                    "kill_sent_ms": 0,
                },
            )
            job_store.record_event(conn, job_id, None, JobState.NEW.value, "submitted", at)
            job_store.transition(conn, job_id, JobState.NEW_SAVING)
            job_store.transition(conn, job_id, JobState.SUBMITTED, reason="queued")
            record_audit(
                conn,
                at_ms=at,
                action="submit",
                project_id=caller.project_id,
                cluster_id=cluster.id,
                credential_id=caller.credential_id,
                request_id=caller.request_id,
                detail={"job_id": job_id, "job_type": parsed.value, "job_name": job_name},
                outcome="accepted",
            )
            job = job_store.get_job(conn, job_id)
        self.wake()
        assert job is not None
        return job

    def _check_runnable(self, cluster: Cluster, job_type: JobType) -> None:
        component = component_of(job_type)
        if component not in cluster.components:
            code_known = component in COMPONENT_ERRORS
            message = (
                f"The cluster {cluster.id} has no {component}; {job_type.value} jobs "
                "cannot run on it."
            )
            if code_known:
                raise ComponentMissing(component, message)
            raise InvalidParameter(message)
        if job_type.value not in self.runnable_types:
            installed = {component_of(JobType(t)) for t in self.runnable_types}
            if component in COMPONENT_ERRORS and component not in installed:
                raise ComponentMissing(
                    component,
                    f"{component} is not installed on this service, so {job_type.value} jobs "
                    f"cannot run (see `mrs-jobs engines install`).",
                )
            raise InvalidParameter(
                f"job_type {job_type.value} has no engine installed in this service yet; "
                f"runnable types: {', '.join(sorted(self.runnable_types))}."
            )

    def list(self, caller: Caller, cluster_id: str, query: ListQuery) -> tuple[int, list[Job]]:
        with self.store.read() as conn:
            self._cluster(conn, caller, cluster_id)
            return job_store.list_visible(conn, caller.project_id, cluster_id, query)

    def show(self, caller: Caller, cluster_id: str, job_id: str) -> Job:
        with self.store.read() as conn:
            return self._visible(conn, caller, cluster_id, job_id)

    def kill(self, caller: Caller, cluster_id: str, job_id: str) -> None:
        """Queued jobs end at once; launched ones are flagged for the supervisor (async)."""
        with self.store.write() as conn:
            job = self._visible(conn, caller, cluster_id, job_id)
            outcome = self._kill_in_tx(conn, job)
            record_audit(
                conn,
                at_ms=job_store.now_ms(),
                action="kill",
                project_id=caller.project_id,
                cluster_id=cluster_id,
                credential_id=caller.credential_id,
                request_id=caller.request_id,
                detail={"job_id": job_id, "state": job.state},
                outcome=outcome,
            )
        self.wake()

    @staticmethod
    def _kill_in_tx(conn: Connection, job: Job) -> str:
        if job.state == JobState.KILLED:
            return "already-killed"
        if job.state in TERMINAL_STATES:
            raise JobAlreadyEnded(job.id, job.state)
        at = job_store.now_ms()
        if job_store.transition(
            conn,
            job.id,
            JobState.KILLED,
            reason="killed before launch",
            only_from=[JobState.NEW, JobState.NEW_SAVING, JobState.SUBMITTED],
            values={"result": JobResult.KILLED.value, "finished_ms": at},
        ):
            return "killed"
        job_store.request_kill(conn, job.id, at)
        return "kill-requested"

    def sql_result(self, caller: Caller, cluster_id: str, job_id: str) -> dict[str, list]:
        with self.store.read() as conn:
            job = self._visible(conn, caller, cluster_id, job_id)
            if job.job_type not in {t.value for t in SQL_JOB_TYPES}:
                raise WrongJobType(job.job_type)
            if job.state not in TERMINAL_STATES:
                raise JobNotFinished(job.id, job.state)
            rows = conn.execute(
                select(sql_results.c.statement, sql_results.c.rows)
                .where(sql_results.c.job_id == job.id)
                .order_by(sql_results.c.statement)
            ).all()
        return {str(r.statement): json.loads(r.rows) for r in rows}
