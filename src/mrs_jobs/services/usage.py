"""What a cluster's jobs used (``GET .../job-usage``): the roll-up by user, job type or day."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from mrs_jobs.domain.usage import UsageQuery
from mrs_jobs.errors import ClusterNotFound
from mrs_jobs.services.context import Caller
from mrs_jobs.store import Store
from mrs_jobs.store import usage as usage_store
from mrs_jobs.store.tenants import get_cluster
from mrs_jobs.store.usage import DAY_MS, UsageRow

__all__ = ["JobUsage", "UsageService"]

log = logging.getLogger(__name__)


def _day(days: int) -> str:
    return datetime.fromtimestamp(days * DAY_MS / 1000, UTC).strftime("%Y-%m-%d")


def _figures(
    jobs: int, measured: int, cpu: float, peak: int | None, memory: float
) -> dict[str, object]:
    return {
        "job_count": jobs,
        "measured_job_count": measured,
        "cpu_seconds": round(cpu, 3),
        "peak_memory_mb": peak,
        "memory_mb_seconds": round(memory, 3),
    }


def _row(r: UsageRow) -> dict[str, object]:
    return _figures(r.jobs, r.measured, r.cpu_seconds, r.peak_memory_mb, r.memory_mb_seconds)


@dataclass(frozen=True)
class JobUsage:
    query: UsageQuery
    rows: list[UsageRow]

    def to_json(self) -> dict[str, object]:
        """The response body (docs/api.md "Job usage"): each group, and their total."""
        day = self.query.group == "day"
        groups = [{"group": _day(int(r.key)) if day else str(r.key), **_row(r)} for r in self.rows]
        peaks = [r.peak_memory_mb for r in self.rows if r.peak_memory_mb is not None]
        total = _figures(
            sum(r.jobs for r in self.rows),
            sum(r.measured for r in self.rows),
            sum(r.cpu_seconds for r in self.rows),
            max(peaks) if peaks else None,
            sum(r.memory_mb_seconds for r in self.rows),
        )
        return {
            "since": self.query.since_ms,
            "until": self.query.until_ms,
            "group_by": self.query.group,
            "groups": groups,
            "total": total,
        }


class UsageService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def rollup(self, caller: Caller, cluster_id: str, query: UsageQuery) -> JobUsage:
        """The caller's cluster's ended jobs in the query's window, summed per group."""
        with self.store.read() as conn:
            if get_cluster(conn, caller.project_id, cluster_id) is None:
                raise ClusterNotFound(cluster_id)
            rows = usage_store.usage_by(
                conn, caller.project_id, cluster_id, query.since_ms, query.until_ms, query.group
            )
        log.info(
            "usage.rolled_up",
            extra={"cluster_id": cluster_id, "group_by": query.group, "groups": len(rows)},
        )
        return JobUsage(query, rows)
