"""Prometheus figures of webhooks: attempts by outcome (this process's supervisor, a counter
that starts at zero with the process, as retention's) and the age of the oldest delivery not
yet delivered (from the store, the same for every instance on one database: aggregate with
``max``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from mrs_jobs.store import Store
from mrs_jobs.store.jobs import now_ms
from mrs_jobs.store.webhooks import oldest_undelivered_ms
from mrs_jobs.supervisor.webhooks import COUNTS, OUTCOMES

__all__ = ["WebhookCollector"]

log = logging.getLogger(__name__)


class WebhookCollector(Collector):
    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[Metric]:
        attempts = CounterMetricFamily(
            "mrs_jobs_webhook_deliveries",
            "Webhook delivery attempts this process's supervisor made, by outcome: delivered "
            "(2xx), retried (failed, tried again after a backoff), dead (failed past the "
            "maximum age: dead-lettered).",
            labels=["outcome"],
        )
        for outcome in OUTCOMES:
            attempts.add_metric([outcome], float(COUNTS.by_outcome[outcome]))
        yield attempts
        try:
            with self.store.read() as conn:
                oldest = oldest_undelivered_ms(conn)
        except Exception as exc:  # the job collector reports store_up 0
            log.warning("metrics.store_unreachable", extra={"error": exc.__class__.__name__})
            return
        age = GaugeMetricFamily(
            "mrs_jobs_webhook_oldest_undelivered_seconds",
            "Age of the oldest webhook delivery still pending (0: none).",
        )
        age.add_metric([], 0.0 if oldest is None else max(0, now_ms() - oldest) / 1000)
        yield age
