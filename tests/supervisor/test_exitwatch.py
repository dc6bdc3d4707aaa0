"""The supervisor hears of an engine run's end at once, not on its next pass."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

from mrs_jobs.runtime.exitwatch import ExitWatcher


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_wakes_when_a_watched_process_exits_and_not_before() -> None:
    woke = threading.Event()
    watcher = ExitWatcher(woke.set)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"])
    try:
        assert watcher.watch(proc.pid)
        assert not woke.wait(0.2)  # still running
        assert woke.wait(10)
        assert proc.poll() is not None or proc.wait(5) == 0
    finally:
        watcher.close()


def test_gives_its_thread_and_fds_back_when_nothing_is_left() -> None:
    before = _fds()
    woke = threading.Event()
    watcher = ExitWatcher(woke.set)
    procs = [subprocess.Popen([sys.executable, "-c", "pass"]) for _ in range(3)]
    for p in procs:
        watcher.watch(p.pid)
    for p in procs:
        p.wait(10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (watcher.watched() or _fds() > before):
        time.sleep(0.05)
    assert woke.is_set()
    assert watcher.watched() == 0 and _fds() <= before
    watcher.close()


def test_a_gone_pid_is_not_watched() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(10)
    watcher = ExitWatcher(lambda: None)
    assert watcher.watch(proc.pid) is False
    watcher.close()


def test_a_job_is_finished_long_before_the_next_pass(world) -> None:
    """With passes 60 s apart only the exit wake can finish the job in time."""
    world.settings = world.settings.model_copy(update={"poll_interval": 60.0})
    sup = world.supervisor()
    job_id = world.submit("--sleep", "0.5")
    sup.start()  # reconcile + the first pass launches the job
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and world.show(job_id).state != "ACCEPTED":
            if world.show(job_id).state in ("RUNNING", "FINISHED"):
                break
            time.sleep(0.05)
        while time.monotonic() < deadline and world.show(job_id).state != "FINISHED":
            time.sleep(0.05)
        assert world.show(job_id).state == "FINISHED"
        assert world.show(job_id).result == "SUCCEEDED"
    finally:
        sup.stop()
