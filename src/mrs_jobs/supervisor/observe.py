"""Reading a running job through its engine: application id, launcher id, tracking URL,
progress, and the moment it really started (ACCEPTED -> RUNNING)."""

from __future__ import annotations

import time
from pathlib import Path

from mrs_jobs.domain.job import Job
from mrs_jobs.domain.states import JobState
from mrs_jobs.engines.base import Observation, call_hook
from mrs_jobs.runtime.jobdir import read_launch
from mrs_jobs.store import jobs as job_store
from mrs_jobs.store import supervision as sup_store
from mrs_jobs.supervisor.context import SupervisorContext
from mrs_jobs.supervisor.jobfiles import spec_of

__all__ = ["Observer", "record_progress", "running_progress"]

_OBSERVE_EVERY_S = 1.0
_RUNNING_MAX = 99.0  # 100 is recorded only when the job succeeded (supervisor/ending.py)
_MIN_RISE = 0.5  # smaller rises wait for the next observation (no write transaction for them)


class Observer:
    def __init__(self, ctx: SupervisorContext) -> None:
        self.ctx = ctx
        self._last: dict[str, float] = {}

    def keep_only(self, job_ids: set[str]) -> None:
        """Forget the pacing of jobs no longer watched here."""
        for job_id in set(self._last) - job_ids:
            del self._last[job_id]

    def observe(self, job: Job, force: bool = False) -> None:
        """Ask the job's engine what it sees (at most once a second unless ``force``) and
        record what changed; nothing new costs no write transaction."""
        now = time.monotonic()
        if not force and now - self._last.get(job.id, 0.0) < _OBSERVE_EVERY_S:
            return
        self._last[job.id] = now
        engine = self.ctx.registry.for_type(job.job_type)
        workdir = Path(job.workdir or "")
        launch = read_launch(workdir)
        if engine is None or launch is None:
            return
        spec = spec_of(job, self.ctx.secrets)
        obs = call_hook(engine.observe, spec, workdir, launch, default=Observation(), job_id=job.id)
        values = _changes(job, obs)
        record_progress(self.ctx, job, values, started=obs.running, progress=obs.progress)


def record_progress(
    ctx: SupervisorContext,
    job: Job,
    values: dict[str, object],
    *,
    started: bool,
    progress: float | None = None,
) -> None:
    """Store what an engine says of a running job (ids, progress) and, the first time it says
    the application runs, move it ACCEPTED -> RUNNING; nothing new costs no write transaction
    (on SQLite it would take the lock for nothing).

    Progress only rises while the job runs, and stays below 100 (only a success makes it 100,
    in ``ending``): a lower value than the stored one is not written, and the UPDATE itself
    keeps the higher value when another writer raised it meanwhile."""
    started = started and job.state == JobState.ACCEPTED
    rise = running_progress(progress)
    if rise is not None and rise - job.progress < _MIN_RISE:
        rise = None
    if not values and not started and rise is None:
        return
    with ctx.store.write() as conn:
        if values:
            sup_store.set_fields(conn, job.id, **values)
        if rise is not None:
            sup_store.raise_progress(conn, job.id, rise)
        if started:
            reason, actor = "application started", f"supervisor {ctx.id}"
            job_store.transition(conn, job.id, JobState.RUNNING, reason=reason, actor=actor)


def running_progress(progress: float | None) -> float | None:
    """An engine's progress as a running job shows it: 0 to 99 (100 means succeeded)."""
    if progress is None or progress != progress:  # None or NaN
        return None
    return round(max(0.0, min(_RUNNING_MAX, float(progress))), 1)


def _changes(job: Job, obs: Observation) -> dict[str, object]:
    values: dict[str, object] = {}
    if obs.app_id and obs.app_id != job.app_id:
        values["app_id"] = obs.app_id
    if obs.launcher_id and obs.launcher_id != job.launcher_id:
        values["launcher_id"] = obs.launcher_id
    if obs.tracking_url and obs.tracking_url != job.tracking_url:
        values["tracking_url"] = obs.tracking_url
    return values
