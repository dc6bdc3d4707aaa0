"""Readiness and the store figures ``/metrics`` reports, each in one read transaction."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from mrs_jobs.store import Store
from mrs_jobs.store import observability as obs_store
from mrs_jobs.store.jobs import now_ms
from mrs_jobs.store.observability import ClusterLimits, JobCount, StartEvent

__all__ = ["JobSnapshot", "ObservabilityService", "Readiness"]

log = logging.getLogger(__name__)

#: A heartbeat older than this many periods means the supervisor is stuck or gone.
STALE_HEARTBEATS = 3


@dataclass(frozen=True)
class Readiness:
    ready: bool
    store: str  # ok | unreachable
    supervisor: str  # ok | stale | missing | not running here | unknown
    heartbeat_age_seconds: float | None = None

    @property
    def reason(self) -> str:
        if self.store != "ok":
            return "the job store is unreachable"
        if self.supervisor == "missing":
            return "the supervisor has not heartbeated yet"
        return f"the supervisor's heartbeat is stale ({self.heartbeat_age_seconds:.1f} s old)"


@dataclass(frozen=True)
class JobSnapshot:
    counts: list[JobCount]
    clusters: list[ClusterLimits]
    events: list[StartEvent]
    last_event_id: int
    heartbeat_age_seconds: float | None


class ObservabilityService:
    """``supervisor_id`` is the supervisor this process runs (None: it runs none)."""

    def __init__(
        self, store: Store, *, supervisor_id: str | None, heartbeat_seconds: float
    ) -> None:
        self.store = store
        self.supervisor_id = supervisor_id
        self.stale_after_ms = int(heartbeat_seconds * STALE_HEARTBEATS * 1000)

    def readiness(self) -> Readiness:
        """Ready = ``SELECT 1`` works and, if we run a supervisor, its heartbeat is fresh."""
        try:
            with self.store.read() as conn:
                obs_store.ping(conn)
                beat = (
                    obs_store.heartbeat_ms(conn, self.supervisor_id) if self.supervisor_id else None
                )
        except Exception as exc:  # any failure to reach the store means "not ready", never a 500
            log.warning("ready.store_unreachable", extra={"error": exc.__class__.__name__})
            return Readiness(False, "unreachable", "unknown")
        if self.supervisor_id is None:
            return Readiness(True, "ok", "not running here")
        if beat is None:
            return Readiness(False, "ok", "missing")
        age_ms = max(0, now_ms() - beat)
        fresh = age_ms < self.stale_after_ms
        return Readiness(fresh, "ok", "ok" if fresh else "stale", age_ms / 1000)

    def snapshot(self, *, after_event_id: int, since_ms: int) -> JobSnapshot:
        """Job counts, cluster limits and the start events after ``after_event_id``.

        Raises the store's errors (the metrics collector reports them as ``store_up 0``).
        """
        with self.store.read() as conn:
            counts = obs_store.job_counts(conn)
            limits = obs_store.cluster_limits(conn)
            last = obs_store.max_event_id(conn)
            events = (
                obs_store.start_events(conn, after_event_id, last, since_ms)
                if last > after_event_id
                else []
            )
            beat = obs_store.heartbeat_ms(conn, self.supervisor_id) if self.supervisor_id else None
        age = None if beat is None else max(0, now_ms() - beat) / 1000
        # The next scrape goes on from ``last``. SQLite may hand out a purged event's id again,
        # so the cursor follows the table back down rather than staying ahead of it.
        return JobSnapshot(counts, limits, events, last, age)
