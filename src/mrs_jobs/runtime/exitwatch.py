"""Noticing at once that an engine run ended, instead of on the supervisor's next pass.

The supervisor polls every ``poll_interval`` (0.25 s); a job whose shim exited used to wait for
that pass to be finished (bench P4: ~120 ms from engine exit to FINISHED recorded). One thread
here waits on a Linux pidfd per running shim (``epoll``) and wakes the supervisor when any of
them exits. Where pidfds are not available (old kernels, other systems) nothing is watched and
the passes alone notice exits, as before.
"""

from __future__ import annotations

import logging
import os
import select
import threading
from collections.abc import Callable

__all__ = ["ExitWatcher"]

log = logging.getLogger(__name__)


class ExitWatcher:
    def __init__(self, on_exit: Callable[[], None]) -> None:
        self._on_exit = on_exit
        self._lock = threading.Lock()
        self._fds: dict[int, int] = {}  # pidfd -> pid
        self._epoll: select.epoll | None = None
        self._wake_r = self._wake_w = -1
        self._thread: threading.Thread | None = None
        self._closed = False

    def watch(self, pid: int) -> bool:
        """Wake the supervisor when ``pid`` exits; False when it cannot be watched."""
        if not hasattr(os, "pidfd_open"):
            return False
        try:
            fd = os.pidfd_open(pid)
        except OSError:  # already gone, or no pidfds on this kernel
            return False
        with self._lock:
            if self._closed:
                os.close(fd)
                return False
            self._start()
            assert self._epoll is not None
            self._fds[fd] = pid
            self._epoll.register(fd, select.EPOLLIN)
        return True

    def watched(self) -> int:
        with self._lock:
            return len(self._fds)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
            if thread is None:
                return
            os.write(self._wake_w, b"x")
        thread.join(5)
        with self._lock:
            if self._thread is thread:
                self._teardown()

    def _teardown(self) -> None:
        """Under the lock: close every fd; the next watch() starts afresh."""
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()
        if self._epoll is not None:
            self._epoll.close()
            self._epoll = None
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                os.close(fd)
        self._wake_r = self._wake_w = -1
        self._thread = None

    def _start(self) -> None:
        """Under the lock: the epoll set and its thread, on first use."""
        if self._thread is not None:
            return
        self._epoll = select.epoll()
        self._wake_r, self._wake_w = os.pipe()
        self._epoll.register(self._wake_r, select.EPOLLIN)
        self._thread = threading.Thread(target=self._run, name="mrs-jobs-exits", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        epoll = self._epoll
        assert epoll is not None
        while True:
            try:
                events = epoll.poll()
            except InterruptedError:
                continue
            ended = False
            with self._lock:
                if self._closed:
                    return
                for fd, _mask in events:
                    if fd == self._wake_r or fd not in self._fds:
                        continue
                    epoll.unregister(fd)
                    os.close(fd)
                    del self._fds[fd]
                    ended = True
                idle = not self._fds
                if idle:  # nothing left to watch: give the thread and its fds back
                    self._teardown()
            if ended:
                try:
                    self._on_exit()
                except Exception:  # the watcher must outlive a failing callback
                    log.exception("supervisor.exit_wake_failed")
            if idle:
                return
