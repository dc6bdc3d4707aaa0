"""Per-project request rate limits (token buckets) and failure budgets for authentication.

A project's bucket is charged only *after* its credential has been verified, so nobody can
spend another project's budget by sending unsigned or badly signed requests.

Failed authentications are charged to two small buckets: the client address and the
credential the request names (its AK, or its token by hash), so rotating addresses against one
AK is limited too. The budgets throttle failures only: a credential that authenticated on this
server within :data:`KNOWN_SECONDS` is always checked and served when valid, whatever others
sent from its address. A request naming any other credential, while its address or credential
has spent its budget, is still checked (a valid one is served and known from then on) but
answered 429 instead of 401 when it fails; past :data:`THROTTLED_CHECKS_PER_SECOND` such
checks a second, all addresses together, it is answered 429 before any signature work or store
lookup, so a flood's cost is bounded.

The client address is the TCP peer; ``X-Forwarded-For`` counts only from the proxies in
``MRS_JOBS_TRUSTED_PROXIES`` (``server.py``), so rotating it from elsewhere changes nothing.

State is per process (one service instance); several instances behind a balancer each allow
the configured rate. Answers are 429 with ``error_code`` 0202 and an integer ``Retry-After``
(seconds, at least 1): the official SDK drops a 429's body, so the header is what users see.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict

__all__ = [
    "KNOWN_SECONDS",
    "THROTTLED_CHECKS_PER_SECOND",
    "KnownCredentials",
    "RateLimited",
    "RateLimiter",
    "TokenBuckets",
]

KNOWN_SECONDS = 3600.0
# Requests from throttled addresses or credentials still checked each second, all together:
# a new credential behind a flooding address gets in, and a flood costs at most this many
# store lookups a second.
THROTTLED_CHECKS_PER_SECOND = 20.0
_ALL = "*"


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


class KnownCredentials:
    """Credential keys that authenticated here lately: bounded, least recently used dropped."""

    def __init__(
        self, *, seconds: float = KNOWN_SECONDS, max_keys: int = 100_000, clock=time.monotonic
    ) -> None:
        self.seconds = seconds
        self.max_keys = max_keys
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, key: str) -> None:
        with self._lock:
            self._seen[key] = self._clock()
            self._seen.move_to_end(key)
            while len(self._seen) > self.max_keys:
                self._seen.popitem(last=False)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            at = self._seen.get(key) if isinstance(key, str) else None
            return at is not None and self._clock() - at < self.seconds


class RateLimiter:
    """The API's limits: per project, and failed authentications per address and credential."""

    def __init__(
        self,
        *,
        per_second: float,
        burst: float,
        auth_failures_per_second: float,
        auth_failures_burst: float,
        clock=time.monotonic,
    ) -> None:
        self.projects = TokenBuckets(per_second, burst, clock=clock)
        failures = (auth_failures_per_second, auth_failures_burst)
        self.auth_failures = TokenBuckets(*failures, clock=clock)
        self.credential_failures = TokenBuckets(*failures, clock=clock)
        self.known = KnownCredentials(clock=clock)
        self.throttled_checks = TokenBuckets(
            THROTTLED_CHECKS_PER_SECOND, THROTTLED_CHECKS_PER_SECOND, clock=clock
        )

    def charge_project(self, project_id: str) -> None:
        wait = self.projects.take(project_id)
        if wait > 0:
            raise RateLimited(
                f"Too many requests for project {project_id}; retry later.", math.ceil(wait)
            )

    def check_client(self, client: str, credential: str | None) -> bool:
        """Before any work: whether the request is throttled (its failure will be a 429).

        A credential that authenticated here lately is always checked (False). A request
        whose address or named credential has spent its failure budget is still checked while
        the global budget of throttled checks lasts (True), and refused at once (429) past it.
        """
        if credential is not None and credential in self.known:
            return False
        wait = self.auth_failures.peek(client)
        if credential is not None:
            wait = max(wait, self.credential_failures.peek(credential))
        if wait <= 0:
            return False
        if self.throttled_checks.take(_ALL) == 0:
            return True
        raise RateLimited(
            "Too many failed authentications from this client; retry later.", math.ceil(wait)
        )

    def throttled_failure(self, client: str, credential: str | None) -> RateLimited:
        """The 429 a throttled request that failed its check gets instead of 401."""
        wait = self.auth_failures.peek(client)
        if credential is not None:
            wait = max(wait, self.credential_failures.peek(credential))
        return RateLimited(
            "Too many failed authentications from this client; retry later.", math.ceil(wait)
        )

    def charge_auth_failure(self, client: str, credential: str | None) -> None:
        self.auth_failures.take(client)
        if credential is not None:
            self.credential_failures.take(credential)

    def may_recheck(self, credential: str) -> bool:
        """Whether a failing signature of ``credential`` may still cost a store lookup."""
        return self.credential_failures.peek(credential) == 0

    def authenticated(self, credential: str) -> None:
        """A request naming ``credential`` was verified: it is checked from now on."""
        self.known.add(credential)
