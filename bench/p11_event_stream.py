"""P11: the job event stream: change → SSE client and change → webhook received latency with
100 jobs/s of state changes, and the store's cost of N waiting stream clients next to N
clients polling ``show`` every 10 s, in one run (PostgreSQL, the multi-server case).

The server is ``mrs-jobs serve`` started through this file (``--serve``), which counts every
SQL statement its engines execute (a SQLAlchemy ``before_cursor_execute`` listener) and writes
the count to a file. Its PostgreSQL backends are found by ``application_name``; their CPU and
the server's come from ``/proc``. For the latency part it runs its supervisor (which sends the
webhooks; ``MRS_JOBS_WEBHOOK_ALLOW_PRIVATE=true`` for the loopback receiver); for the cost
part it is restarted API only (no supervisor, so every statement it runs is the clients' or
the stream hub's).

1. **Latency.** ``--sse`` clients hold SSE streams (``after=now``) in a child process, and a
   webhook receiver (a threaded ``http.server`` on 127.0.0.1 in a child process, answering
   204 at once) is subscribed with ``mrs-jobs admin create-webhook`` to the project's job.started,
   job.succeeded, job.failed and job.killed. The writer, in this process, is "another API
   server on the same PostgreSQL": through the service layer it submits jobs to a cluster
   with no running slots and kills each one (submit: 3 events, kill: 1, the one delivered as
   a webhook), ``--rate`` jobs/s for ``--seconds``. The latency of an event is the time its
   client read it (or the receiver got it) minus the time the writer's commit returned.
   Nothing this change does nudges this server's hub or supervisor (their 0.25 s polls find
   it; the supervisor's own commits, recording deliveries, do nudge the hub). Then the same
   through the server's own API (submit and kill as signed HTTP requests): the nudged path.
   The webhook is disabled afterwards.
2. **The store's cost of waiting.** Three windows of ``--window`` s with the writer at
   ``--cost-rate`` jobs/s: no clients; ``--clients`` SSE streams open (connected before the
   window); ``--clients`` clients each asking for one job every 10 s (staggered, a new
   connection each time, as a sensor does). Per window: the server's statements per second,
   its requests per second, the server's CPU and its database backends' CPU.

Run: ``.venv/bin/python bench/p11_event_stream.py [--rate 100] [--seconds 20] [--sse 10]
[--clients 1000] [--window 30] [--cost-rate 1]``. A server serves ``MRS_JOBS_MAX_CONNECTIONS``
(1,000) connections at once, open streams included: the bench server gets room for the
clients and a few more. Its per-project rate limit is raised too (a thousand clients
connecting at once would otherwise be refused with 429).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    MRS_JOBS,
    BenchStore,
    Server,
    Tenant,
    log,
    make_store,
    print_table,
    signed_request,
)

from mrs_jobs.services.context import Caller  # noqa: E402
from mrs_jobs.services.jobs import JobService  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
COUNT_ENV = "MRS_JOBS_BENCH_COUNT_FILE"
WRITER_THREADS = 8


# ----------------------------------------------------------------------------- the server
def serve_counted() -> None:
    """``mrs-jobs serve`` with every executed statement counted (``--serve``)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from mrs_jobs.cli.main import app

    count = [0]

    def counted(*_args: Any) -> None:
        count[0] += 1

    event.listen(Engine, "before_cursor_execute", counted)
    path = Path(os.environ[COUNT_ENV])

    def dump() -> None:
        tmp = path.with_suffix(".tmp")
        while True:
            tmp.write_text(str(count[0]))
            tmp.replace(path)  # atomic: a reader never sees a half-written number
            time.sleep(0.1)

    threading.Thread(target=dump, daemon=True).start()
    app(["serve"])


class Meter:
    """The server's statements, CPU and its database backends' CPU, between two reads."""

    def __init__(self, bs: BenchStore, server: Server, count_file: Path) -> None:
        self.bs, self.server, self.count_file = bs, server, count_file

    def read(self) -> dict[str, float]:
        time.sleep(0.25)  # the count file is rewritten every 0.1 s
        backends = sum(_cpu(pid) for pid in self.bs.server_backend_pids())
        return {
            "t": time.monotonic(),
            "statements": float(self.count_file.read_text() or 0),
            "server_cpu": _cpu(self.server.pid),
            "db_cpu": backends,
        }


def _cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


# ----------------------------------------------------------------------------- the writers
class Writer:
    """Submits and kills jobs at ``rate`` jobs/s; records when each change's commit returned."""

    def __init__(self, bs: BenchStore, via: Any = None) -> None:
        assert bs.tenant is not None
        self.tenant = bs.tenant
        self.service = JobService(
            bs.store, runnable_types=frozenset({"SparkSubmit"}), wake=lambda: None
        )
        self.caller = Caller(bs.tenant.project_id, None, "bench", None)
        self.via = via  # a signed-HTTP writer through the server, or None: the service layer
        self.committed: dict[tuple[str, str], float] = {}

    def run(self, rate: float, seconds: float) -> int:
        n = WRITER_THREADS
        threads = [threading.Thread(target=self._loop, args=(rate / n, seconds)) for _ in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return len(self.committed) // 2

    def _loop(self, rate: float, seconds: float) -> None:
        began = time.monotonic()
        n = 0
        while time.monotonic() - began < seconds:
            due = began + n / rate
            if due > time.monotonic():
                time.sleep(due - time.monotonic())
            n += 1
            job_id = self._submit()
            self.committed[(job_id, "job.submitted")] = time.time()
            self._kill(job_id)
            self.committed[(job_id, "job.killed")] = time.time()

    def _submit(self) -> str:
        if self.via is not None:
            return str(self.via.submit())
        job = self.service.submit(
            self.caller,
            self.tenant.cluster_id,
            job_type="SparkSubmit",
            job_name="p11",
            arguments=["/a.py"],
            properties={},
        )
        return job.id

    def _kill(self, job_id: str) -> None:
        if self.via is not None:
            self.via.kill(job_id)
        else:
            self.service.kill(self.caller, self.tenant.cluster_id, job_id)


class HttpWriter:
    """Submit and kill as signed requests to the server (each thread its own connection)."""

    def __init__(self, server: Server, tenant: Tenant) -> None:
        self.server, self.tenant = server, tenant
        self.local = threading.local()
        self.prefix = f"/v2/{tenant.project_id}/clusters/{tenant.cluster_id}/job-executions"

    def _http(self) -> Any:
        from common import RawHttp

        if not hasattr(self.local, "http"):
            self.local.http = RawHttp(self.server.host, self.server.port)
        return self.local.http

    def _call(self, path: str, body: bytes) -> bytes:
        raw = signed_request(
            self.tenant, self.server.host, self.server.port, "POST", path, "", body
        )
        status, data = self._http().request(raw)
        assert status in (200, 202), (status, data[:200])
        return data

    def submit(self) -> str:
        body = json.dumps({"job_type": "SparkSubmit", "job_name": "p11", "arguments": ["/a.py"]})
        data = self._call(self.prefix, body.encode())
        return str(json.loads(data)["job_submit_result"]["job_id"])

    def kill(self, job_id: str) -> None:
        self._call(f"{self.prefix}/{job_id}/kill", b"")


# ----------------------------------------------------------------------------- the webhooks
class Receiver:
    """A webhook receiver on 127.0.0.1 (a threaded ``http.server`` in a child process, off the
    writer's interpreter): notes when each delivery arrived and answers 204 at once."""

    def __init__(self) -> None:
        ctx = mp.get_context("fork")
        self.conn, child_conn = ctx.Pipe()
        self.child = ctx.Process(target=_receive, args=(child_conn,), daemon=True)
        self.child.start()
        self.url = str(self.conn.recv())

    def _ask(self, what: str) -> Any:
        self.conn.send(what)
        return self.conn.recv()

    def reset(self) -> None:
        self._ask("reset")

    def wait(self, n: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while self._ask("count") < n and time.monotonic() < deadline:
            time.sleep(0.1)

    def received(self) -> tuple[dict[tuple[str, str], tuple[float, int]], int]:
        """(job id, type) → (first receipt, the event's data.at); and the duplicates."""
        got, duplicates = self._ask("get")
        return got, duplicates

    def close(self) -> None:
        self._ask("stop")
        self.child.join(10)


def _receive(conn: Any) -> None:
    """The receiver's process: serves deliveries, answers the bench's questions on ``conn``."""
    lock = threading.Lock()
    state: dict[str, Any] = {"got": {}, "duplicates": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the service's client keeps them

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            now = time.time()
            self.send_response(204)
            self.end_headers()
            event = json.loads(body)
            key = (event["data"]["job_id"], event["type"])
            with lock:
                if key in state["got"]:
                    state["duplicates"] += 1
                else:
                    state["got"][key] = (now, int(event["data"]["at"]))

        def log_message(self, *_args: Any) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    http.daemon_threads = True
    threading.Thread(target=http.serve_forever, daemon=True).start()
    conn.send(f"http://127.0.0.1:{http.server_address[1]}/hook")
    while True:
        what = conn.recv()
        with lock:
            if what == "reset":
                state["got"], state["duplicates"] = {}, 0
                conn.send(None)
            elif what == "count":
                conn.send(len(state["got"]))
            elif what == "get":
                conn.send((dict(state["got"]), state["duplicates"]))
            else:
                conn.send(None)
                break
    http.shutdown()
    http.server_close()


def admin(bs: BenchStore, *args: str) -> str:
    """``mrs-jobs admin ...`` over the bench store (its data dir holds the service's key)."""
    env = {**os.environ, **bs.server_env(), "MRS_JOBS_WEBHOOK_ALLOW_PRIVATE": "true"}
    done = subprocess.run(
        [str(MRS_JOBS), "admin", *args], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


# ----------------------------------------------------------------------------- the clients
def _events_request(tenant: Tenant, host: str, port: int) -> bytes:
    path = f"/v2/{tenant.project_id}/clusters/{tenant.cluster_id}/job-events"
    raw = signed_request(tenant, host, port, "GET", path, "after=now")
    head, _, rest = raw.partition(b"\r\n")
    return head + b"\r\nAccept: text/event-stream" + b"\r\n" + rest


async def _sse_client(
    raw: bytes, host: str, port: int, seen: list[Any] | None, counts: list[int], stop: Any
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(raw)
    await writer.drain()
    buf = b""
    while not stop.is_set():
        try:
            chunk = await asyncio.wait_for(reader.read(65536), 0.5)
        except TimeoutError:
            continue
        if not chunk:
            break
        now = time.time()
        counts[0] += chunk.count(b"\nid: ")
        if seen is None:
            continue
        buf += chunk
        while b"\n\n" in buf:
            block, buf = buf.split(b"\n\n", 1)
            for line in block.split(b"\n"):
                if line.startswith(b"data: "):
                    data = json.loads(line[6:])
                    seen.append((data["data"]["job_id"], data["type"], now))
    writer.close()


def sse_clients(
    n: int, raw: bytes, host: str, port: int, record: bool, ready: Any, stop: Any, out: Any
) -> None:
    """A child process: ``n`` SSE streams; sends back what they read."""

    async def main() -> None:
        seen: list[Any] = []
        counts = [0]
        tasks = []
        for i in range(n):
            keep = seen if record else None
            tasks.append(asyncio.create_task(_sse_client(raw, host, port, keep, counts, stop)))
            if i % 50 == 49:
                await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)
        ready.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        out.put({"seen": seen, "events": counts[0]})

    asyncio.run(main())


def polling_clients(
    n: int, raw: bytes, host: str, port: int, every: float, stop: Any, out: Any
) -> None:
    """A child process: ``n`` clients, each asking for a job every ``every`` s (staggered),
    on a new connection each time."""

    async def one(offset: float, done: list[int]) -> None:
        await asyncio.sleep(offset)
        while not stop.is_set():
            began = time.monotonic()
            try:
                reader, writer = await asyncio.open_connection(host, port)
                writer.write(raw)
                await writer.drain()
                await reader.readuntil(b"\r\n\r\n")
                writer.close()
                done[0] += 1
            except OSError:
                pass
            await asyncio.sleep(max(0.0, every - (time.monotonic() - began)))

    async def main() -> None:
        done = [0]
        await asyncio.gather(*(one(every * i / n, done) for i in range(n)))
        out.put({"requests": done[0]})

    asyncio.run(main())


# ----------------------------------------------------------------------------- the phases
def latency(
    bs: BenchStore,
    server: Server,
    writer: Writer,
    receiver: Receiver,
    n_clients: int,
    rate: float,
    seconds: float,
) -> dict[str, Any]:
    """``n_clients`` SSE streams and the webhook ``receiver`` while ``writer`` makes ``rate``
    jobs/s of changes."""
    assert bs.tenant is not None
    receiver.reset()
    ctx = mp.get_context("fork")
    ready, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
    raw = _events_request(bs.tenant, server.host, server.port)
    args = (n_clients, raw, server.host, server.port, True, ready, stop, out)
    child = ctx.Process(target=sse_clients, args=args)
    child.start()
    assert ready.wait(60), "the SSE clients did not connect"
    began = time.monotonic()
    jobs = writer.run(rate, seconds)
    took = time.monotonic() - began
    time.sleep(2.0)  # the last events arrive
    stop.set()
    got = out.get(timeout=60)
    child.join(30)
    lags = []
    for job_id, kind, at in got["seen"]:
        committed = writer.committed.get((job_id, kind))
        if committed is not None:
            lags.append(at - committed)
    expected = len(writer.committed) * n_clients
    # webhooks: one delivery per job (job.killed; a queued job never starts)
    receiver.wait(jobs, 60.0)
    received, duplicates = receiver.received()
    hook_lags, hook_at_lags = [], []
    for key, (at, event_ms) in received.items():
        committed = writer.committed.get(key)
        if committed is not None:
            hook_lags.append(at - committed)
            hook_at_lags.append(at - event_ms / 1000)
    return {
        "jobs": jobs,
        "jobs_per_s": jobs / took,
        "events_read": len(got["seen"]),
        "matched": len(lags),
        "expected": expected,
        **_quantiles(lags),
        "hooks_received": len(received),
        "hooks_matched": len(hook_lags),
        "hooks_expected": jobs,
        "hooks_duplicates": duplicates,
        **{f"hook_{k}": v for k, v in _quantiles(hook_lags).items()},
        **{f"hook_at_{k}": v for k, v in _quantiles(hook_at_lags).items()},
    }


def _quantiles(lags: list[float]) -> dict[str, float]:
    lags = sorted(lags)
    if not lags:
        return {"median": float("nan"), "p99": float("nan"), "max": float("nan")}
    return {
        "median": lags[len(lags) // 2],
        "p99": lags[min(len(lags) - 1, int(len(lags) * 0.99))],
        "max": lags[-1],
    }


def cost_window(
    bs: BenchStore, server: Server, meter: Meter, mode: str, n: int, rate: float, window: float
) -> dict[str, Any]:
    """One window: ``mode`` "none", "stream" or "poll" with ``n`` clients, the writer at
    ``rate`` jobs/s (through the service layer, as another server)."""
    assert bs.tenant is not None
    ctx = mp.get_context("fork")
    ready, stop, out = ctx.Event(), ctx.Event(), ctx.Queue()
    child = None
    if mode == "stream":
        raw = _events_request(bs.tenant, server.host, server.port)
        args = (n, raw, server.host, server.port, False, ready, stop, out)
        child = ctx.Process(target=sse_clients, args=args)
    elif mode == "poll":
        writer = Writer(bs)
        target = writer._submit()  # the job each client asks for
        path = f"/v2/{bs.tenant.project_id}/clusters/{bs.tenant.cluster_id}/job-executions"
        raw = signed_request(bs.tenant, server.host, server.port, "GET", f"{path}/{target}")
        child = ctx.Process(
            target=polling_clients, args=(n, raw, server.host, server.port, 10.0, stop, out)
        )
        ready.set()
    connect = meter.read()
    if child is not None:
        child.start()
        assert ready.wait(120), "the clients did not connect"
    connected = meter.read()
    time.sleep(10.0 if mode == "poll" else 2.0)  # polls spread over their 10 s
    before = meter.read()
    Writer(bs).run(rate, window)
    after = meter.read()
    stop.set()
    got = out.get(timeout=60) if child is not None else {}
    if child is not None:
        child.join(30)
    span = after["t"] - before["t"]
    return {
        "mode": mode,
        "clients": n if mode != "none" else 0,
        "seconds": span,
        "statements_s": (after["statements"] - before["statements"]) / span,
        "server_cpu_pct": 100 * (after["server_cpu"] - before["server_cpu"]) / span,
        "db_cpu_pct": 100 * (after["db_cpu"] - before["db_cpu"]) / span,
        "connect_statements": connected["statements"] - connect["statements"],
        "delivered": got.get("events", 0),
        "requests": got.get("requests", 0),
    }


def main() -> None:
    if sys.argv[1:2] == ["--serve"]:
        serve_counted()
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--rate", type=float, default=100.0, help="jobs/s of changes (latency)")
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--sse", type=int, default=10, help="SSE clients measuring latency")
    p.add_argument("--clients", type=int, default=1000, help="waiting / polling clients")
    p.add_argument("--window", type=float, default=30.0, help="seconds per cost window")
    p.add_argument("--cost-rate", type=float, default=1.0, help="jobs/s during cost windows")
    args = p.parse_args()

    bs = make_store("postgres")
    count_file = bs.data_dir.parent / "statements"
    server = Server.mrs(
        bs,
        MRS_JOBS_RUN_SUPERVISOR="true",  # the latency part: its supervisor sends the webhooks
        MRS_JOBS_WEBHOOK_ALLOW_PRIVATE="true",  # the receiver is on 127.0.0.1
        MRS_JOBS_RATE_LIMIT_PER_SECOND="100000",
        MRS_JOBS_RATE_LIMIT_BURST="100000",
        MRS_JOBS_MAX_CONNECTIONS=str(args.clients + args.sse + 50),
        **{COUNT_ENV: str(count_file)},
    )
    server.argv = [sys.executable, str(Path(__file__).resolve()), "--serve"]
    receiver = Receiver()
    server.start()
    try:
        _run(bs, server, Meter(bs, server, count_file), receiver, args)
    finally:
        server.stop()
        receiver.close()
        bs.drop()


def _run(
    bs: BenchStore, server: Server, meter: Meter, receiver: Receiver, args: argparse.Namespace
) -> None:
    assert bs.tenant is not None
    created = json.loads(
        admin(
            bs,
            "create-webhook",
            bs.tenant.project_id,
            "--url",
            receiver.url,
            "--events",
            "job.started,job.succeeded,job.failed,job.killed",
        )
    )
    rows, results = [], []
    for name, via in (
        ("another server (not nudged)", None),
        ("this server's API (nudged)", HttpWriter(server, bs.tenant)),
    ):
        log(f"latency: {name}, {args.rate} jobs/s for {args.seconds} s, {args.sse} SSE clients")
        r = latency(bs, server, Writer(bs, via), receiver, args.sse, args.rate, args.seconds)
        results.append({"via": name, **r})
        rows.append(
            [
                name,
                f"{r['jobs_per_s']:.0f}",
                f"{r['matched']}/{r['expected']}",
                f"{r['median'] * 1000:.0f}",
                f"{r['p99'] * 1000:.0f}",
                f"{r['max'] * 1000:.0f}",
                f"{r['hooks_matched']}/{r['hooks_expected']}",
                f"{r['hook_median'] * 1000:.0f}",
                f"{r['hook_p99'] * 1000:.0f}",
                f"{r['hook_max'] * 1000:.0f}",
            ]
        )
    print_table(
        "Change → SSE client and → webhook received latency (ms; writer's commit returned → "
        "client read the event / receiver got the delivery)",
        ["changes made through", "jobs/s", "SSE events read/expected", "SSE median", "SSE p99",
         "SSE max", "webhooks received/expected", "webhook median", "webhook p99",
         "webhook max"],
        rows,
    )  # fmt: skip
    print(json.dumps({"latency": results}, indent=None))
    # The cost part: the webhook off (no deliveries pile up), the server API only again.
    admin(bs, "disable-webhook", created["id"])
    log("restarting the server without its supervisor for the cost windows")
    server.stop()
    server.env["MRS_JOBS_RUN_SUPERVISOR"] = "false"
    server.start()
    windows = []
    for mode in ("none", "stream", "poll"):
        log(f"cost: {mode}, {args.clients} clients, {args.window} s")
        windows.append(
            cost_window(bs, server, meter, mode, args.clients, args.cost_rate, args.window)
        )
    base = windows[0]["statements_s"]
    print_table(
        f"The store's cost of waiting clients ({args.cost_rate:g} jobs/s of changes meanwhile, "
        f"written by another server)",
        ["clients", "statements/s", "over no clients", "server CPU %", "DB backends CPU %",
         "events delivered", "show requests", "statements to connect"],
        [
            [
                {"none": "none", "stream": "SSE streams", "poll": "show every 10 s"}[w["mode"]]
                + (f" × {w['clients']}" if w["clients"] else ""),
                f"{w['statements_s']:.1f}",
                f"{w['statements_s'] - base:+.1f}",
                f"{w['server_cpu_pct']:.1f}",
                f"{w['db_cpu_pct']:.1f}",
                str(w["delivered"]),
                str(w["requests"]),
                f"{w['connect_statements']:.0f}" if w["mode"] == "stream" else "",
            ]
            for w in windows
        ],
    )  # fmt: skip
    print(json.dumps({"windows": windows}, indent=None))


if __name__ == "__main__":
    main()
