"""Group commit: writes that arrive together are committed together, by one writer thread.

A submit is a short write transaction. Made one per request, under many concurrent clients
every submit paid a worker-thread hand-off, its turn on the store's one writer (SQLite's
write lock, PostgreSQL's lock on the cluster row), a commit and a wake-up of the supervisor.
Here a request hands its prepared item to one writer thread and awaits a future: while the
writer commits one batch the next requests queue, and the writer takes them all in its next
transaction (up to ``max_batch``). Under light load a batch is one item (no waiting for
company: the writer starts as soon as an item arrives); under heavy load the per-item costs
are shared by the batch (bench/README.md, "Issue 21": the measured effect).

``write`` answers each item with its result or its own exception (a refused item does not
refuse the batch). If the whole batch fails with an error that is not the store being
unavailable, each item is written again alone, so one bad item never fails another.
The thread starts on the first item and ends after a minute with nothing to write.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from mrs_jobs.errors import StoreUnavailable

__all__ = ["GroupCommit"]

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

_IDLE_SECONDS = 60.0

Outcome = object  # R, or the BaseException that item's write raised

_Entry = tuple[object, "asyncio.Future[object]", asyncio.AbstractEventLoop]


class GroupCommit(Generic[T, R]):
    """Batches items from any event loop into calls of ``write`` on one thread."""

    def __init__(
        self,
        write: Callable[[Sequence[T]], list[R | BaseException]],
        *,
        name: str,
        max_batch: int = 64,
    ) -> None:
        self._write = write
        self._name = name
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue[_Entry] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    async def run(self, item: T) -> R:
        """Write ``item`` in the writer's next batch; its result, or its exception raised."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[object] = loop.create_future()
        self._queue.put((item, future, loop))
        self._ensure_writer()
        return await future  # type: ignore[return-value]

    def _ensure_writer(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name=self._name, daemon=True)
                self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=_IDLE_SECONDS)
            except queue.Empty:
                with self._lock:  # an item put after the timeout starts no second writer
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._settle(batch, self._outcomes([entry[0] for entry in batch]))

    def _outcomes(self, items: list[T]) -> list[Outcome]:
        try:
            return list(self._write(items))
        except StoreUnavailable as exc:
            return [exc] * len(items)
        except BaseException as exc:  # noqa: BLE001 - every waiter must be answered
            if len(items) == 1:
                return [exc]
            log.warning("group_commit.batch_failed", extra={"items": len(items)}, exc_info=exc)
            return [self._outcomes([item])[0] for item in items]  # alone: only the bad one fails

    @staticmethod
    def _settle(batch: list[_Entry], outcomes: list[Outcome]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[object], Outcome]]]
        by_loop = {}
        for (_, future, loop), outcome in zip(batch, outcomes, strict=True):
            by_loop.setdefault(loop, []).append((future, outcome))
        for loop, answers in by_loop.items():  # one wake-up per event loop, not per item
            try:
                loop.call_soon_threadsafe(_answer, answers)
            except RuntimeError:  # that loop has closed: nobody is waiting any more
                pass


def _answer(answers: list[tuple[asyncio.Future[object], Outcome]]) -> None:
    for future, outcome in answers:
        if future.done():  # the request was cancelled (its client went away)
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
