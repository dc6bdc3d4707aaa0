"""Retention: ended jobs past their cluster's retention go the way of a batch-deleted job.

Each check reads a cluster's expired ended jobs, oldest first, :data:`BATCH` at a time and
at most :data:`BATCHES_PER_PASS` batches per supervisor pass, and hands them to the purge
(``supervisor/purge.py``), which removes their job directory, engine leftovers, record, events
and SQL results exactly as after a batch delete: one purge path, many short transactions the
API's own writes slip between. Expired jobs are not marked deleted first: that UPDATE rewrote
every row and its list indexes once more before the DELETE (bench P10: it cost ten times the
DELETE). Only ended jobs are read (a terminal state never changes), and a job whose files are
on a live peer's disk, or whose processes linger, is skipped here and taken by that peer or a
later pass.

A cluster's ``retention_days`` / ``retention_max_jobs`` override the service-wide
``MRS_JOBS_RETENTION_DAYS`` / ``MRS_JOBS_RETENTION_MAX_JOBS``; 0 keeps jobs forever (no limit).
Audit rows have their own, longer ``MRS_JOBS_AUDIT_RETENTION_DAYS``; idempotency keys of
submits expire after :data:`SUBMIT_KEY_TTL_MS`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from mrs_jobs.domain.clusterconfig import settings_of
from mrs_jobs.domain.job import Job
from mrs_jobs.errors import InvalidParameter
from mrs_jobs.settings import Settings
from mrs_jobs.store import Store
from mrs_jobs.store import jobs as job_store
from mrs_jobs.store import retention as ret_store
from mrs_jobs.store.tenants import Cluster, list_clusters

__all__ = [
    "BATCH",
    "BATCHES_PER_PASS",
    "COUNTS",
    "DAY_MS",
    "SUBMIT_KEY_TTL_MS",
    "Policy",
    "Purge",
    "Retention",
    "Source",
    "policy_of",
]

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
#: Idempotency keys of submits are kept a day: a client retries within minutes, not days.
SUBMIT_KEY_TTL_MS = DAY_MS
BATCH = 200  # rows per transaction: a short hold of the write lock (bench P10)
BATCHES_PER_PASS = 10


class _Counts:
    """Jobs this process's retention purged, for ``/metrics`` (a process-wide
    counter, as a Prometheus client's own: it starts at zero with the process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.jobs = 0

    def add(self, n: int) -> None:
        with self._lock:
            self.jobs += n


COUNTS = _Counts()


@dataclass(frozen=True)
class Policy:
    cluster_id: str
    days: int  # 0: no limit by age
    max_jobs: int  # 0: no limit by count


def policy_of(cluster: Cluster, settings: Settings) -> Policy:
    """The cluster's own retention where it sets one, else the service-wide default."""
    days, max_jobs = settings.retention_days, settings.retention_max_jobs
    try:
        typed = settings_of(cluster.kind, cluster.config)
    except InvalidParameter:  # a stored config that no longer passes: the defaults apply
        log.warning("retention.cluster_config_invalid", extra={"cluster_id": cluster.id})
    else:
        days = days if typed.retention_days is None else typed.retention_days
        max_jobs = max_jobs if typed.retention_max_jobs is None else typed.retention_max_jobs
    return Policy(cluster.id, days, max_jobs)


class Source(Protocol):
    """What retention reads: the store and the settings now (a SupervisorContext is one)."""

    store: Store
    settings: Settings


class Purge(Protocol):
    """Removes ended jobs as a batch delete's purge does; returns how many it removed."""

    def __call__(self, jobs: list[Job]) -> int: ...


class Retention:
    """One check every ``retention_interval_seconds``, or at once while a backlog remains."""

    def __init__(self, ctx: Source, purge: Purge) -> None:
        self.ctx = ctx
        self.purge = purge
        self._next_check = 0.0

    @property
    def store(self) -> Store:
        return self.ctx.store

    @property
    def settings(self) -> Settings:
        return self.ctx.settings

    def step(self) -> None:
        now = time.monotonic()
        if now < self._next_check:
            return
        backlog = self.run(job_store.now_ms())
        self._next_check = now + (0.0 if backlog else self.settings.retention_interval_seconds)

    def run(self, at_ms: int, batches: int = BATCHES_PER_PASS) -> bool:
        """Purge up to ``batches`` batches of expired ended jobs and expire old audit rows and
        submit keys as of ``at_ms``; True when more are left for the next pass."""
        with self.store.read() as conn:
            clusters = list_clusters(conn)
        budget = batches
        for policy in (policy_of(c, self.settings) for c in clusters):
            cutoff = self._cutoff(policy, at_ms)
            more, after = cutoff > 0, None
            while more and budget > 0:
                budget -= 1
                more, after = self._purge_batch(policy.cluster_id, cutoff, after)
            if more:  # this pass's batches are spent and this cluster has more
                return True
        return self._expire_others(at_ms)

    def _purge_batch(
        self, cluster_id: str, cutoff: int, after: tuple[int, str] | None
    ) -> tuple[bool, tuple[int, str] | None]:
        """Purge the oldest expired ended jobs after ``after`` (a job skipped now is not read
        again this pass); True and where to go on from if the batch was full."""
        with self.store.read() as conn:
            batch = ret_store.expired_jobs(conn, cluster_id, cutoff, BATCH, after=after)
        purged = self.purge(batch) if batch else 0
        if purged:
            COUNTS.add(purged)
            log.info("retention.purged", extra={"cluster_id": cluster_id, "count": purged})
        last = batch[-1] if batch else None
        return len(batch) >= BATCH, (last.finished_ms, last.id) if last else None

    def _cutoff(self, policy: Policy, at_ms: int) -> int:
        """Jobs that ended before this are expired (0: none is)."""
        cutoff = at_ms - policy.days * DAY_MS if policy.days > 0 else 0
        if policy.max_jobs > 0:
            with self.store.read() as conn:
                newest = ret_store.keep_newest_cutoff(conn, policy.cluster_id, policy.max_jobs)
            cutoff = max(cutoff, newest)
        return cutoff

    def _expire_others(self, at_ms: int) -> bool:
        """One batch of old audit rows and one of stale submit keys; True if either was full."""
        full = False
        audit_days = self.settings.audit_retention_days
        with self.store.write() as conn:
            if audit_days > 0:
                gone = ret_store.delete_old_audit(conn, at_ms - audit_days * DAY_MS, BATCH)
                full = gone >= BATCH
            keys = ret_store.delete_old_submit_keys(conn, at_ms - SUBMIT_KEY_TTL_MS, BATCH)
        return full or keys >= BATCH
