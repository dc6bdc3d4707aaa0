"""Submit, list, show, kill and sql-result (contract §5-§7, §9); job secrets at rest."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from sqlalchemy import Connection

from mrs_jobs.domain.job import Job, JobEvent
from mrs_jobs.domain.jobtypes import COMPONENT_ERRORS, SQL_JOB_TYPES, JobType, component_of
from mrs_jobs.domain.outcome import killed_before_launch
from mrs_jobs.domain.retries import retry_policy
from mrs_jobs.domain.sqlexecution import ENGINE_PROPERTY
from mrs_jobs.domain.states import TERMINAL_STATES, JobState
from mrs_jobs.domain.validation import ListQuery, job_timeout_seconds, validate_submission
from mrs_jobs.errors import (
    ClusterNotFound,
    ComponentMissing,
    DomainError,
    InvalidParameter,
    JobAlreadyEnded,
    JobNotFinished,
    JobNotFound,
    PermissionDenied,
    StoreFailure,
    WrongJobType,
)
from mrs_jobs.secretbox import (
    SecretBox,
    seal_job_arguments,
    seal_job_properties,
)
from mrs_jobs.services.context import Caller, Waker
from mrs_jobs.services.group_commit import GroupCommit
from mrs_jobs.services.ownership import KILL_ANY, record_denial, require_owner
from mrs_jobs.services.submits import (
    PendingSubmit,
    Submitted,
    queue_batch,
)
from mrs_jobs.store import Store
from mrs_jobs.store import events as events_store
from mrs_jobs.store import jobs as job_store
from mrs_jobs.store import sql_results as sql_results_store
from mrs_jobs.store.audit import record_audit
from mrs_jobs.store.idempotency import claim_key, find_key
from mrs_jobs.store.tenants import Cluster, get_cluster, lock_cluster

if TYPE_CHECKING:  # PostgreSQL's driver is imported only when a PostgreSQL store is used
    from mrs_jobs.store.async_reads import AsyncReads

__all__ = [
    "JobService",
    "Submitted",
    "cluster_of",
    "kill_or_request",
]

log = logging.getLogger(__name__)


class _Retry(Exception):
    """Lost an idempotency-key race: roll back and answer with the winner's job."""


def cluster_of(conn: Connection, caller: Caller, cluster_id: str, lock: bool = False) -> Cluster:
    """The caller's cluster (locked for a submit when ``lock``); ClusterNotFound otherwise."""
    cluster = (
        lock_cluster(conn, caller.project_id, cluster_id)
        if lock
        else get_cluster(conn, caller.project_id, cluster_id)
    )
    if cluster is None:
        raise ClusterNotFound(cluster_id)
    return cluster


def kill_or_request(conn: Connection, job: Job, actor: str, reason: str | None = None) -> bool:
    """Kill ``job`` in this transaction: a queued one ends KILLED at once (True; ``reason``
    or "killed before launch (<actor>)"), a launched one gets a kill request the supervisor
    carries out (False)."""
    at = job_store.now_ms()
    ending = killed_before_launch(job.attempt)
    if job_store.transition(
        conn,
        job.id,
        ending.state,
        reason=ending.reason,
        only_from=[JobState.NEW, JobState.NEW_SAVING, JobState.SUBMITTED],
        values={
            "result": ending.result.value,
            "finished_ms": at,
            "reason": reason or f"{ending.reason} ({actor})",
        },
        actor=actor,
    ):
        return True
    job_store.request_kill(conn, job.id, at, by=actor)
    return False


def validate_idempotency_key(key: str) -> None:
    if not 1 <= len(key) <= 128 or not key.isascii() or not key.isprintable():
        raise InvalidParameter("X-Idempotency-Key must be 1-128 printable ASCII characters.")


def _request_hash(
    cluster_id: str,
    job_type: str,
    job_name: str,
    arguments: Sequence[str],
    properties: Mapping[str, str],
) -> str:
    body = json.dumps(
        [cluster_id, job_type, job_name, list(arguments), dict(properties)],
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(body.encode()).hexdigest()


class JobService:
    """The job use cases over one store; ``wake`` nudges the supervisor after a change.

    ``secrets`` seals the secret property values of a submit before they are stored (the
    service does; only tests and tools that never run a job leave it out)."""

    def __init__(
        self,
        store: Store,
        *,
        runnable_types: frozenset[str],
        wake: Waker,
        secrets: SecretBox | None = None,
        reads: AsyncReads | None = None,
    ) -> None:
        self.store = store
        self.runnable_types = runnable_types
        self.wake = wake
        self.secrets = secrets
        self.reads = reads  # PostgreSQL's reads on the event loop, open while the app runs
        # submits arriving together are committed together (the API's path without a key)
        self.submits: GroupCommit[PendingSubmit, Submitted] = GroupCommit(
            self.write_submits, name="mrs-jobs-submits"
        )

    # -- helpers -----------------------------------------------------------------------------
    @staticmethod
    def _cluster(conn: Connection, caller: Caller, cluster_id: str, lock: bool = False) -> Cluster:
        return cluster_of(conn, caller, cluster_id, lock)

    def _visible(self, conn: Connection, caller: Caller, cluster_id: str, job_id: str) -> Job:
        # The job first: it is scoped by project and cluster, so when it is found the cluster
        # exists too, and only a miss pays the second statement (which error to answer).
        job = job_store.get_visible(conn, caller.project_id, cluster_id, job_id)
        if job is None:
            self._cluster(conn, caller, cluster_id)
            raise JobNotFound(job_id)
        return job

    # -- use cases ---------------------------------------------------------------------------
    def prepare_submit(
        self,
        caller: Caller,
        cluster_id: str,
        *,
        job_type: str,
        job_name: str,
        arguments: Sequence[str],
        properties: Mapping[str, str],
    ) -> PendingSubmit:
        """A submit checked for all the store does not decide, its secret values sealed
        (bound to its new job id): CPU only, no store call."""
        parsed = validate_submission(job_type, job_name, arguments, properties)
        if ENGINE_PROPERTY in properties:  # only the SQL execution API says where SQL runs
            raise InvalidParameter(
                f"properties key {ENGINE_PROPERTY} is reserved for the SQL execution API."
            )
        job_timeout_seconds(properties)  # mrs.job.timeout in range
        retry_policy(properties)  # (ours) mrs.job.retries / mrs.job.retry.delay in range
        job_id = str(uuid.uuid4())
        if self.secrets is not None:
            stored_properties = seal_job_properties(self.secrets, job_id, properties)
            stored_arguments = seal_job_arguments(self.secrets, job_id, arguments)
        else:
            stored_properties, stored_arguments = dict(properties), list(arguments)
        return PendingSubmit(
            caller,
            cluster_id,
            parsed,
            job_name,
            list(arguments),
            stored_arguments,
            stored_properties,
            job_id,
        )

    def write_submits(self, batch: Sequence[PendingSubmit]) -> list[Submitted | DomainError]:
        """Queue prepared submits in one write transaction; each one's job or refusal (the
        write of :attr:`submits`, the group commit)."""
        with self.store.write() as conn:
            outcomes = queue_batch(conn, batch, check=self._check_runnable)
        if any(isinstance(o, Submitted) for o in outcomes):
            self.wake()
        return outcomes

    def submit(
        self,
        caller: Caller,
        cluster_id: str,
        *,
        job_type: str,
        job_name: str,
        arguments: Sequence[str],
        properties: Mapping[str, str],
        idempotency_key: str | None = None,
    ) -> Submitted:
        """Queue a job. With an idempotency key, a retry of the same request returns the
        first job, and the same key with a different request is refused (both judged by a
        hash of the request as sent, before its secret values are sealed)."""
        fields = {"job_type": job_type, "job_name": job_name}
        pending = self.prepare_submit(
            caller, cluster_id, **fields, arguments=arguments, properties=properties
        )
        if idempotency_key is None:
            outcome = self.write_submits([pending])[0]
            if isinstance(outcome, DomainError):
                raise outcome
            return outcome
        validate_idempotency_key(idempotency_key)
        request_hash = _request_hash(cluster_id, job_type, job_name, arguments, properties)
        for _attempt in range(3):
            try:
                submitted, created = self._submit_keyed(pending, request_hash, idempotency_key)
                break
            except _Retry:
                continue  # the winner has committed: the next attempt returns its job
        else:
            raise StoreFailure("Could not record the submit; retry.")
        if created:
            self.wake()
        return submitted

    def _submit_keyed(
        self, pending: PendingSubmit, request_hash: str, key: str
    ) -> tuple[Submitted, bool]:
        caller = pending.caller
        with self.store.write() as conn:
            # the cluster's lock first: two submits with one key take turns on it
            self._cluster(conn, caller, pending.cluster_id, lock=True)
            earlier = self._earlier_submit(conn, caller, key, request_hash)
            if earlier is not None:
                return earlier, False
            outcome = queue_batch(conn, [pending], check=self._check_runnable)[0]
            if isinstance(outcome, DomainError):
                raise outcome
            assert outcome.job is not None
            at = outcome.job.submitted_ms
            if not claim_key(conn, caller.project_id, key, request_hash, pending.job_id, at):
                # A concurrent submit with the same key won; this transaction adds nothing.
                raise _Retry()
        return outcome, True

    @staticmethod
    def _earlier_submit(
        conn: Connection, caller: Caller, key: str, request_hash: str
    ) -> Submitted | None:
        found = find_key(conn, caller.project_id, key)
        if found is None:
            return None
        earlier_hash, earlier_id = found
        if earlier_hash != request_hash:
            raise InvalidParameter(
                "X-Idempotency-Key was already used for a different request; use a new key."
            )
        # A job submitted, then deleted and purged is gone: the answer is still its id.
        return Submitted(earlier_id, job_store.get_job(conn, earlier_id))

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
            total, found = job_store.list_visible(conn, caller.project_id, cluster_id, query)
            if total == 0:  # jobs are scoped by project and cluster: any job proves the cluster
                self._cluster(conn, caller, cluster_id)
            return total, found

    def show(self, caller: Caller, cluster_id: str, job_id: str) -> Job:
        with self.store.read() as conn:
            return self._visible(conn, caller, cluster_id, job_id)

    async def show_async(self, caller: Caller, cluster_id: str, job_id: str) -> Job | None:
        """``show``'s read on the event loop, through the store's async connections
        (PostgreSQL, while the app runs). None when there are none or no such job is visible:
        then ``show`` answers, with the right error (which needs a second read)."""
        if self.reads is None or not self.reads.usable:
            return None
        return await self.reads.visible_job(caller.project_id, cluster_id, job_id)

    def events(self, caller: Caller, cluster_id: str, job_id: str) -> list[JobEvent]:
        """The job's history: every state change, oldest first, with its reason and cause."""
        with self.store.read() as conn:
            job = self._visible(conn, caller, cluster_id, job_id)
            return events_store.list_events(conn, job.id)

    def kill(self, caller: Caller, cluster_id: str, job_id: str) -> None:
        """Queued jobs end at once; launched ones are flagged for the supervisor (async)."""
        try:
            self._kill(caller, cluster_id, job_id)
        except PermissionDenied as exc:  # the owner scope: refused, audited, nothing changed
            record_denial(self.store, caller, exc.action, cluster_id, {"job_id": job_id})
            raise
        self.wake()

    def _kill(self, caller: Caller, cluster_id: str, job_id: str) -> None:
        with self.store.write() as conn:
            job = self._visible(conn, caller, cluster_id, job_id)
            if job.user_name != caller.user_name and not caller.policy.allows(KILL_ANY):
                cluster = self._cluster(conn, caller, cluster_id)
                require_owner(conn, caller, cluster, [job.id], KILL_ANY)
            outcome = self._kill_in_tx(conn, job, caller.actor)
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
                **caller.decision,
            )

    @staticmethod
    def _kill_in_tx(conn: Connection, job: Job, actor: str) -> str:
        if job.state == JobState.KILLED:
            return "already-killed"
        if job.state in TERMINAL_STATES:
            raise JobAlreadyEnded(job.id, job.state)
        return "killed" if kill_or_request(conn, job, actor) else "kill-requested"

    def sql_result(self, caller: Caller, cluster_id: str, job_id: str) -> dict[str, list]:
        with self.store.read() as conn:
            job = self._visible(conn, caller, cluster_id, job_id)
            if job.job_type not in SQL_JOB_TYPES:
                raise WrongJobType(job.job_type)
            if job.state not in TERMINAL_STATES:
                raise JobNotFinished(job.id, job.state)
            return sql_results_store.load_sql_results(conn, job.id)
