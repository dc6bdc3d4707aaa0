"""The job as the domain sees it, and its MRS rendering (contract §3)."""

from __future__ import annotations

from dataclasses import dataclass

from mrs_jobs.domain.jobtypes import JobType
from mrs_jobs.domain.render import java_list, java_map
from mrs_jobs.domain.states import JobResult, JobState

__all__ = ["Job", "JobEvent", "to_mrs"]


@dataclass(frozen=True)
class Job:
    """A job row as the domain sees it; ``job_type``, ``state`` and ``result`` are the enums
    (str-valued, so they compare equal to their MRS strings)."""

    id: str
    project_id: str
    cluster_id: str
    job_name: str
    job_type: JobType
    user_name: str
    queue: str
    state: JobState
    result: JobResult
    progress: float
    submitted_ms: int
    started_ms: int
    finished_ms: int
    arguments: list[str]
    properties: dict[str, str]
    launcher_id: str = ""
    app_id: str = ""
    tracking_url: str = ""
    reason: str = ""
    deleted_ms: int = 0
    kill_requested_ms: int = 0
    kill_requested_by: str | None = None
    kill_sent_ms: int = 0
    owner: str | None = None
    pid: int | None = None
    pid_start: int | None = None
    workdir: str | None = None
    deadline_ms: int = 0
    attempt: int = 1  # 1-based; a retry queues the job again (mrs.job.retries)
    retry_at_ms: int = 0  # a queued retry is not claimed before this
    cpu_seconds: float | None = None  # what it used; None where unknown
    peak_memory_mb: int | None = None


@dataclass(frozen=True)
class JobEvent:
    """One state change of a job: when, from what to what, why, and who caused it."""

    at_ms: int
    from_state: str | None  # None: the job was created
    to_state: str
    reason: str
    actor: str  # "" when not recorded (rows older than the history)


def to_mrs(job: Job, now_ms: int) -> dict[str, object]:
    """The JOB object of the MRS API: strings for arguments/properties, integer ms times."""
    if job.started_ms and job.finished_ms:
        elapsed = max(0, job.finished_ms - job.started_ms)  # a clock step back: never negative
    elif job.started_ms and job.state == JobState.RUNNING:
        elapsed = max(0, now_ms - job.started_ms)
    else:
        elapsed = 0
    return {
        "job_id": job.id,
        "user": job.user_name,
        "job_name": job.job_name,
        "job_result": job.result,
        "job_state": job.state,
        "job_progress": round(float(job.progress), 2),
        "job_type": job.job_type,
        "started_time": int(job.started_ms),
        "submitted_time": int(job.submitted_ms),
        "finished_time": int(job.finished_ms),
        "elapsed_time": int(elapsed),
        "queue": job.queue,
        "arguments": java_list(job.arguments),
        "launcher_id": job.launcher_id,
        "properties": java_map(job.properties),
        "app_id": job.app_id,
        "tracking_url": job.tracking_url,
        "attempt": int(job.attempt),  # ours: 1-based, above 1 once retried (mrs.job.retries)
        "diagnostics": job.reason,  # ours: why it ended as it did ("" while nothing is wrong)
        "cpu_seconds": job.cpu_seconds,  # ours: what it used, once ended (None: not known)
        "peak_memory_mb": job.peak_memory_mb,
    }
