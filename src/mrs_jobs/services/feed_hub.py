"""One process-wide watcher of the projects' event cursors, so waiting stream clients cost the
store nothing each.

A thread reads every project's last cursor (``feed_heads``: one tiny query) every
``interval`` seconds, or at once when nudged after a local commit, so a change committed by
another API server on the same PostgreSQL is seen here within about ``interval``. For a project
that has waiting clients and whose head moved, it reads the new events once (``list_feed``)
into that project's *tail* and hands each waiter the events after its cursor: a thousand
clients waiting on one project cost one query per change, not a thousand. Waiters are asyncio
futures woken with ``call_soon_threadsafe``, so they may live on any event loop.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from mrs_jobs.domain.events import FeedEvent
from mrs_jobs.store import Store
from mrs_jobs.store import events as events_store

__all__ = ["FeedHub", "Woken"]

log = logging.getLogger(__name__)

#: Events a project's tail keeps for late waiters; older cursors read the store themselves.
TAIL_EVENTS = 2000
#: Events read per query when a head moved.
FETCH_LIMIT = 1000
#: A hub started by a waiter (no lifespan: an app under test) stops after this long idle.
IDLE_SECONDS = 30.0


@dataclass(frozen=True)
class Woken:
    """What a waiter gets: the project's events after its cursor (any cluster), and the cursor
    up to which the project has been read (``head``: pass it as the next cursor)."""

    events: list[FeedEvent]
    head: int


@dataclass(eq=False)
class _Waiter:
    cursor: int
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Woken]


@dataclass(eq=False)
class _Tail:
    """A project's events after ``since`` up to ``head``, complete (read in cursor order)."""

    since: int
    head: int
    events: deque[FeedEvent] = field(default_factory=deque)
    waiters: set[_Waiter] = field(default_factory=set)

    def after(self, cursor: int) -> list[FeedEvent]:
        """From the newest back (a waiter is usually just behind the head)."""
        found = []
        for event in reversed(self.events):
            if event.seq <= cursor:
                break
            found.append(event)
        found.reverse()
        return found

    def add(self, found: list[FeedEvent], head: int) -> None:
        self.events.extend(found)
        while len(self.events) > TAIL_EVENTS:
            self.since = self.events.popleft().seq
        self.head = max(self.head, head)


class FeedHub:
    """Start it once per process (the app's lifespan); :meth:`wait` starts it too if needed."""

    def __init__(self, store: Store, *, interval: float = 0.25) -> None:
        self.store = store
        self.interval = interval
        self._lock = threading.Lock()
        self._tails: dict[str, _Tail] = {}
        self._heads: dict[str, int] | None = None
        self._nudged = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pinned = False
        self._should_stop: Callable[[], bool] = lambda: False
        self.clients = 0  # waiting long-polls and open SSE streams (the services count them)
        self.events_seen = 0  # head increases summed over polls
        self.polls = 0

    def start(self, *, pinned: bool = False) -> None:
        """Poll from now on. ``pinned`` (the server's lifespan): until :meth:`stop`; else (a
        first waiter) only while there are waiters, and a while after. Never after a stop."""
        with self._lock:
            self._pinned = self._pinned or pinned
            if self._stopping.is_set():
                return
            if self._thread is not None and self._thread.is_alive():
                return
            self._thread = threading.Thread(target=self._run, name="feed-hub", daemon=True)
            self._thread.start()

    def stop_when(self, should_stop: Callable[[], bool]) -> None:
        """Stop by itself once ``should_stop()`` (the server is shutting down), so that open
        streams end instead of holding the server's graceful shutdown."""
        self._should_stop = should_stop

    def stop(self) -> None:
        """Stop polling, for good; every waiter is woken with nothing new."""
        self._halt()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def _halt(self) -> None:
        self._stopping.set()
        self._nudged.set()
        with self._lock:  # a waiter leaving removes itself under the lock
            waiters = [w for tail in self._tails.values() for w in tail.waiters]
            self._tails = {}
        for waiter in waiters:
            _wake(waiter, Woken([], waiter.cursor))

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def count_client(self, delta: int) -> None:
        with self._lock:
            self.clients += delta

    def nudge(self) -> None:
        """Look now (a change was just committed here) instead of at the next tick; only
        while someone waits (a thousand submits a second must not poll the heads as often)."""
        if self._tails:
            self._nudged.set()

    async def wait(self, project_id: str, cursor: int, timeout: float) -> Woken | None:
        """The project's events after ``cursor`` once there are some, or an empty answer after
        ``timeout`` s. None: the tail no longer reaches back to ``cursor`` (read the store)."""
        self.start()
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._stopping.is_set():
                return Woken([], cursor)
            tail = self._tails.get(project_id)
            if tail is None:
                # The caller has read everything up to ``cursor``; the tail continues from it.
                tail = self._tails[project_id] = _Tail(since=cursor, head=cursor)
            if cursor < tail.since:
                return None
            if tail.head > cursor:
                return Woken(tail.after(cursor), tail.head)
            waiter = _Waiter(cursor, loop, loop.create_future())
            tail.waiters.add(waiter)
        if self._heads is None:  # the first poll has not run yet
            self._nudged.set()
        try:
            return await asyncio.wait_for(asyncio.shield(waiter.future), timeout)
        except TimeoutError:
            return Woken([], cursor)
        finally:
            with self._lock:
                tail.waiters.discard(waiter)

    def _run(self) -> None:
        idle_since = time.monotonic()
        while not self._stopping.is_set():
            self._nudged.wait(self.interval)
            self._nudged.clear()
            if self._should_stop():
                self._halt()
            if self._stopping.is_set():
                return
            try:
                self._poll()
            except Exception:  # the store away for a moment: waiters keep waiting
                log.warning("feed.poll_failed", exc_info=True)
            with self._lock:
                if self._tails or self._pinned:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since > IDLE_SECONDS:
                    self._thread = None  # started by a waiter: the next one starts it again
                    return

    def _poll(self) -> None:
        with self.store.read() as conn:
            heads = events_store.feed_heads(conn)
        self.polls += 1
        if self._heads is not None:
            self.events_seen += sum(max(0, seq - self._heads.get(p, 0)) for p, seq in heads.items())
        self._heads = heads
        with self._lock:
            for project in [p for p, t in self._tails.items() if not t.waiters]:
                del self._tails[project]
            moved = [(p, t.head) for p, t in self._tails.items() if heads.get(p, 0) > t.head]
        for project, head in moved:
            self._catch_up(project, head, heads[project])

    def _catch_up(self, project_id: str, since: int, head: int) -> None:
        """Read the project's events after ``since`` (all up to ``head`` are committed: a
        project's events commit in cursor order) and wake its waiters."""
        found: list[FeedEvent] = []
        cursor = since
        while True:
            with self.store.read() as conn:
                batch = events_store.list_feed(conn, project_id, cursor, FETCH_LIMIT)
            found.extend(batch)
            if len(batch) < FETCH_LIMIT:
                break
            cursor = batch[-1].seq
        reached = max([head, *(e.seq for e in found[-1:])])
        with self._lock:
            tail = self._tails.get(project_id)
            if tail is None or tail.head != since:
                return
            tail.add(found, reached)
            for waiter in list(tail.waiters):
                tail.waiters.discard(waiter)
                _wake(waiter, Woken(tail.after(waiter.cursor), tail.head))

    def collector(self) -> Collector:
        return _HubCollector(self)


def _wake(waiter: _Waiter, woken: Woken) -> None:
    def settle() -> None:
        if not waiter.future.done():
            waiter.future.set_result(woken)

    try:
        waiter.loop.call_soon_threadsafe(settle)
    except RuntimeError:  # its loop has closed: nobody is waiting any more
        pass


class _HubCollector(Collector):
    def __init__(self, hub: FeedHub) -> None:
        self.hub = hub

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "mrs_jobs_stream_clients",
            "Job event stream clients of this process: waiting long-polls and open SSE streams.",
            value=self.hub.clients,
        )
        yield CounterMetricFamily(
            "mrs_jobs_events_written",
            "Job events written to the store (by any server on it), as this process's stream "
            "hub saw the projects' cursors rise since it started.",
            value=self.hub.events_seen,
        )
