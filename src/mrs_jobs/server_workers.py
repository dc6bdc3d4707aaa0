"""``mrs-jobs serve --workers N``: N API processes on one listening socket, one supervisor.

The first process (the parent) does what a one-process ``serve`` does before it serves: the
SQLite lock, the migrated store, the listening socket, the first-run bootstrap, the containment
check and the supervisor, which runs here in the parent, as the only one of this data
directory. It then starts N API processes with multiprocessing's ``spawn`` context (as
uvicorn's own multi-process mode does): each gets the listening socket, opens its own store
engine, builds its own app and runs its own uvicorn server on that socket; the kernel hands
each new connection to one of them. The parent serves no HTTP itself: it relays wakes to the
supervisor, restarts an API process that died and stops everything in order.

- A change committed in an API process (a submit, a kill, a delete) wakes the supervisor in
  the parent through a pipe (one byte, never blocking: a full pipe already holds a wake), so a
  job submitted to any process is claimed as soon as it would be in one process, not at the
  next poll.
- SIGTERM or SIGINT to the parent: the API processes get SIGTERM and shut down gracefully
  (uvicorn's 10 s for requests in flight), then the supervisor stops as in one process. The API
  processes have their own process group, so Ctrl-C in a terminal reaches the parent only.
- An API process that exits while the service runs is started again (logged; a process that
  keeps dying within seconds of its start is restarted after a growing pause, up to 30 s).
- An API process asks the kernel for SIGTERM when the parent dies (``PR_SET_PDEATHSIG``), so a
  ``kill -9`` of the parent does not leave API processes serving without a supervisor.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import TYPE_CHECKING, Any

from mrs_jobs.settings import Settings

if TYPE_CHECKING:
    from mrs_jobs.supervisor.loop import Supervisor

__all__ = ["WorkerSpec", "run_workers", "worker_main"]

log = logging.getLogger("mrs_jobs")

_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_STOP_WAIT_S = 15.0  # uvicorn's graceful shutdown (10 s) and a margin, then SIGKILL
_QUICK_EXIT_S = 5.0  # an API process that dies sooner after its start is restarted later
_BACKOFF_MAX_S = 30.0
_TICK_S = 0.5  # the parent looks at its signals and API processes at least this often
_ACCEPT_BATCH = 1  # connections an API process accepts per wake-up (_SharingLoop)


@dataclass(frozen=True)
class WorkerSpec:
    """What an API process needs from the parent (pickled into the spawned process)."""

    settings: Settings
    endpoint: str
    runnable_types: frozenset[str]
    supervisor_id: str | None
    parent_pid: int
    index: int


# -- in an API process ---------------------------------------------------------------------


class _SharingLoop(asyncio.SelectorEventLoop):
    """asyncio's loop, accepting one connection per wake-up of the listening socket.

    asyncio accepts up to the backlog (2048) connections each time the socket is readable, so
    the first API process woken took a whole burst of new connections (a client's pool opening
    32 at once: 32 to one process, 0 to the other). All API processes wait on the same socket
    and are all woken; taking one each and going back to the loop spreads a burst over them,
    and a busy process, slower to come back, takes fewer. (Overrides a private method, whose
    signature is the same from Python 3.8 to 3.13.) uvicorn's ``loop`` setting names it
    (``module:attribute``: a loop factory).
    """

    def _accept_connection(  # type: ignore[override]
        self,
        protocol_factory: Any,
        sock: Any,
        sslcontext: Any = None,
        server: Any = None,
        backlog: int = 100,
        *rest: Any,
    ) -> None:
        super()._accept_connection(  # type: ignore[misc]
            protocol_factory, sock, sslcontext, server, min(backlog, _ACCEPT_BATCH), *rest
        )


def _die_with_parent(parent_pid: int) -> None:
    """SIGTERM when the parent dies; exit now if it already has."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        log.warning("server.worker_pdeathsig_failed", extra={"errno": ctypes.get_errno()})
    if os.getppid() != parent_pid:
        os._exit(0)


def _waker(wake: Connection | None) -> Callable[[], None]:
    """Wake the parent's supervisor: one byte into the pipe it reads, never blocking."""
    if wake is None:
        return lambda: None
    fd = wake.fileno()
    os.set_blocking(fd, False)

    def nudge() -> None:
        try:
            os.write(fd, b"w")
        except OSError:  # full: a wake is already pending; closed: the parent is gone
            pass

    return nudge


def worker_main(spec: WorkerSpec, sock: socket.socket, wake: Connection | None) -> None:
    """One API process: its own store engine, app and uvicorn server on the parent's socket."""
    from mrs_jobs.api.app import create_app
    from mrs_jobs.logging_setup import configure_logging
    from mrs_jobs.server_http import Terminated, raise_terminated, uvicorn_server
    from mrs_jobs.store import Store

    try:
        os.setpgid(0, 0)  # a terminal's Ctrl-C goes to the parent, which stops us in order
    except OSError:
        pass
    _die_with_parent(spec.parent_pid)
    settings = spec.settings
    configure_logging(settings.log_level, settings.log_format, sys.stderr)
    store = Store(settings.effective_database_url)
    app = create_app(
        settings,
        store,
        runnable_types=spec.runnable_types,
        wake=_waker(wake),
        supervisor_id=spec.supervisor_id,
        history=None,  # the Spark history servers belong to the supervisor's process
    )
    server = uvicorn_server(settings, app, loop=f"{__name__}:_SharingLoop")
    app.state.ctx.feed.hub.stop_when(lambda: server.should_exit)
    log.info("server.worker_started", extra={"worker": spec.index, "pid": os.getpid()})
    signal.signal(signal.SIGTERM, raise_terminated)  # uvicorn re-raises it after shutdown
    try:
        server.run(sockets=[sock])
    except Terminated:
        pass
    finally:
        store.dispose()


# -- in the parent -------------------------------------------------------------------------


class _Pool:
    """The API processes: started, restarted when one dies, stopped in order."""

    def __init__(
        self, spec: WorkerSpec, sock: socket.socket, wake: Connection | None, count: int
    ) -> None:
        self._mp = multiprocessing.get_context("spawn")
        self._spec, self._sock, self._wake, self._count = spec, sock, wake, count
        self.procs: dict[int, BaseProcess] = {}
        self._started: dict[int, float] = {}
        self._failures: dict[int, int] = {}
        self._due: dict[int, float] = {}  # index -> when to start it again

    def start_all(self) -> None:
        for index in range(self._count):
            self._start(index)

    def _start(self, index: int) -> None:
        spec = WorkerSpec(**{**self._spec.__dict__, "index": index})
        proc = self._mp.Process(
            target=worker_main,
            args=(spec, self._sock, self._wake),
            name=f"mrs-jobs-api-{index}",
            daemon=True,
        )
        proc.start()
        self.procs[index], self._started[index] = proc, time.monotonic()
        self._due.pop(index, None)

    def sentinels(self) -> list[int]:
        return [p.sentinel for p in self.procs.values() if p.exitcode is None]

    def tend(self) -> None:
        """Note API processes that exited; start again those whose pause is over."""
        now = time.monotonic()
        for index, proc in list(self.procs.items()):
            if proc.exitcode is None or index in self._due:
                continue
            quick = now - self._started[index] < _QUICK_EXIT_S
            self._failures[index] = self._failures.get(index, 0) + 1 if quick else 0
            pause = min(_BACKOFF_MAX_S, 2.0 ** self._failures[index] - 1) if quick else 0.0
            log.warning(
                "server.worker_exited",
                extra={
                    "worker": index,
                    "pid": proc.pid,
                    "exitcode": proc.exitcode,
                    "restart_in_s": round(pause, 1),
                },
            )
            self._due[index] = now + pause
        for index, due in list(self._due.items()):
            if due <= now:
                self._start(index)
                log.info(
                    "server.worker_restarted", extra={"worker": index, "pid": self.procs[index].pid}
                )

    def stop(self) -> None:
        """SIGTERM to every API process, then wait for their graceful shutdowns."""
        alive = [p for p in self.procs.values() if p.exitcode is None]
        for proc in alive:
            if proc.pid is not None:
                try:
                    os.kill(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + _STOP_WAIT_S
        for proc in alive:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.exitcode is None:
                log.warning("server.worker_killed", extra={"pid": proc.pid})
                proc.kill()
                proc.join(5)


def _relay_wakes(reader: Connection, wake: Callable[[], None], stop: threading.Event) -> None:
    """The parent's thread that turns the API processes' bytes into supervisor wakes."""
    fd = reader.fileno()
    while not stop.is_set():
        try:
            data = os.read(fd, 4096)
        except OSError:
            return
        if not data:
            return
        wake()


def run_workers(
    settings: Settings,
    sock: socket.socket,
    endpoint: str,
    supervisor: Supervisor | None,
    runnable_types: frozenset[str],
    greeting: str,
) -> None:
    """Serve with ``settings.workers`` API processes until SIGTERM or SIGINT, then stop them and
    the supervisor in that order. The caller disposes of the store and the lock."""
    mp = multiprocessing.get_context("spawn")
    reader, writer = mp.Pipe(duplex=False) if supervisor is not None else (None, None)
    stop_relay = threading.Event()
    if supervisor is not None and reader is not None:
        threading.Thread(
            target=_relay_wakes,
            args=(reader, supervisor.wake, stop_relay),
            name="mrs-jobs-wake-relay",
            daemon=True,
        ).start()
    spec = WorkerSpec(
        settings=settings,
        endpoint=endpoint,
        runnable_types=runnable_types,
        supervisor_id=supervisor.id if supervisor else None,
        parent_pid=os.getpid(),
        index=0,
    )
    pool = _Pool(spec, sock, writer, settings.workers)
    stopping: list[str] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stopping.append(signal.Signals(signum).name.removeprefix("SIG"))

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        if supervisor is not None:
            supervisor.start()
        pool.start_all()
        log.info("server.workers", extra={"workers": settings.workers, "pid": os.getpid()})
        print(greeting, flush=True)
        while not stopping:
            wait(pool.sentinels(), timeout=_TICK_S)
            if not stopping:
                pool.tend()
        log.info("server.stopped", extra={"signal": stopping[0]})
    finally:
        pool.stop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if supervisor is not None:
            supervisor.stop()
        stop_relay.set()
        if writer is not None:
            try:
                os.write(writer.fileno(), b"x")  # let the relay thread see the stop
            except OSError:
                pass
