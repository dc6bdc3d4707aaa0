"""MRS v1.1 job use cases: the v2 ones (``JobService``, ``BatchDeleteService``) reached by
project and job id.

v1 names a job by its id alone (``/v1.1/{project_id}/job-exes/{id}``), where v2 scopes it by
cluster too; this finds the job's cluster in the caller's project and hands over to the v2
use case, so a v1 job is a v2 job (same row, same checks, same audit) and the reverse.
"""

from __future__ import annotations

from mrs_jobs.domain.job import Job
from mrs_jobs.domain.v1jobs import V1Submission
from mrs_jobs.domain.validation import ListQuery
from mrs_jobs.errors import JobNotFound
from mrs_jobs.services.batch_delete import BatchDeleteService
from mrs_jobs.services.context import Caller
from mrs_jobs.services.jobs import JobService
from mrs_jobs.store import Store
from mrs_jobs.store import jobs as job_store

__all__ = ["JobsV11Service"]


class JobsV11Service:
    def __init__(self, store: Store, jobs: JobService, batch_delete: BatchDeleteService) -> None:
        self.store = store
        self.jobs = jobs
        self.batch_delete = batch_delete

    def submit(self, caller: Caller, body: V1Submission) -> Job:
        """Queue the v2 job a v1 body describes; returns the job as recorded."""
        job_type, arguments, properties = body.to_v2()
        submitted = self.jobs.submit(
            caller,
            body.cluster_id,
            job_type=job_type,
            job_name=body.job_name,
            arguments=arguments,
            properties=properties,
        )
        if submitted.job is None:  # only an idempotent retry of a purged job; v1 has no keys
            raise JobNotFound(submitted.id)
        return submitted.job

    def list(self, caller: Caller, cluster_id: str, query: ListQuery) -> tuple[int, list[Job]]:
        return self.jobs.list(caller, cluster_id, query)

    def show(self, caller: Caller, job_id: str) -> Job:
        return self.jobs.show(caller, self._cluster_of(caller, job_id), job_id)

    def delete(self, caller: Caller, job_id: str) -> None:
        """As v2's batch delete of this one job: a live job is killed, then purged."""
        self.batch_delete.delete(caller, self._cluster_of(caller, job_id), [job_id])

    def _cluster_of(self, caller: Caller, job_id: str) -> str:
        """The cluster of a visible job of the caller's project; a job of another project, a
        deleted one and one that never existed are all the same JobNotFound."""
        if "\x00" in job_id:
            raise JobNotFound(job_id)  # PostgreSQL refuses a NUL in a query
        with self.store.read() as conn:
            job = job_store.get_job(conn, job_id)
        if job is None or job.project_id != caller.project_id or job.deleted_ms:
            raise JobNotFound(job_id)
        return job.cluster_id
