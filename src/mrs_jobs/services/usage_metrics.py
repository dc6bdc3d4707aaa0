"""Prometheus counters of what jobs used: CPU seconds and memory MB-seconds by cluster and job
type, grown from the jobs that ended since this process started (``store/usage.py``).

Like the start-latency histograms (``metrics.py``), they follow the ``job_events`` table with a
cursor, so they only rise while the process lives and start at zero with it, whatever
retention later removes. Several instances on one PostgreSQL each count every job: aggregate
with ``max``, not ``sum``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from mrs_jobs.store import Store
from mrs_jobs.store import usage as usage_store
from mrs_jobs.store.jobs import now_ms
from mrs_jobs.store.observability import max_event_id

__all__ = ["UsageCollector"]

log = logging.getLogger(__name__)

_Key = tuple[str, str, str]  # project, cluster, job type


class UsageCollector(Collector):
    def __init__(self, store: Store) -> None:
        self.store = store
        self._lock = threading.Lock()
        self._cursor = 0
        self._since_ms = now_ms()
        self._totals: dict[_Key, list[float]] = {}  # jobs, cpu seconds, memory MB-seconds

    def _advance(self) -> None:
        """Add the jobs ended since the last scrape (a store failure: next time)."""
        try:
            with self.store.read() as conn:
                last = max_event_id(conn)
                rows = (
                    usage_store.ended_usage(conn, self._cursor, last, self._since_ms)
                    if last > self._cursor
                    else []
                )
        except Exception as exc:  # the job collector reports store_up 0; counters hold still
            log.warning("metrics.usage_unreadable", extra={"error": exc.__class__.__name__})
            return
        for r in rows:
            agg = self._totals.setdefault((r.project_id, r.cluster_id, r.job_type), [0, 0, 0])
            agg[0] += r.jobs
            agg[1] += r.cpu_seconds
            agg[2] += r.memory_mb_seconds
        # SQLite may hand out a purged event's id again: follow the table back down.
        self._cursor = last

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            self._advance()
            totals = sorted(self._totals.items())
        labels = ["project_id", "cluster_id", "job_type"]
        jobs = CounterMetricFamily(
            "mrs_jobs_jobs_ended",
            "Jobs that ended (FINISHED, FAILED, KILLED) since this process started.",
            labels=labels,
        )
        cpu = CounterMetricFamily(
            "mrs_jobs_job_cpu_seconds",
            "CPU seconds used by the jobs that ended (their cpu_seconds; YARN: vcore-seconds).",
            labels=labels,
        )
        memory = CounterMetricFamily(
            "mrs_jobs_job_memory_mb_seconds",
            "Memory of the jobs that ended, in MB-seconds: each job's peak_memory_mb times its "
            "run time (YARN: its memorySeconds).",
            labels=labels,
        )
        for key, (n, cpu_s, mem) in totals:
            jobs.add_metric(list(key), n)
            cpu.add_metric(list(key), cpu_s)
            memory.add_metric(list(key), mem)
        yield from (jobs, cpu, memory)
