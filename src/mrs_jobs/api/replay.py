"""Refuse an exact replay of a signed state-changing request inside the clock window.

The signature already binds the method, path, query, signed headers, body and ``X-Sdk-Date``;
a captured request can be re-sent unchanged until its date leaves the allowed skew (contract
section 11). This cache remembers each accepted ``(AK, signature)`` of a POST/PUT/PATCH/DELETE
until its date is out of the window, and refuses the same pair again (401 APIGW.0301).

GET/HEAD are not checked: they change nothing, and HTTP clients (urllib3 inside the official
SDK) re-send an idempotent request unchanged when a connection drops. The official SDK's own
retries re-sign with a fresh ``X-Sdk-Date``; but the date has one-second resolution, so two
byte-identical POSTs signed within the same second by the same key are indistinguishable from a
replay and the second is refused. That is why the check is off by default
(``MRS_JOBS_REPLAY_PROTECTION=true`` turns it on): a kill sent twice, a batch delete retried
with the same ids and identical submits in one second are ordinary client behaviour. A submit
carrying ``X-Idempotency-Key`` is never refused: its re-send returns the first job anyway.

The cache is per process and bounded (oldest entries dropped first): a replay sent to another
instance, or after more than ``max_entries`` newer requests, is not caught.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

__all__ = ["CHECKED_METHODS", "ReplayCache"]

CHECKED_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class ReplayCache:
    def __init__(self, *, max_entries: int = 100_000, clock=time.time) -> None:
        self.max_entries = max_entries
        self._clock = clock
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._seen)

    def first_use(self, access_key: str, signature: str, expires_at: float) -> bool:
        """Record the pair; False if it was already seen and is still inside its window."""
        key = (access_key, signature.lower())
        with self._lock:
            now = self._clock()
            self._expire(now)
            seen = self._seen.get(key)
            if seen is not None and seen >= now:
                return False
            self._seen[key] = expires_at
            self._seen.move_to_end(key)
            while len(self._seen) > self.max_entries:
                self._seen.popitem(last=False)
            return True

    def _expire(self, now: float) -> None:
        # Entries are appended in arrival order with expiries that are nearly monotonic
        # (date + skew); dropping from the front until a live one is cheap and good enough.
        while self._seen:
            key, expires = next(iter(self._seen.items()))
            if expires >= now:
                break
            del self._seen[key]
