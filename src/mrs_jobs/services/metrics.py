"""Prometheus metrics of one app: a registry of its own (tests build many apps in a process).

Request figures are recorded by the API middleware; job figures are read from the store at
scrape time by :class:`JobCollector` (one GROUP BY, the cluster limits and the start events
since the previous scrape), so no code path that changes jobs has to know about metrics.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from mrs_jobs.domain.states import JobState
from mrs_jobs.services.observability import JobSnapshot, ObservabilityService
from mrs_jobs.services.usage_metrics import UsageCollector
from mrs_jobs.services.webhook_metrics import WebhookCollector
from mrs_jobs.store.jobs import now_ms
from mrs_jobs.store.observability import StartEvent
from mrs_jobs.supervisor.retention import COUNTS as RETENTION_COUNTS

__all__ = ["AUTH_FAILURE_REASONS", "JobCollector", "Metrics"]

log = logging.getLogger(__name__)

HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
START_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)
AUTH_FAILURE_REASONS = {401: "unauthenticated", 403: "forbidden"}
_LAUNCHED = (JobState.ACCEPTED.value, JobState.RUNNING.value)


class Metrics:
    """The registry and the request-side instruments of one app."""

    def __init__(self, observability: ObservabilityService, *, version: str) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "mrs_jobs_http_requests",
            "HTTP requests by route template, method and status.",
            ["method", "route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "mrs_jobs_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method.",
            ["method", "route"],
            buckets=HTTP_BUCKETS,
            registry=r,
        )
        self.auth_failures = Counter(
            "mrs_jobs_auth_failures",
            "Requests refused by authentication (401) or for another project (403).",
            ["reason"],
            registry=r,
        )
        for reason in AUTH_FAILURE_REASONS.values():
            self.auth_failures.labels(reason)  # exported as 0 before the first failure
        Gauge("mrs_jobs_build_info", "Version of the service.", ["version"], registry=r).labels(
            version
        ).set(1)
        self.jobs = JobCollector(observability)
        r.register(self.jobs)
        r.register(UsageCollector(observability.store))  # what jobs used (usage_metrics.py)
        r.register(WebhookCollector(observability.store))  # webhook_metrics.py
        ProcessCollector(registry=r)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)
        reason = AUTH_FAILURE_REASONS.get(status)
        if reason is not None:
            self.auth_failures.labels(reason).inc()

    def render(self) -> bytes:
        """The text exposition; runs the store queries, so call it off the event loop."""
        return generate_latest(self.registry)


@dataclass
class _Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * len(START_BUCKETS))
    total: int = 0
    sum: float = 0.0

    def observe(self, seconds: float) -> None:
        for i, bound in enumerate(START_BUCKETS):
            if seconds <= bound:
                self.counts[i] += 1
        self.total += 1
        self.sum += seconds

    def buckets(self) -> list[tuple[str, float]]:
        out = [(str(b), float(c)) for b, c in zip(START_BUCKETS, self.counts, strict=True)]
        return [*out, ("+Inf", float(self.total))]


class JobCollector(Collector):
    """Job gauges and start-latency histograms, computed from the store when scraped.

    The histograms grow from the ``job_events`` rows written since this process started
    (a cursor on the event id), so they behave like any counter: they start at zero with the
    process. Several instances on one PostgreSQL each report every job: aggregate with
    ``max``, not ``sum``.
    """

    def __init__(self, observability: ObservabilityService) -> None:
        self.observability = observability
        self._lock = threading.Lock()
        self._cursor = 0
        self._since_ms = now_ms()
        self._queue_wait: dict[str, _Histogram] = {}
        self._engine_start: dict[str, _Histogram] = {}

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            try:
                snap = self.observability.snapshot(
                    after_event_id=self._cursor, since_ms=self._since_ms
                )
            except Exception as exc:  # a scrape must still answer, with store_up 0
                log.warning("metrics.store_unreachable", extra={"error": exc.__class__.__name__})
                snap = None
            else:
                self._cursor = snap.last_event_id
                self._observe(snap.events)
            histograms = self._histograms()
        up = GaugeMetricFamily(
            "mrs_jobs_store_up", "1 if the last scrape could read the job store, else 0."
        )
        up.add_metric([], 1.0 if snap is not None else 0.0)
        yield up
        if snap is not None:
            yield from _job_families(snap)
        yield from histograms
        yield _retention_family()

    def _observe(self, events: Iterable[StartEvent]) -> None:
        for ev in events:
            if ev.to_state == JobState.ACCEPTED.value:
                target, since = self._queue_wait, ev.submitted_ms
            elif ev.started_ms > 0:
                target, since = self._engine_start, ev.started_ms
            else:
                continue
            target.setdefault(ev.job_type, _Histogram()).observe(max(0, ev.at_ms - since) / 1000)

    def _histograms(self) -> list[Metric]:
        launch = HistogramMetricFamily(
            "mrs_jobs_engine_launch_latency_seconds",
            "From submit to the job's engine being started in a running slot "
            "(SUBMITTED -> ACCEPTED), by job type; includes the time queued.",
            labels=["job_type"],
        )
        for job_type, h in sorted(self._queue_wait.items()):
            launch.add_metric([job_type], h.buckets(), h.sum)
        startup = HistogramMetricFamily(
            "mrs_jobs_engine_startup_seconds",
            "From the engine being started to its application running (ACCEPTED -> RUNNING), "
            "by job type.",
            labels=["job_type"],
        )
        for job_type, h in sorted(self._engine_start.items()):
            startup.add_metric([job_type], h.buckets(), h.sum)
        return [launch, startup]


def _retention_family() -> Metric:
    purged = CounterMetricFamily(
        "mrs_jobs_retention_purged_jobs",
        "Ended jobs and SQL executions this process's supervisor handed to the purge because "
        "they were past their cluster's retention.",
    )
    purged.add_metric([], float(RETENTION_COUNTS.jobs))
    return purged


def _job_families(snap: JobSnapshot) -> Iterator[Metric]:
    scope = ["project_id", "cluster_id"]
    jobs = GaugeMetricFamily(
        "mrs_jobs_jobs",
        "Jobs visible through the API, by cluster, job type and state.",
        labels=[*scope, "job_type", "state"],
    )
    deleting = GaugeMetricFamily(
        "mrs_jobs_jobs_deleting",
        "Batch-deleted jobs not purged yet (engine being killed, or files being removed).",
        labels=scope,
    )
    queued = GaugeMetricFamily(
        "mrs_jobs_queue_depth", "Jobs waiting for a running slot (SUBMITTED).", labels=scope
    )
    queue_max = GaugeMetricFamily(
        "mrs_jobs_queue_max", "Queue limit of the cluster (max_queued).", labels=scope
    )
    used = GaugeMetricFamily(
        "mrs_jobs_running_slots_used",
        "Running slots taken (ACCEPTED or RUNNING jobs, batch-deleted ones still stopping "
        "included).",
        labels=scope,
    )
    slots = GaugeMetricFamily(
        "mrs_jobs_running_slots_max", "Running slots of the cluster (max_running).", labels=scope
    )
    per_cluster: dict[tuple[str, str], list[int]] = {
        (c.project_id, c.cluster_id): [0, 0, 0] for c in snap.clusters
    }  # queued, used, deleting
    for c in snap.counts:
        key = (c.project_id, c.cluster_id)
        agg = per_cluster.setdefault(key, [0, 0, 0])
        if c.state in _LAUNCHED:
            agg[1] += c.count
        if c.deleted:
            agg[2] += c.count
            continue
        if c.state == JobState.SUBMITTED.value:
            agg[0] += c.count
        jobs.add_metric([*key, c.job_type, c.state], float(c.count))
    for key, (q, u, d) in sorted(per_cluster.items()):
        queued.add_metric(list(key), float(q))
        used.add_metric(list(key), float(u))
        deleting.add_metric(list(key), float(d))
    for c in snap.clusters:
        key = [c.project_id, c.cluster_id]
        queue_max.add_metric(key, float(c.max_queued))
        slots.add_metric(key, float(c.max_running))
    yield from (jobs, deleting, queued, queue_max, used, slots)
    if snap.heartbeat_age_seconds is not None:
        age = GaugeMetricFamily(
            "mrs_jobs_supervisor_heartbeat_age_seconds",
            "Seconds since this process's supervisor last wrote its heartbeat.",
        )
        age.add_metric([], snap.heartbeat_age_seconds)
        yield age
