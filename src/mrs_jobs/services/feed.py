"""A cluster's job event stream (``GET .../job-events``, ours): a page after a cursor, a
long-poll that answers as soon as an event arrives, and the endless stream SSE is made of.

The first read of a request checks the cluster and reads the store; waiting is the hub's
(``services/feed_hub.py``), which reads a project's new events once for all its waiters.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from mrs_jobs.domain.events import FeedEvent
from mrs_jobs.domain.validation import check_query, query_int
from mrs_jobs.errors import ClusterNotFound, InvalidParameter
from mrs_jobs.services.feed_hub import FETCH_LIMIT, FeedHub
from mrs_jobs.store import Store
from mrs_jobs.store import events as events_store
from mrs_jobs.store.tenants import get_cluster

__all__ = [
    "HEARTBEAT_SECONDS",
    "STREAM_SECONDS",
    "FeedPage",
    "FeedQuery",
    "FeedScope",
    "FeedService",
]

MAX_WAIT = 60
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
HEARTBEAT_SECONDS = 15.0
#: A stream ends after this long; its client reconnects (``Last-Event-ID``), which checks its
#: credential again: a disabled or expired one does not keep receiving events.
STREAM_SECONDS = 300.0
_KNOWN = frozenset({"after", "limit", "wait", "job_id"})
_CURSOR_MAX = 2**62


@dataclass(frozen=True)
class FeedQuery:
    """``after``: the cursor (None: ``now``, the project's current head); ``wait``: seconds;
    ``job_id``: only that job's events."""

    after: int | None = 0
    limit: int = DEFAULT_LIMIT
    wait: int = 0
    job_id: str | None = None

    @classmethod
    def parse(cls, params: Mapping[str, str], last_event_id: str | None = None) -> FeedQuery:
        check_query(params, _KNOWN)
        after: int | None
        if last_event_id is not None:  # an SSE client resuming: it wins over the URL's after
            after = query_int({"Last-Event-ID": last_event_id}, "Last-Event-ID", 0, _CURSOR_MAX)
        elif params.get("after") == "now":
            after = None
        else:
            after = query_int(params, "after", 0, _CURSOR_MAX)
            after = 0 if after is None else after
        limit = query_int(params, "limit", 1, MAX_LIMIT)
        wait = query_int(params, "wait", 0, MAX_WAIT)
        job_id = params.get("job_id") or None
        if job_id is not None and len(job_id) > 64:
            raise InvalidParameter("job_id must be a job id (at most 64 characters).")
        return cls(after, DEFAULT_LIMIT if limit is None else limit, wait or 0, job_id)


@dataclass(frozen=True)
class FeedScope:
    """Whose events: a project's cluster, and maybe one of its jobs."""

    project_id: str
    cluster_id: str
    job_id: str | None = None

    def holds(self, event: FeedEvent) -> bool:
        return event.cluster_id == self.cluster_id and self.job_id in (None, event.job_id)


@dataclass(frozen=True)
class FeedPage:
    """Events of the cluster, in cursor order, and the cursor to pass as the next ``after``."""

    events: list[FeedEvent]
    cursor: int

    def to_json(self) -> dict[str, object]:
        return {"events": [e.to_json() for e in self.events], "next_cursor": str(self.cursor)}


class FeedService:
    def __init__(self, store: Store, hub: FeedHub) -> None:
        self.store = store
        self.hub = hub

    def page(
        self, scope: FeedScope, after: int | None, limit: int, *, check: bool = True
    ) -> FeedPage:
        """The scope's events after ``after`` (None: none, the cursor is the project's head).

        The head is read first: every event up to it has committed (a project's events commit
        in cursor order), so when fewer than ``limit`` events came back the cursor can move
        past the other clusters' events up to it. (A job's events are the cluster's, filtered:
        the cursor moves over the page read.)
        """
        with self.store.read() as conn:
            if check and get_cluster(conn, scope.project_id, scope.cluster_id) is None:
                raise ClusterNotFound(scope.cluster_id)
            head = events_store.feed_head(conn, scope.project_id)
            if after is None:
                return FeedPage([], head)
            found = events_store.list_feed(conn, scope.project_id, after, limit, scope.cluster_id)
        mine = [e for e in found if scope.holds(e)]
        if len(found) == limit:
            return FeedPage(mine, found[-1].seq)
        return FeedPage(mine, max([head, after, *(e.seq for e in found[-1:])]))

    async def first(self, scope: FeedScope, query: FeedQuery) -> FeedPage:
        """The request's first read (checks the cluster: an unknown one is refused here)."""
        return await asyncio.to_thread(self.page, scope, query.after, query.limit)

    async def poll(self, scope: FeedScope, query: FeedQuery, first: FeedPage) -> FeedPage:
        """``first``, or when it is empty the first events within ``query.wait`` seconds."""
        page = first
        deadline = time.monotonic() + query.wait
        with self._client():
            while not page.events and not self.hub.stopping:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                page = await self._next(scope, page.cursor, query.limit, left)
        return page

    async def stream(self, scope: FeedScope, first: FeedPage) -> AsyncIterator[FeedEvent | None]:
        """Every event from ``first`` on; None when a heartbeat is due (nothing sent for
        ``HEARTBEAT_SECONDS``). Ends after ``STREAM_SECONDS`` or when the hub stops (the server
        is stopping)."""
        page = first
        with self._client():
            sent = opened = time.monotonic()
            while True:
                for event in page.events:
                    yield event
                if page.events:
                    sent = time.monotonic()
                if self.hub.stopping or time.monotonic() - opened >= STREAM_SECONDS:
                    return
                left = HEARTBEAT_SECONDS - (time.monotonic() - sent)
                if left <= 0:
                    yield None
                    sent, left = time.monotonic(), HEARTBEAT_SECONDS
                left = min(left, max(0.01, STREAM_SECONDS - (time.monotonic() - opened)))
                page = await self._next(scope, page.cursor, FETCH_LIMIT, left)

    async def _next(self, scope: FeedScope, cursor: int, limit: int, timeout: float) -> FeedPage:
        """The scope's events after ``cursor`` once the project has some (or none after
        ``timeout`` s), from the hub's tail or, for an old cursor, from the store."""
        woken = await self.hub.wait(scope.project_id, cursor, timeout)
        if woken is None:
            return await asyncio.to_thread(self.page, scope, cursor, limit, check=False)
        mine = [e for e in woken.events if scope.holds(e)]
        if len(mine) > limit:
            return FeedPage(mine[:limit], mine[limit - 1].seq)
        return FeedPage(mine, max(cursor, woken.head))

    @contextmanager
    def _client(self) -> Iterator[None]:
        self.hub.count_client(+1)
        try:
            yield
        finally:
            self.hub.count_client(-1)
