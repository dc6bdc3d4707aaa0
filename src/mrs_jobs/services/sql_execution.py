"""MRS's SQL execution API: execute one statement, show its result, cancel it.

An execution is run as a one-statement SparkSql (``spark``) or HiveSql (``hive``) job on the
cluster's Spark Thrift Server, by the supervisor like any job (box, kill = cancel on the
server, restart survival, the failed statement's message), stored as a ``jobs`` row the job
APIs never show (store/sql_executions.py). ``presto`` runs the same way on a cluster with a
``presto_coordinator`` (a SparkSql run marked with :data:`ENGINE_PROPERTY`, which
engines/presto.py sends to the coordinator); on a cluster without one it is refused.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection

from mrs_jobs.domain.clusterconfig import settings_of
from mrs_jobs.domain.job import Job
from mrs_jobs.domain.jobtypes import JobType, component_of
from mrs_jobs.domain.sqlexecution import (
    ARCHIVE_PROPERTY,
    ENGINE_PROPERTY,
    PRESTO,
    SQL_TYPES,
    archive_location,
    content_of,
    status_of,
    validate_sql_request,
)
from mrs_jobs.domain.states import TERMINAL_STATES, JobState
from mrs_jobs.engines.base import EngineRefused
from mrs_jobs.engines.paths import URL_RE, InputRoots, file_url_path
from mrs_jobs.engines.registry import cluster_spec
from mrs_jobs.errors import (
    ComponentMissing,
    InvalidParameter,
    QueueFull,
    SqlExecutionNotFound,
)
from mrs_jobs.services.context import Caller, Waker
from mrs_jobs.services.jobs import cluster_of, kill_or_request
from mrs_jobs.services.submits import new_job_row, submit_events
from mrs_jobs.settings import Settings
from mrs_jobs.storage.objectstore import ObjectStoreError, is_object_uri, parse_uri
from mrs_jobs.store import Store
from mrs_jobs.store import events as events_store
from mrs_jobs.store import jobs as job_store
from mrs_jobs.store import sql_executions as sql_store
from mrs_jobs.store import sql_results as sql_results_store
from mrs_jobs.store.audit import record_audit
from mrs_jobs.store.tenants import Cluster

__all__ = ["SqlExecution", "SqlExecutionService"]

_NAME = "sql-execution"  # the run's job_name (its events and logs say what it was)


@dataclass(frozen=True)
class SqlExecution:
    """What the API answers of one execution (MRS's ShowSqlResultResponse)."""

    id: str
    statement: str
    status: str
    message: str | None = None
    result_location: str | None = None
    content: list[list[str]] | None = None

    def to_mrs(self) -> dict[str, object]:
        body: dict[str, object] = {"id": self.id, "statement": self.statement}
        body["status"] = self.status
        if self.message:
            body["message"] = self.message
        if self.result_location:
            body["result_location"] = self.result_location
        if self.content is not None:
            body["content"] = self.content
        return body


def _statement_of(job: Job) -> str:
    """The statement a run was given (its arguments: ``--database <db> -e <sql>``)."""
    args = list(job.arguments)
    return args[args.index("-e") + 1] if "-e" in args[:-1] else ""


class SqlExecutionService:
    def __init__(
        self, store: Store, settings: Settings, *, runnable_types: frozenset[str], wake: Waker
    ) -> None:
        self.store = store
        self.settings = settings
        self.runnable_types = runnable_types
        self.wake = wake

    def execute(
        self,
        caller: Caller,
        cluster_id: str,
        *,
        sql_type: str,
        sql_content: str,
        database: str | None,
        archive_path: str | None,
    ) -> SqlExecution:
        """Queue one statement; the supervisor runs it (the answer is QUEUED)."""
        request = validate_sql_request(sql_type, sql_content, database, archive_path)
        with self.store.read() as conn:
            cluster = self._cluster(conn, caller, cluster_id)
        job_type = self._runnable(cluster, request.sql_type)
        if request.archive_path is not None:
            self._check_archive(cluster, request.archive_path)
        sql_id = str(uuid.uuid4())
        arguments = ["--database", request.database, "-e", request.statement]
        properties = {ARCHIVE_PROPERTY: request.archive_path} if request.archive_path else {}
        if request.sql_type == PRESTO:
            properties[ENGINE_PROPERTY] = PRESTO
            if not database:  # no database asked: the cluster's presto_schema, else none
                arguments = arguments[2:]
        with self.store.write() as conn:
            cluster = self._cluster(conn, caller, cluster_id, lock=True)
            if sql_store.count_queued(conn, cluster.id) >= cluster.max_queued:
                raise QueueFull(cluster.id, cluster.max_queued)
            at = job_store.now_ms()
            row = new_job_row(
                sql_id, caller, cluster.id, job_type, _NAME, arguments, properties, at
            )
            row["deleted_ms"] = sql_store.SQL_EXECUTION
            job_store.insert_job(conn, row)
            events_store.record_events(
                conn, submit_events(sql_id, at, caller.actor, None, cluster.id)
            )
            record_audit(
                conn,
                at_ms=at,
                action="sql-execute",
                project_id=caller.project_id,
                cluster_id=cluster.id,
                credential_id=caller.credential_id,
                request_id=caller.request_id,
                detail={"sql_id": sql_id, "sql_type": request.sql_type},
                outcome="accepted",
                **caller.decision,
            )
        self.wake()
        return SqlExecution(sql_id, request.statement, "QUEUED")

    def show(self, caller: Caller, cluster_id: str, sql_id: str) -> SqlExecution:
        with self.store.read() as conn:
            job = self._execution(conn, caller, cluster_id, sql_id)
            results = (
                sql_results_store.load_sql_results(conn, job.id)
                if job.state in TERMINAL_STATES
                else {}
            )
        status = status_of(job.state, job.result)
        content: list[list[str]] | None = None
        message: str | None = None
        rows = results.get("0")
        if rows is not None:
            content, message = content_of(rows)
        if job.state == JobState.KILLED and not job.reason.startswith("The statement was"):
            message = f"The statement was cancelled: {job.reason or 'killed'}"
        elif status == "FAILED" and not message:
            message = job.reason or "The statement failed."
        location = None
        archive = job.properties.get(ARCHIVE_PROPERTY)
        if (
            status == "FINISHED"
            and archive
            and rows is not None
            and rows != [{"result": "succeed"}]
        ):
            location = archive_location(archive, job.id)
        if status == "FINISHED" and content is None:
            content = []
        return SqlExecution(job.id, _statement_of(job), status, message, location, content)

    def cancel(self, caller: Caller, cluster_id: str, sql_id: str) -> str:
        """Stop the statement: a queued one ends at once, a running one is cancelled on the
        server by the supervisor (its runner's SIGTERM). MRS answers SUCCEED for an ended one
        too."""
        with self.store.write() as conn:
            job = self._execution(conn, caller, cluster_id, sql_id)
            outcome = "ended"
            if job.state not in TERMINAL_STATES:
                outcome = self._cancel_in_tx(conn, job, caller.actor)
            record_audit(
                conn,
                at_ms=job_store.now_ms(),
                action="sql-cancel",
                project_id=caller.project_id,
                cluster_id=cluster_id,
                credential_id=caller.credential_id,
                request_id=caller.request_id,
                detail={"sql_id": sql_id, "state": job.state},
                outcome=outcome,
                **caller.decision,
            )
        self.wake()
        return "SUCCEED"

    # -- helpers -----------------------------------------------------------------------------
    @staticmethod
    def _cancel_in_tx(conn: Connection, job: Job, actor: str) -> str:
        reason = f"The statement was cancelled before it ran ({actor})."
        return "cancelled" if kill_or_request(conn, job, actor, reason) else "cancel-requested"

    @staticmethod
    def _cluster(conn: Connection, caller: Caller, cluster_id: str, lock: bool = False) -> Cluster:
        return cluster_of(conn, caller, cluster_id, lock)

    def _execution(self, conn: Connection, caller: Caller, cluster_id: str, sql_id: str) -> Job:
        job = sql_store.get_execution(conn, caller.project_id, cluster_id, sql_id)
        if job is None:
            self._cluster(conn, caller, cluster_id)  # which error: the cluster's or the id's
            raise SqlExecutionNotFound(sql_id[:64])
        return job

    def _runnable(self, cluster: Cluster, sql_type: str) -> JobType:
        """The job type that runs ``sql_type`` on the cluster; ComponentMissing otherwise."""
        job_type = SQL_TYPES[sql_type]
        if sql_type == PRESTO or job_type is None:
            if not settings_of(cluster.kind, cluster.config).presto_coordinator:
                raise ComponentMissing(
                    "Presto",
                    "sql_type presto is not supported here without a Presto/Trino "
                    f"coordinator: the cluster {cluster.id} has no presto_coordinator setting "
                    "(an administrator sets it among the cluster's settings). sql_type spark "
                    "and hive run on the cluster's Spark SQL server.",
                )
            return JobType.SPARK_SQL  # carried by engines/presto.py, not the Thrift server
        component = component_of(job_type)
        if component not in cluster.components:
            raise ComponentMissing(
                component,
                f"The cluster {cluster.id} has no {component}; sql_type {sql_type} cannot run "
                "on it.",
            )
        if job_type.value not in self.runnable_types:
            raise ComponentMissing(
                component,
                f"{component} SQL is not installed on this service, so sql_type {sql_type} "
                "cannot run.",
            )
        return job_type

    def _check_archive(self, cluster: Cluster, archive_path: str) -> None:
        """An object-store URI, or a local directory the cluster's runs may write (under its
        output roots, never the service's files); InvalidParameter says why not."""
        if is_object_uri(archive_path):
            try:
                parse_uri(archive_path)
            except ObjectStoreError as exc:
                raise InvalidParameter(f"archive_path: {exc}") from None
            return
        scheme = URL_RE.match(archive_path)
        if scheme and scheme.group(1).lower() != "file":
            raise InvalidParameter(
                "archive_path must be an obs://, s3a:// or s3:// URI or a local directory "
                f"(file:// or an absolute path); got a {scheme.group(1)}:// URI."
            )
        spec = cluster_spec(cluster.id, cluster.kind, cluster.config, self.settings)
        try:
            local = file_url_path(archive_path)
            InputRoots.of(spec).check(
                Path(local).resolve(), archive_path, "archive_path", write=True
            )
        except EngineRefused as exc:
            raise InvalidParameter(str(exc)) from None
