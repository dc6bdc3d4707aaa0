"""Purging deleted jobs: their rows and their directories, once their processes are dead.

A deleted job's directory goes before its row (a crash in between leaves a row to purge again,
never a directory nobody knows). A job whose files are on a live peer's disk is left to that
peer; one whose processes still run waits for its kill.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

from mrs_jobs.domain.job import Job
from mrs_jobs.domain.states import JobState
from mrs_jobs.engines.base import call_hook
from mrs_jobs.store import jobs as job_store
from mrs_jobs.store import supervision as sup_store
from mrs_jobs.supervisor.context import SupervisorContext
from mrs_jobs.supervisor.jobfiles import handle_of
from mrs_jobs.supervisor.marks import Marks

__all__ = ["Purger"]

log = logging.getLogger(__name__)

_PURGE_BATCH = 500
_PURGE_BATCHES_PER_PASS = 20
#: Jobs removed per transaction: a short hold of the write lock, so the API's own writes (a
#: submit) wait for at most one of them (bench/p10_retention_purge.py measures it).
_PURGE_TX = 50
#: After each chunk (its files and its transaction) the purge pauses twice as long as the chunk
#: took (at most ``_MAX_PAUSE_S``), so it takes the database, the interpreter and a core (the
#: API's threads share all three in ``serve``) about a third of the time: at two thirds, the
#: API's show p90 doubled during a purge of 1M jobs (bench P10); at a third it stays as idle,
#: and the purge still removes ~2,000 jobs/s.
_PAUSE_RATIO = 2.0
_MAX_PAUSE_S = 0.1


class Purger:
    def __init__(self, ctx: SupervisorContext, marks: Marks) -> None:
        self.ctx = ctx
        self.marks = marks

    def step(self) -> None:
        """Remove deleted jobs whose processes are confirmed dead; batch after batch while
        batches come full (a delete of 100k jobs must not take 200 passes)."""
        for _ in range(_PURGE_BATCHES_PER_PASS):
            with self.ctx.store.read() as conn:
                deleted = sup_store.deleted_jobs(conn, limit=_PURGE_BATCH)
            peers = self._live_peers()
            done = [job for job in deleted if self._purgeable(job, peers)]
            if not done:
                return
            self._purge(done)
            if len(deleted) < _PURGE_BATCH or len(done) < len(deleted) // 2:
                return

    def remove(self, jobs: list[Job]) -> int:
        """Purge these jobs now (retention's expired ones) where :meth:`_purgeable`; returns how
        many went. A job skipped is left as it is for its peer or a later pass."""
        peers = self._live_peers()
        done = [job for job in jobs if self._purgeable(job, peers)]
        if done:
            self._purge(done)
        return len(done)

    def _purgeable(self, job: Job, peers: set[str]) -> bool:
        if job.state in (JobState.ACCEPTED, JobState.RUNNING):
            return False  # its owner kills and finalises it first (taken over if gone)
        if job.owner in peers and job.workdir and not Path(job.workdir).exists():
            return False  # its files are on a live peer's disk: that peer purges it
        handle = handle_of(job)
        if handle is not None and self.ctx.table.is_running(handle):
            return False  # the killer is on it; purge once it is confirmed dead
        if handle is not None and job.id in self.marks.live_jobs():
            self.marks.sweep(job.id)  # stragglers of an ended job: gone by the next pass
            return False
        return True

    def _purge(self, done: list[Job]) -> None:
        for start in range(0, len(done), _PURGE_TX):
            chunk = done[start : start + _PURGE_TX]
            began = time.monotonic()
            for job in chunk:  # files first: a crash after this leaves a row, purged next time
                workdir = Path(job.workdir or self.ctx.workdir(job.id))
                self._forget(job, workdir)
                shutil.rmtree(workdir, ignore_errors=True)
            with self.ctx.store.write() as conn:
                job_store.purge(conn, [j.id for j in chunk])
            _pause(began)
        log.info("job.purged", extra={"count": len(done)})

    def _forget(self, job: Job, workdir: Path) -> None:
        """What the job's engine kept of it elsewhere goes too (a Spark history link), while
        the job's directory still says which file is the job's."""
        engine = self.ctx.registry.for_type(job.job_type)
        if engine is not None:
            app_id = job.app_id or None
            args = (job.id, workdir, app_id, job.cluster_id)
            call_hook(engine.forget, *args, default=None, job_id=job.id)

    def _live_peers(self) -> set[str]:
        """Other supervisors heartbeating now (their jobs' files may be on their disks)."""
        since = job_store.now_ms() - int(self.ctx.settings.heartbeat_seconds * 3000)
        with self.ctx.store.read() as conn:
            return sup_store.live_supervisors(conn, since) - {self.ctx.id}


def _pause(began: float) -> None:
    """Let the API in: sleep twice as long as the work since ``began`` took (capped), so a
    purge of a million jobs is many short holds, never one long one."""
    time.sleep(min((time.monotonic() - began) * _PAUSE_RATIO, _MAX_PAUSE_S))
