"""Kills asked for (kill, batch delete, shutdown): cancel in the engine, TERM, then KILL.

The first pass after the ask cancels the application in its engine (a remote cluster's
application outlives its client) and sends SIGTERM to the run; once the kill grace has passed
it sends SIGKILL to the run (shim group and box, while the shim is provably ours) and sweeps
stragglers by their marker. The job ends when the watcher sees its run gone.
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path

from mrs_jobs.domain.job import Job
from mrs_jobs.engines.base import call_hook
from mrs_jobs.runtime.jobdir import read_launch
from mrs_jobs.runtime.process import signal_run
from mrs_jobs.store import jobs as job_store
from mrs_jobs.store import supervision as sup_store
from mrs_jobs.supervisor.clusters import ClusterCache
from mrs_jobs.supervisor.context import SupervisorContext
from mrs_jobs.supervisor.jobfiles import handle_of, spec_of
from mrs_jobs.supervisor.marks import Marks

__all__ = ["Killer"]

log = logging.getLogger(__name__)


class Killer:
    def __init__(self, ctx: SupervisorContext, marks: Marks, clusters: ClusterCache) -> None:
        self.ctx = ctx
        self.marks = marks
        self.clusters = clusters

    def step(self) -> None:
        """Drive every pending kill of our jobs one step."""
        now = job_store.now_ms()
        with self.ctx.store.read() as conn:
            pending = sup_store.kill_pending(conn, self.ctx.id, now)
        grace_ms = int(self.ctx.settings.kill_grace_seconds * 1000)
        for job in pending:
            handle = handle_of(job)
            if handle is None:
                continue  # not launched yet in this pass; the watcher ends it
            if job.kill_sent_ms == 0:
                self.cancel_in_engine(job)
                signal_run(handle, signal.SIGTERM)
                with self.ctx.store.write() as conn:
                    sup_store.set_fields(conn, job.id, kill_sent_ms=now)
                log.info("job.kill_sent", extra={"job_id": job.id, "signal": "TERM"})
            elif now - job.kill_sent_ms >= grace_ms:
                # The run (shim group and box) while the shim is provably ours; stragglers by
                # their marker (a bare pgid could by now belong to somebody else).
                signal_run(handle, signal.SIGKILL)
                self.marks.sweep(job.id)
                log.info("job.kill_sent", extra={"job_id": job.id, "signal": "KILL"})

    def cancel_in_engine(self, job: Job) -> None:
        """An application on a remote cluster outlives its client: cancel it there first."""
        engine = self.ctx.registry.for_type(job.job_type)
        workdir = Path(job.workdir or "")
        launch = read_launch(workdir)
        if engine is None or launch is None:
            return
        try:
            cluster = self.clusters.of(job)
            spec = spec_of(job, self.ctx.secrets)
        except Exception:
            log.exception("job.cancel_failed", extra={"job_id": job.id})
            return
        if call_hook(engine.cancel, spec, workdir, launch, cluster, default=False, job_id=job.id):
            log.info("job.cancelled_in_engine", extra={"job_id": job.id})
