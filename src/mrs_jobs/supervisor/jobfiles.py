"""What the supervisor reads from and writes to a job: its process handle, its engine spec,
and, through ``runtime/jobdir.py`` (which owns the names and formats), the files of its working
directory (launch record, SQL results, the secret files its engine declares)."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from mrs_jobs.domain.job import Job
from mrs_jobs.domain.render import engine_arguments
from mrs_jobs.domain.retries import RetryPolicy, retry_policy
from mrs_jobs.domain.validation import job_timeout_seconds
from mrs_jobs.engines.base import EngineAdapter, EngineRefused, JobSpec
from mrs_jobs.errors import InvalidParameter
from mrs_jobs.runtime import jobdir
from mrs_jobs.runtime.jobdir import read_launch, read_sql_results
from mrs_jobs.runtime.process import ProcessHandle
from mrs_jobs.secretbox import (
    SecretBox,
    SecretKeyError,
    open_job_arguments,
    open_job_properties,
)

__all__ = [
    "clear_run_results",
    "drop_secret_files",
    "fresh_run_dir",
    "handle_of",
    "plain_arguments",
    "read_launch",
    "read_sql_results",
    "retry_policy_of",
    "spec_of",
    "timeout_of",
]

log = logging.getLogger(__name__)


def handle_of(job: Job) -> ProcessHandle | None:
    if job.pid is None or job.pid_start is None:
        return None
    return ProcessHandle(pid=job.pid, start_ticks=job.pid_start)


def spec_of(job: Job, secrets: SecretBox) -> JobSpec:
    """The job as its engine sees it: the one place its sealed secret values are opened and
    its sensitive arguments (``@...``) lose their marker.

    A value that does not open (the configured key is not the one that sealed it) refuses
    the launch; the details go to the service log, not to the job's reason."""
    try:
        properties = open_job_properties(secrets, job.id, job.properties)
        arguments = open_job_arguments(secrets, job.id, job.arguments)
    except SecretKeyError as exc:
        log.error("job.secrets_unreadable", extra={"job_id": job.id, "error": exc})
        raise EngineRefused(
            "its secret properties do not open with this service's key (see the service log)"
        ) from None
    return JobSpec(
        job_id=job.id,
        job_type=job.job_type,
        job_name=job.job_name,
        arguments=engine_arguments(arguments),  # a sensitive one without its "@"
        properties=properties,
    )


def plain_arguments(job: Job, secrets: SecretBox) -> list[str]:
    """The job's arguments as submitted (sensitive ones opened, ``@`` kept), for masking free
    text; the stored form when they do not open (then the engine never got them either)."""
    try:
        return open_job_arguments(secrets, job.id, job.arguments)
    except SecretKeyError:
        return list(job.arguments)


def timeout_of(job: Job) -> int | None:
    try:
        return job_timeout_seconds(job.properties)
    except InvalidParameter:
        return None  # validated at submit; an old record must not stop the supervisor


def drop_secret_files(workdir: Path, engine: EngineAdapter | None) -> None:
    """Remove the files of an ended job that may hold secrets: the launch record (its
    environment) and what its engine declares (runner configs, Hadoop site files...)."""
    names = (jobdir.LAUNCH, *(engine.secret_files if engine is not None else ()))
    jobdir.drop_secret_files(workdir, names)


def retry_policy_of(job: Job) -> RetryPolicy:
    """The job's retries; none for an SQL execution (``deleted_ms < 0``), which never retries,
    or an old record whose values no longer parse (validated at submit)."""
    if job.deleted_ms < 0:
        return RetryPolicy()
    try:
        return retry_policy(job.properties)
    except InvalidParameter:
        return RetryPolicy()


#: What a run leaves that must not be taken for the next attempt's (its logs stay). The
#: launch record too: a claim of the next attempt that a crash stops before its launch must
#: look never started (requeued), not started and lost.
_RUN_RESULTS = (
    jobdir.EXIT,
    jobdir.LAUNCH,
    jobdir.SHIM_STARTED,
    jobdir.SQL_RESULTS,
    jobdir.PROGRESS,
)


def clear_run_results(workdir: Path) -> None:
    """Remove the exit status, launch record, SQL rows and progress a failed attempt left in
    its directory, so a retry starts from none (a symlink is removed, never followed)."""
    for name in _RUN_RESULTS:
        try:
            (workdir / name).unlink()
        except (FileNotFoundError, IsADirectoryError, PermissionError):
            continue


def fresh_run_dir(workdir: Path) -> None:
    """Empty a retried job's directory of everything its failed attempt left but its logs
    (which go on): engine records, event logs, staged files, results. So the next attempt is
    a fresh run, and nothing of the last one (a Spark event log, an application id, SQL rows)
    is read as the new one's. A symlink is removed, never followed."""
    try:
        entries = list(os.scandir(workdir))
    except OSError:
        return
    for entry in entries:
        if entry.name in jobdir.JOB_LOGS:
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                os.unlink(entry.path)
        except OSError:
            log.warning("job.retry_leftover", extra={"path": entry.path})
