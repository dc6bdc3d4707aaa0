"""A lean closed-loop HTTP/1.1 load generator: several processes, each driving several
keep-alive connections with non-blocking sockets (``selectors``), sending pre-built, pre-signed
requests and counting responses that complete inside the measuring window.

Why not httpx: on a 2-core machine the client competes with the server for CPU. httpx costs
0.45 ms of client CPU per request against 0.03 ms for writing prepared bytes to a socket
(measured on the bare app, see README): more than the bare endpoint's own 0.22 ms, so the
figures would mostly measure the client. Signing is done before the window opens
(signatures stay valid for the server's 15-minute skew window); the server still verifies
every signature, which is what must be in the measured path.

Each worker reports its own CPU time (``getrusage``), so client CPU is reported separately
from the server's (read from /proc) and from the database's.

Paced (``interval`` > 0): each connection sends its next request ``interval`` seconds after
its previous one was *due*, not after its answer came, so the offered rate is fixed (connections
x processes / interval) whatever the server does; a latency counts from the moment the request
was due (a late answer delays the next send and that delay is counted too: no coordinated
omission).
"""

from __future__ import annotations

import heapq
import multiprocessing as mp
import os
import resource
import selectors
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class WorkerResult:
    completed: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    cpu: float = 0.0
    errors: int = 0


class _Conn:
    __slots__ = ("sock", "buf", "sent_at", "need", "n")

    def __init__(self, sock: socket.socket, n: int = 0) -> None:
        self.sock = sock
        self.buf = b""
        self.sent_at = 0.0  # when the request in flight was sent (paced: when it was due)
        self.need = -1  # total bytes of the current response once headers are parsed
        self.n = n  # tie-break in the pacing heap


def _parse(conn: _Conn) -> int | None:
    """Status of a complete response at the head of conn.buf (consumed), else None."""
    if conn.need < 0:
        end = conn.buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        head = conn.buf[:end]
        length = 0
        lower = head.lower()
        k = lower.find(b"\r\ncontent-length:")
        if k >= 0:
            e = lower.find(b"\r\n", k + 2)
            length = int(head[k + 17 : e if e >= 0 else len(head)])
        conn.need = end + 4 + length
    if len(conn.buf) < conn.need:
        return None
    status = int(conn.buf[9:12])
    conn.buf = conn.buf[conn.need :]
    conn.need = -1
    return status


def _worker(
    host: str,
    port: int,
    conns: int,
    make_requests: Callable[[int], list[bytes]],
    index: int,
    start_at: float,
    window: tuple[float, float],
    queue: mp.Queue,
    drain_timeout: float = 120.0,
    interval: float = 0.0,
) -> None:  # type: ignore[type-arg]
    requests = make_requests(index)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    sel = selectors.DefaultSelector()
    res = WorkerResult()
    k = 0
    all_conns = []
    for _ in range(conns):
        s = socket.create_connection((host, port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        c = _Conn(s, len(all_conns))
        all_conns.append(c)
    while time.time() < start_at:
        time.sleep(min(0.01, max(0.0, start_at - time.time())))
    w0, w1 = window
    n_req = len(requests)
    parked: list[tuple[float, int, _Conn]] = []  # paced: (due, n, conn) waiting to send
    for i, c in enumerate(all_conns):
        c.sent_at = time.time()
        if interval > 0:  # spread the first sends over one interval
            c.sent_at += interval * i / len(all_conns)
            heapq.heappush(parked, (c.sent_at, c.n, c))
        else:
            c.sock.sendall(requests[k % n_req])
            k += 1
        sel.register(c.sock, selectors.EVENT_READ, c)
    stats = res.statuses
    lat = res.latencies
    done = 0
    in_window = False
    while True:
        now = time.time()
        if now >= w1:
            break
        if not in_window and now >= w0:  # client CPU is counted inside the window only
            cpu0 = resource.getrusage(resource.RUSAGE_SELF)
            in_window = True
        while parked and parked[0][0] <= now:
            _, _, c = heapq.heappop(parked)
            c.sock.sendall(requests[k % n_req])
            k += 1
        wait = min(0.2, max(0.0, parked[0][0] - now)) if parked else 0.2
        for key, _ev in sel.select(timeout=wait):
            c = key.data
            try:
                chunk = c.sock.recv(262144)
            except BlockingIOError:
                continue
            if not chunk:
                res.errors += 1
                sel.unregister(c.sock)
                continue
            c.buf += chunk
            while True:
                status = _parse(c)
                if status is None:
                    break
                t = time.time()
                if w0 <= t < w1:
                    done += 1
                    stats[status] = stats.get(status, 0) + 1
                    lat.append(t - c.sent_at)
                if interval > 0:  # the next one is due an interval after this one was
                    c.sent_at += interval
                    if c.sent_at > t:
                        heapq.heappush(parked, (c.sent_at, c.n, c))
                        continue
                else:
                    c.sent_at = t
                c.sock.sendall(requests[k % n_req])  # small: fits the socket buffer
                k += 1
    res.completed = done
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    res.cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    # Drain: wait for the request still in flight on each connection (not counted), so the
    # server has no backlog left when the next measurement starts.
    pending = {c.sock: c for c in all_conns if c.sock in sel.get_map()}
    deadline = time.time() + drain_timeout
    while pending and time.time() < deadline:
        for key, _ev in sel.select(timeout=0.2):
            c = key.data
            try:
                chunk = c.sock.recv(262144)
            except BlockingIOError:
                continue
            if chunk:
                c.buf += chunk
            if not chunk or _parse(c) is not None:
                sel.unregister(c.sock)
                pending.pop(c.sock, None)
    for c in all_conns:
        c.sock.close()
    queue.put(res)


@dataclass
class LoadResult:
    rate: float
    completed: int
    seconds: float
    statuses: dict[int, int]
    latencies: list[float]
    client_cpu: float
    errors: int


def run_load(
    host: str,
    port: int,
    make_requests: Callable[[int], list[bytes]],
    *,
    processes: int = 4,
    conns: int = 8,
    warmup: float = 0.5,
    seconds: float = 2.0,
    on_window: Callable[[str], Any] | None = None,
    rate: float = 0.0,
) -> LoadResult:
    """Drive ``processes`` x ``conns`` connections; count responses completed in
    [start + warmup, start + warmup + seconds). ``make_requests(i)`` runs in worker ``i``
    before the start (pre-signing is not timed). ``on_window("start"|"end")`` is called in
    this process at the window's edges (to read CPU counters). ``rate`` > 0 paces the
    connections to offer that many requests per second in all (see the module's docstring)."""
    interval = processes * conns / rate if rate > 0 else 0.0
    ctx = mp.get_context("fork")
    queue: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    start_at = time.time() + 0.3 + 0.05 * processes
    w0, w1 = start_at + warmup, start_at + warmup + seconds
    procs = [
        ctx.Process(
            target=_worker,
            args=(host, port, conns, make_requests, i, start_at, (w0, w1), queue, 120.0, interval),
            daemon=True,
        )
        for i in range(processes)
    ]
    for p in procs:
        p.start()
    time.sleep(max(0.0, w0 - time.time()))
    if on_window:
        on_window("start")
    time.sleep(max(0.0, w1 - time.time()))
    if on_window:
        on_window("end")
    results = [queue.get(timeout=300) for _ in procs]
    for p in procs:
        p.join(30)
    statuses: dict[int, int] = {}
    lat: list[float] = []
    for r in results:
        for s, n in r.statuses.items():
            statuses[s] = statuses.get(s, 0) + n
        lat += r.latencies
    completed = sum(r.completed for r in results)
    return LoadResult(
        rate=completed / seconds,
        completed=completed,
        seconds=seconds,
        statuses=statuses,
        latencies=lat,
        client_cpu=sum(r.cpu for r in results),
        errors=sum(r.errors for r in results),
    )


def machine_busy_seconds() -> float:
    """CPU-seconds all cores spent not idle, from /proc/stat (to see foreign load)."""
    with open("/proc/stat") as f:
        parts = f.readline().split()[1:]
    vals = [int(x) for x in parts]
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)
    return (sum(vals[:8]) - idle) / os.sysconf("SC_CLK_TCK")
