"""Who an engine process runs as, and the resource limits it runs under.

A job can run as an unprivileged OS user (``run_as_user`` in the cluster config, else the
``MRS_JOBS_JOB_USER`` setting) when the service runs as root, and under ``setrlimit`` limits
(``limit_address_space_mb``, ``limit_cpu_seconds``, ``limit_open_files``, ``limit_processes``
in the cluster config, else the ``MRS_JOBS_JOB_LIMIT_*`` settings). Nothing is limited and
nobody is switched to unless configured: JVM engines reserve far more address space than they
use and run dozens of threads (which count as processes), so no default fits every engine.

The service resolves all of it here, once per launch; ``ProcessTable.launch`` records the
result in ``launch.json`` and the shim applies it in the engine's child process.

Semantics worth knowing:

- ``limit_processes`` is RLIMIT_NPROC: it counts every process *and thread* of the job's user,
  not of the job, so jobs that share a user share the budget; the kernel does not enforce it
  for root, so it only means something together with a job user.
- ``limit_cpu_seconds``: the engine gets SIGXCPU at the limit and SIGKILL
  ``CPU_KILL_GRACE_SECONDS`` of CPU time later; the limit is per process, not per job.
- ``limit_address_space_mb`` is RLIMIT_AS (virtual memory), per process.
- A value of ``0`` or ``unlimited`` in a cluster config lifts a limit the settings set.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from mrs_jobs.engines.base import ClusterSpec, EngineRefused
from mrs_jobs.runtime.identity import JobUser, ResourceLimits, prepare_job_dir, resolve_user
from mrs_jobs.settings import Settings

__all__ = [
    "CPU_KILL_GRACE_SECONDS",
    "LIMIT_KEYS",
    "JobProcessOptions",
    "JobUser",
    "ResourceLimits",
    "job_process_options",
    "prepare_job_dir",
    "resolve_user",
]

log = logging.getLogger(__name__)

CPU_KILL_GRACE_SECONDS = 5

# cluster config key -> (Settings attribute, rlimit name written to launch.json, unit factor)
LIMIT_KEYS: dict[str, tuple[str, str, int]] = {
    "limit_address_space_mb": ("job_limit_address_space_mb", "RLIMIT_AS", 1024 * 1024),
    "limit_cpu_seconds": ("job_limit_cpu_seconds", "RLIMIT_CPU", 1),
    "limit_open_files": ("job_limit_open_files", "RLIMIT_NOFILE", 1),
    "limit_processes": ("job_limit_processes", "RLIMIT_NPROC", 1),
}
_UNLIMITED = {"0", "unlimited", "none", "off"}
_warned_root_without_user = False


@dataclass(frozen=True)
class JobProcessOptions:
    user: JobUser | None = None
    limits: ResourceLimits = ResourceLimits()


def _limit(key: str, cluster: ClusterSpec, settings: Settings) -> int | None:
    attr, _, factor = LIMIT_KEYS[key]
    raw = getattr(cluster.settings, key)  # one of the limit_* fields
    if raw is None or str(raw).strip() == "":
        value = getattr(settings, attr, None)
        return None if value is None or value <= 0 else int(value) * factor
    text = str(raw).strip().lower()
    if text in _UNLIMITED:
        return None
    try:
        value = int(text)
    except ValueError:
        raise EngineRefused(
            f"the cluster setting {key} must be a positive integer or 'unlimited'"
        ) from None
    if value < 0:
        raise EngineRefused(f"the cluster setting {key} must be a positive integer or 'unlimited'")
    return value * factor if value else None


def job_process_options(cluster: ClusterSpec, settings: Settings) -> JobProcessOptions:
    """The user and limits a job of ``cluster`` runs with; EngineRefused when misconfigured.

    The user is dropped (None) when it is the service's own user, so a non-root service can
    name itself. Naming another user needs the service to run as root.
    """
    global _warned_root_without_user
    limits = ResourceLimits(
        address_space_bytes=_limit("limit_address_space_mb", cluster, settings),
        cpu_seconds=_limit("limit_cpu_seconds", cluster, settings),
        open_files=_limit("limit_open_files", cluster, settings),
        processes=_limit("limit_processes", cluster, settings),
    )
    configured = cluster.settings.run_as_user or (
        (getattr(settings, "job_user", None) or "").strip()
    )
    euid = os.geteuid()
    if not configured:
        if euid == 0 and not _warned_root_without_user:
            _warned_root_without_user = True
            log.warning(
                "job.runs_as_root",
                extra={
                    "why": "the service runs as root and no job user is configured "
                    "(MRS_JOBS_JOB_USER or the cluster's run_as_user): jobs run as root"
                },
            )
        return JobProcessOptions(None, limits)
    try:
        user = resolve_user(configured)
    except ValueError:
        raise EngineRefused(f"the configured job user {configured!r} does not exist") from None
    if user.uid == euid:
        return JobProcessOptions(None, limits)
    if euid != 0:
        raise EngineRefused(
            f"jobs are configured to run as {user.name!r}, which needs the service to run as root"
        )
    return JobProcessOptions(user, limits)
