"""The stream's hub (services/feed_hub.py): many waiters on one project cost the store one
read of the new events, not one each; a waiter with an old cursor is sent to the store; a
stopped hub wakes its waiters (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from sqlalchemy import event

from mrs_jobs.services.feed_hub import FeedHub
from mrs_jobs.store import events as events_store


def _head(api: Any) -> int:
    with api.store.read() as conn:
        return events_store.feed_head(conn, api.project_id)


def test_a_thousand_waiters_cost_one_read_of_the_new_events(api: Any) -> None:
    hub = FeedHub(api.store, interval=0.05)
    cursor = _head(api)
    reads: list[str] = []

    def seen(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if "FROM job_events" in statement:
            reads.append(statement)

    async def waiters() -> list[Any]:
        tasks = [asyncio.create_task(hub.wait(api.project_id, cursor, 10)) for _ in range(1000)]
        await asyncio.sleep(0.3)  # all registered, the hub polling
        threading.Thread(target=api.submit).start()
        return await asyncio.gather(*tasks)

    event.listen(api.store.engine, "before_cursor_execute", seen)
    try:
        began = time.monotonic()
        woken = asyncio.run(waiters())
        took = time.monotonic() - began
    finally:
        event.remove(api.store.engine, "before_cursor_execute", seen)
        hub.stop()
    assert all(w is not None and [e.type for e in w.events][:1] == ["job.created"] for w in woken)
    assert {w.head for w in woken} == {cursor + 3}
    assert len(reads) == 1, reads  # the hub's one read, for all of them
    assert took < 3.0


def test_an_old_cursor_is_sent_to_the_store_and_a_stop_wakes_the_waiters(api: Any) -> None:
    api.submit()
    hub = FeedHub(api.store, interval=0.05)
    head = _head(api)

    async def scenario() -> tuple[Any, Any, Any]:
        waiting = asyncio.create_task(hub.wait(api.project_id, head, 30))
        await asyncio.sleep(0.2)
        # The tail starts at ``head``: what is before it is the store's to answer.
        old = await hub.wait(api.project_id, head - 2, 1)
        await asyncio.to_thread(hub.stop)
        woken = await asyncio.wait_for(waiting, 5)
        after_stop = await hub.wait(api.project_id, head, 30)
        return old, woken, after_stop

    old, woken, after_stop = asyncio.run(scenario())
    assert old is None
    assert woken is not None and woken.events == []
    assert after_stop is not None and after_stop.events == []  # at once, not after 30 s
