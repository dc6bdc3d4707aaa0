"""SQLite writers of one process take turns on a lock: the next starts as the last commits."""

from __future__ import annotations

import statistics
import threading
import time

from jobrows import count_jobs, job_row

from mrs_jobs.store import Store
from mrs_jobs.store.tables import jobs


def handoff_seconds(store: Store, hold: float = 0.3) -> float:
    """One writer holds the write transaction for ``hold`` s while another waits for it;
    returns how long after the first committed the second one started."""
    holding = threading.Event()
    released_at: list[float] = []
    entered_at: list[float] = []

    def holder() -> None:
        with store.write() as conn:
            conn.execute(jobs.insert(), [job_row("p", "c")])
            holding.set()
            time.sleep(hold)
        released_at.append(time.perf_counter())

    def waiter() -> None:
        holding.wait()
        with store.write() as conn:
            entered_at.append(time.perf_counter())
            conn.execute(jobs.insert(), [job_row("p", "c")])

    threads = [threading.Thread(target=holder), threading.Thread(target=waiter)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return entered_at[0] - released_at[0]


def test_a_waiting_writer_starts_as_soon_as_the_holder_commits(sqlite_store) -> None:
    """Without the lock the waiter polls in SQLite's busy handler, which sleeps 25-100 ms at a
    time once it has waited a while, so it starts tens of milliseconds late."""
    handoffs = [handoff_seconds(sqlite_store) for _ in range(5)]
    assert count_jobs(sqlite_store) == 10
    assert statistics.median(handoffs) < 0.015, handoffs
