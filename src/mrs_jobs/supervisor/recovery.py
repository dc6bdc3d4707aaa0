"""Coming back: adopting the jobs of supervisors that stopped heartbeating, re-attaching runs
whose pid never reached the store, and ending the processes of jobs that are no longer live.

A live job's processes are never touched here, whoever owns the job now (a peer may have
adopted it while this instance was down) and whatever process group or session they moved to,
unless they are not its current run: processes of an attempt the job has moved past (it was
retried, perhaps here again) or of a job now run by a supervisor on another host (this one was
cut off from the database long enough for a peer there to count its run as lost). Nobody
watches those; :meth:`Recovery.sweep_strays` ends them every few seconds, not only at start.
"""

from __future__ import annotations

import logging
import os
import socket

from mrs_jobs.domain.job import Job
from mrs_jobs.runtime.process import (
    JOB_ID_VARIABLE,
    find_marked_processes,
    kill_strays,
    marked_attempt,
    read_start_ticks,
)
from mrs_jobs.store import jobs as job_store
from mrs_jobs.store import supervision as sup_store
from mrs_jobs.supervisor.context import INSTANCE_VARIABLE, SupervisorContext
from mrs_jobs.supervisor.ending import Finisher
from mrs_jobs.supervisor.jobfiles import handle_of

__all__ = ["Recovery", "session_leader"]

log = logging.getLogger(__name__)


class Recovery:
    def __init__(self, ctx: SupervisorContext, finisher: Finisher) -> None:
        self.ctx = ctx
        self.finisher = finisher

    def take_over(self) -> int:
        """Jobs of supervisors that stopped heartbeating (3 periods) are never left RUNNING.

        On this host their processes can still be watched and killed: adopt them (a restart
        of this very supervisor adopts its own at once, its id being stable). On another host
        nothing here can see them: fail them with the reason, as a lost engine.
        """
        settings = self.ctx.settings
        now = job_store.now_ms()
        stale = now - int(settings.heartbeat_seconds * 3000)
        lost_after = max(settings.heartbeat_seconds * 3, settings.lost_supervisor_seconds)
        lost = now - int(lost_after * 1000)
        host = socket.gethostname()
        with self.ctx.store.read() as conn:
            orphans = sup_store.orphaned_jobs(conn, self.ctx.id, stale)
            lost_ids = (
                {j.id for j, _ in sup_store.orphaned_jobs(conn, self.ctx.id, lost)}
                if any(h not in (None, host) for _, h in orphans)
                else set()
            )
        adopted = 0
        for job, owner_host in orphans:
            if owner_host in (None, host) or job.owner == self.ctx.id:
                with self.ctx.store.write() as conn:
                    adopted += sup_store.adopt(conn, job.id, job.owner, self.ctx.id)
            elif job.id in lost_ids:  # else its host may be restarting: give it time
                reason = (
                    f"the supervisor {job.owner} on {owner_host} stopped heartbeating; "
                    "its engine process was lost"
                )
                log.warning("job.lost", extra={"job_id": job.id, "owner": job.owner})
                self.finisher.lost(job, reason)  # a failed attempt: retried if it may be
        return adopted

    def reconcile(self) -> int:
        """After a (re)start: adopt our jobs, fill in pids, end processes of ended jobs.
        Returns how many jobs were adopted."""
        adopted = self.take_over()
        marked = find_marked_processes(INSTANCE_VARIABLE, self.ctx.instance)
        by_job: dict[str, list[int]] = {}
        for pid, job_id in marked.items():
            by_job.setdefault(job_id, []).append(pid)
        with self.ctx.store.read() as conn:
            owned = {j.id: j for j in sup_store.live_owned(conn, self.ctx.id)}
            live = {j for j in by_job if j in owned or sup_store.is_live(conn, j)}
        for job in owned.values():
            if job.pid is None and job.id in by_job:
                self._record_shim(job, by_job[job.id])
        for job_id, pids in by_job.items():
            if job_id not in live:
                log.warning(
                    "supervisor.orphan_killed", extra={"job_id": job_id, "pids": sorted(pids)}
                )
                kill_strays(pids)
        self._watch_exits(list(owned))
        log.info("supervisor.reconciled", extra={"adopted": adopted, "running": len(owned)})
        return adopted

    def sweep_strays(self, marked: dict[int, str]) -> int:
        """End the processes carrying this instance's marker (``marked``: pid -> job id) that
        are no job's current run: the job ended or is gone, moved to a later attempt, or is
        run by a supervisor on another host. Returns how many processes were signalled."""
        by_job: dict[str, list[int]] = {}
        for pid, job_id in marked.items():
            if job_id:
                by_job.setdefault(job_id, []).append(pid)
        if not by_job:
            return 0
        with self.ctx.store.read() as conn:
            runs = sup_store.live_runs(conn, list(by_job))
        host = socket.gethostname()
        strays: list[int] = []
        for job_id, pids in by_job.items():
            run = runs.get(job_id)
            if run is not None and run[1] not in (None, host):
                reason = "run by a supervisor on another host"
            elif run is None:
                reason = "not live"
            else:
                old = [p for p in pids if (marked_attempt(p) or run[0]) != run[0]]
                if not old:
                    continue
                pids, reason = old, "an earlier attempt"
            log.warning(
                "supervisor.stray_killed",
                extra={"job_id": job_id, "pids": sorted(pids), "reason": reason},
            )
            strays.extend(pids)
        return kill_strays(strays) if strays else 0

    def reattach(self, job: Job) -> bool:
        """Record the shim of a launched run whose pid never reached the store, found by the
        job marker (any instance's: a peer that adopted the job sees another marker)."""
        marked = find_marked_processes(JOB_ID_VARIABLE, job.id)
        if not self._record_shim(job, list(marked)):
            return False
        log.info("job.reattached", extra={"job_id": job.id})
        return True

    def _record_shim(self, job: Job, pids: list[int]) -> bool:
        shim = session_leader(pids)
        ticks = read_start_ticks(shim) if shim is not None else None
        if shim is None or ticks is None:
            return False
        with self.ctx.store.write() as conn:
            sup_store.set_fields(conn, job.id, pid=shim, pid_start=ticks)
        if self.ctx.table.exit_watcher is not None:
            self.ctx.table.exit_watcher.watch(shim)
        return True

    def _watch_exits(self, job_ids: list[str]) -> None:
        """Re-attached runs wake the supervisor on their exit too."""
        watcher = self.ctx.table.exit_watcher
        if watcher is None:
            return
        with self.ctx.store.read() as conn:
            jobs = [job_store.get_job(conn, job_id) for job_id in job_ids]
        for job in jobs:
            handle = handle_of(job) if job is not None else None
            if handle is not None and self.ctx.table.is_running(handle):
                watcher.watch(handle.pid)


def session_leader(pids: list[int]) -> int | None:
    """The shim among a job's marked processes: the leader of the session they share."""
    sessions = set()
    for pid in pids:
        try:
            sessions.add(os.getsid(pid))
        except OSError:
            continue
    leaders = sorted(sid for sid in sessions if sid in pids)
    return leaders[0] if leaders else None
