"""Our jobs' processes found by their marker, and the stragglers killed by it.

Every process of a job carries ``MRS_JOBS_INSTANCE`` and ``MRS_JOBS_JOB_ID`` in its
environment, whatever group or session it moved to (PySpark's workers leave the launcher's).
The /proc scan costs a few ms, so it is done once per pass (:meth:`Marks.reset`).
"""

from __future__ import annotations

import logging

from mrs_jobs.runtime.process import find_marked_processes, kill_strays
from mrs_jobs.supervisor.context import INSTANCE_VARIABLE

__all__ = ["Marks"]

log = logging.getLogger(__name__)


class Marks:
    def __init__(self, instance: str) -> None:
        self.instance = instance
        self._cache: dict[int, str] | None = None

    def reset(self) -> None:
        """Forget the last scan: the next question scans /proc again."""
        self._cache = None

    def marked(self) -> dict[int, str]:
        """pid -> job id of live processes carrying our marker (one /proc scan per pass)."""
        if self._cache is None:
            self._cache = find_marked_processes(INSTANCE_VARIABLE, self.instance)
        return self._cache

    def live_jobs(self) -> set[str]:
        """Job ids that still have a live process carrying our marker."""
        return set(self.marked().values())

    def sweep(self, job_id: str) -> int:
        """SIGKILL a job's processes still alive after its shim, found by the marker in their
        environment (never by a bare pid), each with its whole box. Returns how many."""
        marked = self.marked()
        pids = [pid for pid, owner in marked.items() if owner == job_id]
        for pid in pids:
            del marked[pid]
        if pids:
            log.warning("job.straggler_killed", extra={"job_id": job_id, "pids": sorted(pids)})
        return kill_strays(pids)
