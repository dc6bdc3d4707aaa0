"""What an ended job used: the columns ``cpu_seconds`` and ``peak_memory_mb`` its ending writes.

The shim measured the run's own processes and left the figures in the exit record (so a
restart of the service loses nothing); the job's engine may answer with its cluster's figures
instead (``EngineAdapter.usage``: a YARN application's report). A job that ran more than once
(a retry) adds each attempt's CPU seconds to the last and keeps the largest peak.
"""

from __future__ import annotations

from pathlib import Path

from mrs_jobs.domain.job import Job
from mrs_jobs.engines.base import JobSpec, Usage, call_hook
from mrs_jobs.errors import InvalidParameter
from mrs_jobs.runtime.jobdir import read_launch
from mrs_jobs.runtime.process import read_exit
from mrs_jobs.supervisor.clusters import ClusterCache
from mrs_jobs.supervisor.context import SupervisorContext

__all__ = ["measured", "usage_values"]


def measured(workdir: Path) -> Usage:
    """What the shim recorded of the run's processes in its exit record (Usage() if none)."""
    status = read_exit(workdir)
    if status is None:
        return Usage()
    return Usage(cpu_seconds=status.cpu_seconds, peak_memory_mb=status.peak_memory_mb)


def _engine_usage(ctx: SupervisorContext, clusters: ClusterCache, job: Job, local: Usage) -> Usage:
    """The engine's answer (its ``usage`` hook), ``local`` when it has none to give."""
    engine = ctx.registry.for_type(job.job_type)
    workdir = Path(job.workdir or "")
    launch = read_launch(workdir) if job.workdir else None
    if engine is None or launch is None:
        return local
    try:
        cluster = clusters.of(job)
    except InvalidParameter:  # its settings no longer parse: ask with what the files say
        cluster = None
    # No secrets are opened for this: the hook needs the job's id and type, not its values.
    spec = JobSpec(job.id, job.job_type, job.job_name, [], {})
    args = (spec, workdir, launch, job.app_id or None, cluster, local)
    return call_hook(engine.usage, *args, default=local, job_id=job.id)


def usage_values(ctx: SupervisorContext, clusters: ClusterCache, job: Job) -> dict[str, object]:
    """The ``jobs`` columns that record what ``job`` used, to set with its ending ({} when
    nothing is known, so earlier attempts' figures stay as they were)."""
    local = measured(Path(job.workdir)) if job.workdir else Usage()
    used = _engine_usage(ctx, clusters, job, local)
    values: dict[str, object] = {}
    if used.cpu_seconds is not None:
        values["cpu_seconds"] = round(used.cpu_seconds + (job.cpu_seconds or 0.0), 3)
    if used.peak_memory_mb is not None:
        values["peak_memory_mb"] = max(used.peak_memory_mb, job.peak_memory_mb or 0)
    return values
