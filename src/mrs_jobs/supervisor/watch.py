"""Watching our launched jobs each pass: observe the running ones, end the ones whose run
ended, hand detached applications to the tracker, and settle claims that never launched."""

from __future__ import annotations

import logging
from pathlib import Path

from mrs_jobs.domain.job import Job
from mrs_jobs.runtime import jobdir
from mrs_jobs.runtime.jobdir import read_launch
from mrs_jobs.runtime.process import read_exit
from mrs_jobs.store import supervision as sup_store
from mrs_jobs.supervisor.context import SupervisorContext
from mrs_jobs.supervisor.detached import DetachedTracker
from mrs_jobs.supervisor.ending import Finisher
from mrs_jobs.supervisor.jobfiles import handle_of
from mrs_jobs.supervisor.marks import Marks
from mrs_jobs.supervisor.observe import Observer
from mrs_jobs.supervisor.recovery import Recovery

__all__ = ["Watcher"]

log = logging.getLogger(__name__)

NEVER_STARTED = "the service stopped before the engine was started"


class Watcher:
    def __init__(
        self,
        ctx: SupervisorContext,
        *,
        marks: Marks,
        observer: Observer,
        finisher: Finisher,
        detached: DetachedTracker,
        recovery: Recovery,
    ) -> None:
        self.ctx = ctx
        self.marks = marks
        self.observer = observer
        self.finisher = finisher
        self.detached = detached
        self.recovery = recovery

    def step(self) -> None:
        with self.ctx.store.read() as conn:
            owned = sup_store.live_owned(conn, self.ctx.id)
        ids = {job.id for job in owned}
        self.observer.keep_only(ids)
        self.detached.keep_only(ids)
        for job in owned:
            if handle_of(job) is None:
                self._unlaunched(job)
            else:
                self._launched(job)

    def _launched(self, job: Job) -> None:
        handle = handle_of(job)
        if handle is not None and self.ctx.table.is_running(handle):
            self.observer.observe(job)
            return
        if self.marks.sweep(job.id):
            return  # the shim is gone but some of the job's processes were not: next pass
        workdir = Path(job.workdir or "")
        status = read_exit(workdir)
        launch = read_launch(workdir)
        if launch is not None and launch.detached and status is not None and status.succeeded:
            self.detached.track(job, launch)  # the launcher handed it to its engine
            return
        self.observer.observe(job, force=True)
        self.finisher.finish(job, status)

    def _unlaunched(self, job: Job) -> None:
        """Claimed but no pid recorded (a crash in between). A shim still there (found by the
        job's marker) is watched from now. Else, without a launch record, or with one but no
        sign that its shim ever ran (``shim.started``, written before the engine starts), the
        engine provably never started: the job goes back to the queue. Otherwise it may have
        run, and is never run twice."""
        workdir = Path(job.workdir) if job.workdir else None
        status = read_exit(workdir) if workdir is not None else None
        if status is not None:  # it ran and ended while the service was down
            launch = read_launch(workdir) if workdir is not None else None
            if launch is not None and launch.detached and status.succeeded:
                self.detached.track(job, launch)
            else:
                self.finisher.finish(job, status)
            return
        launched = workdir is not None and (workdir / jobdir.LAUNCH).exists()
        if launched and self.recovery.reattach(job):
            return  # its launcher died before recording the pid: watched from now
        shim_ran = launched and workdir is not None and (workdir / jobdir.SHIM_STARTED).exists()
        asked = job.kill_requested_ms > 0 or job.deleted_ms > 0
        if not asked and not shim_ran:
            with self.ctx.store.write() as conn:
                if sup_store.requeue(conn, job.id, self.ctx.id):
                    log.info("job.requeued", extra={"job_id": job.id, "reason": "never_started"})
                    return
        self.finisher.finish(job, None, lost_reason=NEVER_STARTED)
