"""The SQL job process's table locks (runners/sql.py TableLocks): one writer per table."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from mrs_jobs.engines.runners.sql import TableLocks


def test_a_second_writer_of_one_table_waits_for_the_first(tmp_path: Path) -> None:
    spec = {"dir": str(tmp_path), "tables": {"0": ["default.t"]}}
    first, second = TableLocks(spec), TableLocks(spec)
    first.acquire(0)
    got: list[float] = []
    waiter = threading.Thread(target=lambda: (second.acquire(0), got.append(time.monotonic())))
    waiter.start()
    time.sleep(0.6)
    assert got == []  # still waiting
    released = time.monotonic()
    first.release()
    waiter.join(5)
    assert got and got[0] >= released
    second.release()


def test_other_tables_and_statements_without_writes_do_not_wait(tmp_path: Path) -> None:
    first = TableLocks({"dir": str(tmp_path), "tables": {"0": ["default.a"]}})
    other = TableLocks({"dir": str(tmp_path), "tables": {"0": ["default.b"], "1": []}})
    first.acquire(0)
    started = time.monotonic()
    other.acquire(0)
    other.acquire(1)
    assert time.monotonic() - started < 0.5
    first.release()
    other.release()


def test_no_lock_directory_runs_unserialised(tmp_path: Path) -> None:
    locks = TableLocks({"dir": str(tmp_path / "missing"), "tables": {"0": ["default.t"]}})
    locks.acquire(0)  # logs and goes on
    assert locks.held == []
