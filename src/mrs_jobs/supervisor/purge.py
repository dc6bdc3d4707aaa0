"""Purging deleted jobs: their rows and their directories, once their processes are dead.

A deleted job's directory leaves its place before its row goes (a crash in between leaves a
row to purge again, never a directory nobody knows): it is renamed into the data dir's trash
(``trash.py``), the rows of the whole batch are deleted, and the trash is emptied after them,
so the rows go at the speed of the database, not of the filesystem. The next pass empties
whatever a crash left in the trash. A job whose files are on a live peer's disk is left to
that peer; one whose processes still run waits for its kill.
"""

from __future__ import annotations

import logging
import shutil  # noqa: F401 - the crash tests cut the purge short through it
import time
from collections.abc import Callable
from pathlib import Path

from mrs_jobs.domain.job import Job
from mrs_jobs.domain.states import JobState
from mrs_jobs.engines.base import call_hook
from mrs_jobs.store import jobs as job_store
from mrs_jobs.store import supervision as sup_store
from mrs_jobs.supervisor.context import SupervisorContext
from mrs_jobs.supervisor.jobfiles import handle_of
from mrs_jobs.supervisor.marks import Marks
from mrs_jobs.supervisor.trash import Trash

__all__ = ["Purger"]

log = logging.getLogger(__name__)

_PURGE_BATCH = 500
_PURGE_BATCHES_PER_PASS = 20
#: Jobs removed per transaction: a short hold of the write lock, so the API's own writes (a
#: submit) wait for at most one of them (bench/p10_retention_purge.py measures it).
_PURGE_TX = 50
#: While at least half the burst's credit is left (see ``_BURST_S``), a transaction takes up
#: to this many: a batch delete's rows go in about as many round trips and commits as the
#: batch delete's own took (bench P1; 20 commits of 50 cost PostgreSQL ~140 ms per 1,000).
_BURST_TX = 500
#: The purge works at most a third of the time: after each chunk (its directories moved, its
#: transaction; or a chunk of the trash emptied) it pauses twice as long as the chunk took (at
#: most ``_MAX_PAUSE_S`` at once), so the API's threads, which share the database, the
#: interpreter and a core with it in ``serve``, keep two thirds: at two thirds for the purge,
#: the API's show p90 doubled during a purge of 1M jobs (bench P10); at a third it stays as
#: idle, and the purge still removes ~2,000 jobs/s. After a quiet spell, the first
#: ``_BURST_S`` of work go without pauses (a batch delete of 1,000 jobs: their rows are gone
#: at the database's speed, bench P1); the credit refills at a third of the wall time.
_PAUSE_RATIO = 2.0
_MAX_PAUSE_S = 0.1
_BURST_S = 0.5


class Pacer:
    """Work credit in seconds: refilled at ``1 / (1 + ratio)`` of the wall time up to
    ``burst``, spent by the work; a chunk that leaves it negative is followed by the pause
    that brings it back to zero (capped at ``max_pause``)."""

    def __init__(
        self,
        ratio: float = _PAUSE_RATIO,
        burst: float = _BURST_S,
        max_pause: float = _MAX_PAUSE_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.ratio, self.burst, self.max_pause = ratio, burst, max_pause
        self.clock, self.sleep = clock, sleep
        self.credit = burst
        self.at = clock()

    def available(self) -> float:
        """The credit now (refilled since the last work)."""
        refill = (self.clock() - self.at) / (1.0 + self.ratio)
        return min(self.burst, self.credit + refill)

    def pace(self, began: float) -> float:
        """After work that began at ``began`` (clock time): pause if the credit is spent;
        returns the pause."""
        now = self.clock()
        refill = (now - self.at) / (1.0 + self.ratio)
        self.credit = min(self.burst, self.credit + refill) - (now - began)
        self.credit = max(self.credit, -self.burst)  # a stall is not paid back for long
        self.at = now
        if self.credit >= 0:
            return 0.0
        pause = min(-self.credit * (1.0 + self.ratio), self.max_pause)
        self.sleep(pause)
        return pause


class Purger:
    def __init__(self, ctx: SupervisorContext, marks: Marks) -> None:
        self.ctx = ctx
        self.marks = marks
        self.trash = Trash(ctx.settings.data_dir / "trash")
        self.pacer = Pacer()

    def step(self) -> None:
        """Remove deleted jobs whose processes are confirmed dead; batch after batch while
        batches come full (a delete of 100k jobs must not take 200 passes). Then the trash
        is emptied: these jobs' directories and whatever an earlier pass left there."""
        self._step()
        self.empty_trash()

    def _step(self) -> None:
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
            self.empty_trash()
        return len(done)

    def empty_trash(self) -> None:
        """Remove the directories in the trash, a chunk at a time, paced like the purge."""
        while True:
            began = time.monotonic()
            removed = self.trash.empty(limit=_PURGE_TX)
            if removed:
                self.pacer.pace(began)
            if removed < _PURGE_TX:
                return

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
        start = 0
        while start < len(done):
            size = _BURST_TX if self.pacer.available() >= _BURST_S / 2 else _PURGE_TX
            chunk = done[start : start + size]
            start += len(chunk)
            began = time.monotonic()
            for job in chunk:  # files first: a crash after this leaves a row, purged next time
                workdir = Path(job.workdir or self.ctx.workdir(job.id))
                self._forget(job, workdir)
                self.trash.take(job.id, workdir)  # emptied after the rows (a pass later at worst)
            with self.ctx.store.write() as conn:
                job_store.purge(conn, [j.id for j in chunk])
            self.pacer.pace(began)
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
