"""Per-project request rate limits (token buckets) and a cheap per-client bucket for 401s.

A project's bucket is charged only *after* its credential has been verified, so nobody can
spend another project's budget by sending unsigned or badly signed requests. Those failures are
charged to a separate, much smaller bucket keyed by the client address instead; once it is empty
the client gets 429 before any signature work or store lookup is done.

State is per process (one service instance); several instances behind a balancer each allow
the configured rate. Answers are 429 with ``error_code`` 0202 and an integer ``Retry-After``
(seconds, at least 1): the official SDK drops a 429's body, so the header is what users see.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict

__all__ = ["RateLimited", "RateLimiter", "TokenBuckets"]


class RateLimited(Exception):
    """Answered as 429 0202 with ``Retry-After`` (see ``api/app.py``)."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = max(1, int(retry_after))


class TokenBuckets:
    """Token buckets by key: ``rate`` tokens per second up to ``burst``; bounded key count.

    ``rate <= 0`` disables the limit. The least recently used keys are dropped past
    ``max_keys`` (a dropped key simply starts again with a full bucket).
    """

    def __init__(
        self, rate: float, burst: float, *, max_keys: int = 100_000, clock=time.monotonic
    ) -> None:
        self.rate = float(rate)
        self.burst = max(float(burst), 1.0)
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def _level(self, key: str, now: float) -> float:
        tokens, at = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - at) * self.rate)

    def take(self, key: str, cost: float = 1.0) -> float:
        """Spend ``cost`` tokens; 0.0 if allowed, else the seconds until it would be."""
        if not self.enabled:
            return 0.0
        with self._lock:
            now = self._clock()
            tokens = self._level(key, now)
            if tokens >= cost:
                self._store(key, tokens - cost, now)
                return 0.0
            self._store(key, tokens, now)
            return (cost - tokens) / self.rate

    def peek(self, key: str, cost: float = 1.0) -> float:
        """Like :meth:`take` without spending: seconds until ``cost`` tokens are there."""
        if not self.enabled:
            return 0.0
        with self._lock:
            tokens = self._level(key, self._clock())
        return 0.0 if tokens >= cost else (cost - tokens) / self.rate

    def _store(self, key: str, tokens: float, now: float) -> None:
        self._buckets[key] = (tokens, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)


class RateLimiter:
    """The two limits the API applies: per project, and failed authentications per client."""

    def __init__(
        self,
        *,
        per_second: float,
        burst: float,
        auth_failures_per_second: float,
        auth_failures_burst: float,
    ) -> None:
        self.projects = TokenBuckets(per_second, burst)
        self.auth_failures = TokenBuckets(auth_failures_per_second, auth_failures_burst)

    def charge_project(self, project_id: str) -> None:
        wait = self.projects.take(project_id)
        if wait > 0:
            raise RateLimited(
                f"Too many requests for project {project_id}; retry later.", math.ceil(wait)
            )

    def check_client(self, client: str) -> None:
        """Refuse a client whose failed-authentication budget is spent (before any work)."""
        wait = self.auth_failures.peek(client)
        if wait > 0:
            raise RateLimited(
                "Too many failed authentications from this client; retry later.",
                math.ceil(wait),
            )

    def charge_auth_failure(self, client: str) -> None:
        self.auth_failures.take(client)
