"""The supervisor's webhook part: sends the outbox's due deliveries, queues
``job.over_duration`` ones, and removes finished deliveries past their retention.

A pass only claims (one short write transaction, ``store/webhooks.claim_due``) and hands the
claimed deliveries to a small thread pool; each worker makes the HTTP attempt outside any
transaction and records it in its own (2xx: delivered; anything else, or no answer: tried
again after a backoff, or dead-lettered past ``webhook_max_age_hours``). So a slow receiver
never holds up the pass, and at most ``webhook_workers`` attempts run at once. A claim is a
lease longer than an attempt can take: if the process dies between sending and recording,
the delivery is sent again once the lease ran out, with the same ``webhook-id``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

import httpx

from mrs_jobs.domain.webhooks import (
    next_attempt_ms,
    over_duration_body,
    over_duration_msg_id,
    secret_aad,
)
from mrs_jobs.secretbox import SecretBox, SecretKeyError
from mrs_jobs.settings import Settings
from mrs_jobs.store import Store
from mrs_jobs.store import webhooks as wh_store
from mrs_jobs.store.jobs import now_ms
from mrs_jobs.supervisor.webhook_send import Result, send

__all__ = ["COUNTS", "OUTCOMES", "Source", "WebhookDispatcher"]

log = logging.getLogger(__name__)

DAY_MS = 86_400_000
OUTCOMES = ("delivered", "retried", "dead")
OVER_DURATION_EVERY_S = 5.0
CLEANUP_BATCH = 500
_LEASE_MARGIN_S = 5.0


class _Counts:
    """Attempts of this process's supervisor by outcome, for ``/metrics`` (process-wide, as a
    Prometheus client's own counter: it starts at zero with the process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_outcome = dict.fromkeys(OUTCOMES, 0)

    def add(self, outcome: str) -> None:
        with self._lock:
            self.by_outcome[outcome] += 1


COUNTS = _Counts()


class Source(Protocol):
    """What the part reads: the store, the settings now, the key (a SupervisorContext is one)."""

    store: Store
    settings: Settings
    secrets: SecretBox


class WebhookDispatcher:
    """Claims due deliveries each pass and sends them on a small pool of threads."""

    def __init__(self, ctx: Source, wake: Callable[[], None] = lambda: None) -> None:
        self.ctx = ctx
        self.wake = wake
        self._lock = threading.Lock()
        self._in_flight = 0
        self._pool: ThreadPoolExecutor | None = None
        self._client: httpx.Client | None = None
        self._next_over_duration = 0.0
        self._next_cleanup = 0.0

    @property
    def settings(self) -> Settings:
        return self.ctx.settings

    def step(self) -> None:
        self.dispatch()
        now = time.monotonic()
        if now >= self._next_over_duration:
            self._next_over_duration = now + OVER_DURATION_EVERY_S
            self.queue_over_duration(now_ms())
        if now >= self._next_cleanup:
            full = self.cleanup(now_ms())
            self._next_cleanup = now + (0.0 if full else self.settings.retention_interval_seconds)

    def dispatch(self) -> int:
        """Claim what the pool has room for and start sending it; returns how many."""
        with self._lock:
            room = self.settings.webhook_workers * 2 - self._in_flight
        if room <= 0:
            return 0
        at = now_ms()
        with self.ctx.store.read() as conn:
            if not wh_store.any_due(conn, at):
                return 0
        # long enough for a wait in the pool behind one attempt, the attempt, and its record
        lease = at + int((self.settings.webhook_timeout_seconds * 2 + _LEASE_MARGIN_S) * 1000)
        with self.ctx.store.write() as conn:
            claimed = wh_store.claim_due(conn, at, lease, room)
        if not claimed:
            return 0
        pool = self._ensure_pool()
        with self._lock:
            self._in_flight += len(claimed)
        for item in claimed:
            pool.submit(self._deliver, item)
        return len(claimed)

    def close(self) -> None:
        """Let attempts in flight finish (each is bounded by the timeout), start no queued one
        (its lease runs out and a supervisor sends it later), then stop."""
        pool, client = self._pool, self._client
        self._pool = self._client = None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        if client is not None:
            client.close()

    def _ensure_pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._client = httpx.Client(
                timeout=self.settings.webhook_timeout_seconds, follow_redirects=False
            )
            self._pool = ThreadPoolExecutor(
                self.settings.webhook_workers, thread_name_prefix="mrs-jobs-webhook"
            )
        return self._pool

    def _deliver(self, item: wh_store.Due) -> None:
        try:
            self._record(item, self._attempt(item))
        except Exception:  # a worker must survive anything; the lease brings it back
            log.exception(
                "webhook.attempt_failed", extra={"msg_id": item.msg_id, "job_id": item.job_id}
            )
        finally:
            with self._lock:
                self._in_flight -= 1
            self.wake()

    def _attempt(self, item: wh_store.Due) -> Result:
        try:
            secret = self.ctx.secrets.open(item.secret, aad=secret_aad(item.webhook_id))
        except SecretKeyError:
            return Result(None, "the signing secret does not open with the service's key", 0)
        assert self._client is not None
        return send(
            self._client,
            item.url,
            secret,
            item.msg_id,
            item.payload,
            allow_private=self.settings.webhook_allow_private,
        )

    def _record(self, item: wh_store.Due, result: Result) -> None:
        at = now_ms()
        started = at - result.duration_ms
        with self.ctx.store.write() as conn:
            wh_store.record_attempt(
                conn, item.id, started, result.status, result.error, result.duration_ms
            )
            if result.ok:
                assert result.status is not None
                wh_store.mark_delivered(conn, item.id, at, result.status)
                outcome = "delivered"
            else:
                nxt = next_attempt_ms(
                    item.attempts + 1,
                    item.created_ms,
                    at,
                    base_s=self.settings.webhook_retry_base_seconds,
                    max_age_s=self.settings.webhook_max_age_hours * 3600,
                    max_delay_s=self.settings.webhook_retry_max_seconds,
                )
                if nxt is None:
                    wh_store.mark_dead(conn, item.id, at, result.status, result.error)
                    outcome = "dead"
                else:
                    wh_store.reschedule(conn, item, nxt, result.status, result.error)
                    outcome = "retried"
        COUNTS.add(outcome)
        if outcome != "delivered":
            log.warning(
                "webhook.not_delivered",
                extra={
                    "webhook_id": item.webhook_id,
                    "msg_id": item.msg_id,
                    "job_id": item.job_id,
                    "status": result.status,
                    "error": result.error,
                    "outcome": outcome,
                },
            )

    def queue_over_duration(self, at: int) -> int:
        """Queue one ``job.over_duration`` per (subscription, launched job past its limit)."""
        window = int(self.settings.webhook_retention_days * DAY_MS)
        with self.ctx.store.read() as conn:
            owed = wh_store.over_duration_due(conn, at, window, limit=500)
        if not owed:
            return 0
        rows = [
            {
                "msg_id": over_duration_msg_id(sub.id, job["id"]),
                "webhook_id": sub.id,
                "project_id": job["project_id"],
                "job_id": job["id"],
                "event_type": "job.over_duration",
                "seq": None,
                "payload": _compact(over_duration_body(job, sub.over_duration_s or 0, at)),
                "state": "pending",
                "attempts": 0,
                "next_at_ms": at,
                "created_ms": at,
            }
            for sub, job in owed
        ]
        with self.ctx.store.write() as conn:
            return wh_store.add_over_duration(conn, rows)

    def cleanup(self, at: int) -> bool:
        """Remove one batch of deliveries finished before the retention; True if it was full."""
        before = at - int(self.settings.webhook_retention_days * DAY_MS)
        with self.ctx.store.read() as conn:  # most checks find nothing: no write lock then
            ids = wh_store.finished_before(conn, before, CLEANUP_BATCH)
        if ids:
            with self.ctx.store.write() as conn:
                wh_store.remove_deliveries(conn, ids)
        return len(ids) >= CLEANUP_BATCH


def _compact(body: object) -> str:
    return json.dumps(body, separators=(",", ":"))
