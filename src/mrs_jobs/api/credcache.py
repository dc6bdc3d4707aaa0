"""Opened AK/SK credentials (by AK) and valid tokens' credentials (by the token's hash) kept
for a few seconds, so a request needs no database read to know who calls.

Without it every signed request ran a read transaction and opened the sealed SK (AES-GCM):
0.2 ms of CPU on SQLite, 0.5-1 ms on PostgreSQL, a large share of a show request (bench/README.md);
token requests read the store on every call and served 28 % fewer requests/s than AK/SK.

The price is a bounded delay for changes made elsewhere (the admin commands run in another
process): a credential disabled, deleted or expired by ``rotate-aksk --grace`` keeps working
for at most :data:`TTL_SECONDS` after the change, in each server process. An SK that does not
verify against the cached one makes the caller look the AK up again at once (see
``api/auth.py``), so a changed SK is never refused because of the cache; an expiry time that
has passed is checked on every hit (a token's expiry too); unknown AKs and refused tokens are
never cached. A changed policy applies within the same period.

Entries hold opened SKs in memory only (never logged, never written), as the lookup did for
the length of a request; at most :data:`MAX_ENTRIES` are kept, the oldest dropped first.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from mrs_jobs.store.tenants import Credential

__all__ = ["MAX_ENTRIES", "TTL_SECONDS", "CredentialCache"]

TTL_SECONDS = 5.0
MAX_ENTRIES = 10_000


class CredentialCache:
    """AK -> opened credential, each for ``ttl`` seconds. Used from the event loop only."""

    def __init__(
        self,
        ttl: float = TTL_SECONDS,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
        wall_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._wall_ms = wall_ms
        self._entries: OrderedDict[str, tuple[float, Credential]] = OrderedDict()

    def get(self, access_key: str) -> Credential | None:
        """The cached credential of an AK if still fresh and not past its expiry time."""
        entry = self._entries.get(access_key)
        if entry is None:
            return None
        stored_at, cred = entry
        if self._clock() - stored_at >= self.ttl or (
            cred.expires_ms is not None and cred.expires_ms < self._wall_ms()
        ):
            del self._entries[access_key]
            return None
        return cred

    def put(self, access_key: str, cred: Credential) -> None:
        if self.ttl <= 0:
            return
        self._entries.pop(access_key, None)
        self._entries[access_key] = (self._clock(), cred)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def drop(self, access_key: str) -> None:
        self._entries.pop(access_key, None)

    def __len__(self) -> int:
        return len(self._entries)
