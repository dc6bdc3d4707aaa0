"""The clusters of the jobs being supervised, as configured now (cached a few seconds).

Engines ask the cluster where its applications live (to cancel them, to ask their state)
rather than trust a file in the job's directory, which the job's own user may write.
"""

from __future__ import annotations

import time

from mrs_jobs.domain.job import Job
from mrs_jobs.engines.base import ClusterSpec
from mrs_jobs.engines.registry import cluster_spec
from mrs_jobs.store.tenants import get_cluster
from mrs_jobs.supervisor.context import SupervisorContext

__all__ = ["ClusterCache"]

_CLUSTER_CACHE_S = 10.0
_MAX_ENTRIES = 1000


class ClusterCache:
    def __init__(self, ctx: SupervisorContext) -> None:
        self.ctx = ctx
        self._entries: dict[tuple[str, str], tuple[float, ClusterSpec | None]] = {}

    def of(self, job: Job) -> ClusterSpec | None:
        """The job's cluster as configured now; None when it no longer exists."""
        key = (job.project_id, job.cluster_id)
        now = time.monotonic()
        cached = self._entries.get(key)
        if cached is not None and now - cached[0] < _CLUSTER_CACHE_S:
            return cached[1]
        with self.ctx.store.read() as conn:
            row = get_cluster(conn, job.project_id, job.cluster_id)
        spec = cluster_spec(row.id, row.kind, row.config, self.ctx.settings) if row else None
        if len(self._entries) > _MAX_ENTRIES:
            self._entries.clear()
        self._entries[key] = (now, spec)
        return spec
