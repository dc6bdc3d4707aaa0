"""Prefect's server as a peer of our API: the same two requests (show a run, submit a run)
measured with the same load generator, connections and windows as P3 measures ours.

Why Prefect: it is the closest widely used job service of the same stack (FastAPI, uvicorn,
SQLAlchemy, SQLite by default), so its figures say what this kind of service does on this box.

Environment: Prefect is installed, pinned (``PREFECT_VERSION``), into its own virtualenv
``bench/.peer/prefect`` (ignored by git), created on first use and reused afterwards (~25 s
to create); never into the project's ``.venv``. The server is that venv's
``prefect server start`` on 127.0.0.1 and a free port, with its own ``PREFECT_HOME`` in a temp
dir and so its default SQLite database (``<PREFECT_HOME>/prefect.db``), one process, stopped
with SIGTERM (SIGKILL of its process group after 30 s) and the temp dir removed.

Settings (``SERVER_ENV``): telemetry off (``PREFECT_SERVER_ANALYTICS_ENABLED``), the UI off
(``PREFECT_SERVER_UI_ENABLED``), no block registration at start-up
(``PREFECT_API_BLOCKS_REGISTER_ON_START``: start-up only), log level WARNING (its default),
and the services that act on timers off: scheduler, late runs (it would turn the runs
submitted here into Late after 15 s: writes that ours has no counterpart of), foreman,
repossessor, pause expirations, cancellation cleanup, cleanup reconciler, DB vacuum, and the
triggers (no automation exists; its proactive loop runs every 5 s). The services that handle
the events of each request stay on as shipped (``--services events``, the default): the event
persister writes each run's state events to the ``events`` table, as ours writes a job's
``job_events`` rows, plus the task-run recorder and the event stream distributor (idle here).
``--services none`` is ``prefect server start --no-services`` (the web server alone, events
dropped); ``--services all`` is Prefect's defaults (UI and telemetry still off).

Seeded: one flow, one work pool (type "process", no worker polls it: runs stay SCHEDULED, as
ours stay queued on a cluster with max_running 0) and one deployment on it with a parameter
schema (``arguments``: list of strings, enforced), then N finished flow runs (80 % Completed,
12 % Failed, 8 % Cancelled, as ours are finished jobs) through
``POST /api/deployments/{id}/create_flow_run/bulk``, 100 runs a request (its limit), one
request at a time: 10,000 runs take 90-110 s here (printed; ~7 ms a run inside Prefect, plus
retries: a call fails whole with "database is locked" while the event persister writes the
previous calls' events, and its runs are sent again), then a wait until the server is idle
and a check that ``/api/flow_runs/count`` says N.

Measured kinds (pre-built request bytes, keep-alive, ``bench/loadgen.py``):

- ``show``: ``GET /api/flow_runs/{id}``, ids drawn at random among the seeded runs.
- ``submit``: ``POST /api/deployments/{id}/create_flow_run`` with a unique run name and
  ``{"arguments": [...]}``. This is Prefect's "submit a job": what ``prefect deployment run``
  and ``run_deployment`` call; the run is validated against the deployment, queued on its work
  pool as SCHEDULED, and a worker would later launch it, as ours queues a job for the
  supervisor. ``POST /api/flow_runs/`` instead records a run that a client is executing
  itself (a flow function called in-process), which is not a submission.

Figures: requests/s answered 2xx, non-2xx counted apart, server CPU per 2xx request from
/proc (the server process and its children), via ``p3_throughput.measure``, as P3 does for
ours; also CPU per answer of any status, and how long the server stays busy after the window
(``wait_idle``). Prefect runs a submit in a ``BEGIN DEFERRED`` SQLite transaction that reads
the deployment, then writes: in WAL mode a write after a read fails at once ("database is
locked", no busy wait) if another connection committed meanwhile, and Prefect answers 503
and closes the connection. So under P3's 32 connections most submits are 503 (one
connection: ~60 submits/s here); the load workers reopen closed connections
(``_ReopeningLoop``: ``loadgen._worker`` dies on a reset) and count the closes.

    python bench/peer_prefect.py [--size 10000] [--reps 3] [--seconds 2] [--kinds show,submit]
                                 [--services events|none|all]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import loadgen  # noqa: E402
from common import (  # noqa: E402
    BENCH,
    children_of,
    free_port,
    log,
    print_table,
    proc_cpu_seconds,
    summarize,
)
from loadgen import WorkerResult, _Conn, _parse  # noqa: E402
from p3_throughput import measure  # noqa: E402

PREFECT_VERSION = "3.9.1"
PEER_VENV = BENCH / ".peer" / "prefect"
BATCH = 100  # create_flow_run/bulk accepts at most 100 runs a request
PER_WORKER = 6000  # pre-built submits per load worker per window (wraps if exceeded)
ARGUMENTS = ["/opt/jobs/pi.py", "10"]  # the same arguments as P3's submit body
# (state type, weight) of the seeded runs: all finished, as ours are.
SEED_STATES = [("COMPLETED", 80), ("FAILED", 12), ("CANCELLED", 8)]

_OFF = "false"
SERVER_ENV = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": _OFF,
    "PREFECT_SERVER_UI_ENABLED": _OFF,
    "PREFECT_API_BLOCKS_REGISTER_ON_START": _OFF,
    "PREFECT_SERVER_LOGGING_LEVEL": "WARNING",
}
TIMER_SERVICES_OFF = {
    f"PREFECT_SERVER_SERVICES_{name}_ENABLED": _OFF
    for name in (
        "SCHEDULER",
        "LATE_RUNS",
        "FOREMAN",
        "REPOSSESSOR",
        "PAUSE_EXPIRATIONS",
        "CANCELLATION_CLEANUP",
        "CLEANUP_RECONCILER",
        "TRIGGERS",
    )
} | {"PREFECT_SERVER_SERVICES_DB_VACUUM_ENABLED": "[]"}
SERVICES = ("events", "none", "all")
PARAMETER_SCHEMA = {
    "title": "Parameters",
    "type": "object",
    "properties": {
        "arguments": {"title": "arguments", "type": "array", "items": {"type": "string"}}
    },
    "required": ["arguments"],
}


def ensure_venv() -> Path:
    """The peer venv's bin/ (created and Prefect installed on first use, then reused)."""
    stamp = PEER_VENV / "installed.txt"
    if stamp.exists() and stamp.read_text().strip() == PREFECT_VERSION:
        return PEER_VENV / "bin"
    log(f"creating {PEER_VENV} with prefect=={PREFECT_VERSION}")
    t0 = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(PEER_VENV)], check=True)
    subprocess.run(
        [
            str(PEER_VENV / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            f"prefect=={PREFECT_VERSION}",
        ],
        check=True,
    )
    stamp.write_text(PREFECT_VERSION + "\n")
    log(f"peer venv ready in {time.monotonic() - t0:.0f} s")
    return PEER_VENV / "bin"


def server_env(home: Path, services: str) -> dict[str, str]:
    """The environment of ``prefect server start``: no inherited PREFECT_ setting (nor
    PYTHONPATH or VIRTUAL_ENV of the project's venv), ours set."""
    if services not in SERVICES:
        raise ValueError(services)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PREFECT_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")
    }
    env.update(SERVER_ENV)
    if services == "events":
        env.update(TIMER_SERVICES_OFF)
    env["PREFECT_HOME"] = str(home)
    return env


def wait_idle(
    cpu_seconds: Callable[[], float], timeout: float = 60.0, step: float = 0.5
) -> tuple[float, float]:
    """Wait until a server is idle (< 4 % of a core over two ``step``s in a row), at most
    ``timeout`` s. Returns the seconds waited and the CPU seconds it used meanwhile."""
    t0, cpu0 = time.monotonic(), cpu_seconds()
    last, quiet = cpu0, 0
    while time.monotonic() - t0 < timeout and quiet < 2:
        time.sleep(step)
        now = cpu_seconds()
        quiet = quiet + 1 if now - last < 0.04 * step else 0
        last = now
    return time.monotonic() - t0, last - cpu0


def _raw(method: str, path: str, host: str, port: int, body: bytes = b"") -> bytes:
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: mrs-jobs-bench/1.0"
        f"\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class PrefectPeer:
    """A running Prefect server over a fresh SQLite database, seeded with ``size`` runs.

    ``host``, ``port`` and ``pid`` make it usable where P3 expects a ``Server``.

        with PrefectPeer(size=10_000) as peer:
            peer.measure("show", seconds=2.0)
    """

    def __init__(self, size: int = 10_000, services: str = "events") -> None:
        self.size = size
        self.services = services
        self.host = "127.0.0.1"
        self.port = 0
        self.home: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.flow_run_ids: list[str] = []
        self.deployment_id = ""
        self.seed_seconds = 0.0
        self.start_seconds = 0.0

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/api"

    def __enter__(self) -> PrefectPeer:
        try:
            self.start()
            self.seed(self.size)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 120.0) -> None:
        bin_dir = ensure_venv()
        self.home = Path(tempfile.mkdtemp(prefix="prefect-peer-"))
        self.port = free_port()
        argv = [str(bin_dir / "prefect"), "server", "start"]
        argv += ["--host", self.host, "--port", str(self.port)]
        if self.services == "none":
            argv.append("--no-services")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            argv,
            env=server_env(self.home, self.services),
            stdout=open(self.home / "server.log", "ab"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=str(self.home),
        )
        self._wait_healthy(timeout)
        self.start_seconds = time.monotonic() - t0
        log(f"prefect {PREFECT_VERSION} up at {self.url} in {self.start_seconds:.1f} s")

    def _wait_healthy(self, timeout: float) -> None:
        import httpx

        assert self.proc is not None and self.home is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = (self.home / "server.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"prefect server exited: {tail}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError("prefect server did not answer /api/health in time")

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.proc = None
        if self.home is not None:
            shutil.rmtree(self.home, ignore_errors=True)
            self.home = None

    def seed(self, size: int) -> None:
        """A flow, a work pool, a deployment and ``size`` finished runs (bulk, 100 a call)."""
        import httpx

        t0 = time.monotonic()
        with httpx.Client(base_url=self.url, timeout=120) as client:
            self.deployment_id = _create_deployment(client)
            rng = random.Random(17)
            kinds = [s for s, _ in SEED_STATES]
            weights = [w for _, w in SEED_STATES]
            for start in range(0, size, BATCH):
                runs = [
                    {
                        "name": f"seed-{start + k}",
                        "parameters": {"arguments": ARGUMENTS},
                        "state": {"type": rng.choices(kinds, weights)[0]},
                    }
                    for k in range(min(BATCH, size - start))
                ]
                self.flow_run_ids += _bulk_create(client, self.deployment_id, runs)
            self.seed_seconds = time.monotonic() - t0
            settled, _ = self.settle()
            count = _post(client, "/flow_runs/count", {})
        if count != size or len(set(self.flow_run_ids)) != size:
            raise RuntimeError(
                f"seeded {count} flow runs ({len(self.flow_run_ids)} ids), not {size}"
            )
        log(
            f"prefect: seeded {size:,} flow runs in {self.seed_seconds:.1f} s, "
            f"its events written {settled:.1f} s later"
        )

    def cpu_seconds(self) -> float:
        """CPU of the server process and its children."""
        return sum(proc_cpu_seconds(p) for p in [self.pid, *children_of(self.pid)])

    def settle(self, timeout: float = 60.0) -> tuple[float, float]:
        """Wait until the server is idle: the events of the last requests are written after
        their answers. Returns the seconds waited and the server's CPU seconds meanwhile."""
        return wait_idle(self.cpu_seconds, timeout)

    def requests(self, kind: str) -> Any:
        """``make(index) -> [bytes]`` for loadgen: pre-built requests of one kind."""
        host, port, ids, dep = self.host, self.port, self.flow_run_ids, self.deployment_id

        def make(index: int) -> list[bytes]:
            rng = random.Random(index)
            if kind == "show":
                return [
                    _raw("GET", f"/api/flow_runs/{rng.choice(ids)}", host, port) for _ in range(500)
                ]
            if kind == "submit":
                path = f"/api/deployments/{dep}/create_flow_run"
                return [
                    _raw("POST", path, host, port, _submit_body(f"load-{index}-{k}"))
                    for k in range(PER_WORKER)
                ]
            raise ValueError(kind)

        return make

    def measure(
        self,
        kind: str,
        seconds: float = 2.0,
        *,
        processes: int = 2,
        conns: int = 16,
        warmup: float = 0.5,
    ) -> dict[str, Any]:
        """One window of closed-loop load, as P3's ``measure`` (rate = 2xx answers/s; its
        CPU figures), then a wait until the server is idle; see ``with_errors`` for the
        figures it adds."""
        with reopening_connections():
            res = measure(
                self,  # type: ignore[arg-type]  # host, port, pid: what measure reads
                self.requests(kind),
                None,
                processes=processes,
                conns=conns,
                seconds=seconds,
                warmup=warmup,
            )
        return with_errors(res, seconds, self.settle())


# ------------------------------------------------------------------------------------------
# load: loadgen's closed loop, with connections reopened when the server closes them
# ------------------------------------------------------------------------------------------
CLOSED = -1  # pseudo-status: the server closed the connection (counted, not an answer)


class _ReopeningLoop:
    """``loadgen._worker``'s closed loop (no pacing) for a server that closes connections.

    Prefect answers 503 when SQLite is locked and then closes the connection (Starlette
    re-raises the exception after its handler's response, and uvicorn drops the connection);
    loadgen's own worker dies on the reset. Here a closed connection is reopened at once and
    the request it had in flight sent again; closes inside the window are counted under
    status ``CLOSED``.
    Same counting as loadgen: answers completing inside the window, latency from the send.
    """

    def __init__(self, host: str, port: int, conns: int, requests: list[bytes]) -> None:
        self.addr = (host, port)
        self.requests = requests
        self.k = 0
        self.sel = selectors.DefaultSelector()
        self.res = WorkerResult()
        self.inflight: dict[int, bytes] = {}
        self.window = (0.0, 0.0)
        self.conns = [self._open(n) for n in range(conns)]

    def _open(self, n: int) -> _Conn:
        sock = socket.create_connection(self.addr)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        return _Conn(sock, n)

    def send(self, c: _Conn, raw: bytes | None = None) -> None:
        if raw is None:
            raw = self.requests[self.k % len(self.requests)]
            self.k += 1
        self.inflight[c.n] = raw
        c.sent_at = time.time()
        try:
            c.sock.sendall(raw)  # small: fits the socket buffer
        except OSError:
            pass  # closed by the server: the next read sees it and reopens

    def start(self) -> None:
        for c in self.conns:
            self.send(c)
            self.sel.register(c.sock, selectors.EVENT_READ, c)

    def reopen(self, c: _Conn) -> None:
        self.sel.unregister(c.sock)
        c.sock.close()
        fresh = self._open(c.n)
        self.conns[c.n] = fresh
        self.sel.register(fresh.sock, selectors.EVENT_READ, fresh)
        self.send(fresh, self.inflight[c.n])

    def readable(self, c: _Conn, draining: bool) -> bool:
        """Reads what ``c`` has; True once ``c`` has nothing in flight (draining only)."""
        try:
            chunk = c.sock.recv(262144)
        except BlockingIOError:
            return False
        except OSError:
            chunk = b""
        if not chunk:
            if draining:
                self.sel.unregister(c.sock)
                return True
            if self.window[0] <= time.time() < self.window[1]:
                self.res.statuses[CLOSED] = self.res.statuses.get(CLOSED, 0) + 1
            self.reopen(c)
            return False
        c.buf += chunk
        while (status := _parse(c)) is not None:
            t = time.time()
            if self.window[0] <= t < self.window[1]:
                self.res.completed += 1
                self.res.statuses[status] = self.res.statuses.get(status, 0) + 1
                self.res.latencies.append(t - c.sent_at)
            if draining:
                self.sel.unregister(c.sock)
                return True
            self.send(c)
        return False

    def run(self, start_at: float, window: tuple[float, float]) -> None:
        self.window = window
        while time.time() < start_at:
            time.sleep(min(0.01, max(0.0, start_at - time.time())))
        self.start()
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        in_window = False
        while (now := time.time()) < window[1]:
            if not in_window and now >= window[0]:  # client CPU inside the window only
                cpu0, in_window = resource.getrusage(resource.RUSAGE_SELF), True
            for key, _ev in self.sel.select(timeout=0.2):
                self.readable(key.data, draining=False)
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        self.res.cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)

    def drain(self, timeout: float) -> None:
        """As loadgen: wait for the request in flight on each connection (not counted)."""
        pending = len(self.sel.get_map())
        deadline = time.time() + timeout
        while pending and time.time() < deadline:
            for key, _ev in self.sel.select(timeout=0.2):
                pending -= self.readable(key.data, draining=True)
        for c in self.conns:
            c.sock.close()


def _reopening_worker(
    host: str,
    port: int,
    conns: int,
    make_requests: Callable[[int], list[bytes]],
    index: int,
    start_at: float,
    window: tuple[float, float],
    queue: Any,
    drain_timeout: float = 120.0,
    interval: float = 0.0,
) -> None:
    """Drop-in for ``loadgen._worker`` (same arguments), closed loop only."""
    if interval > 0:
        raise ValueError("paced load: use loadgen's own worker")
    loop = _ReopeningLoop(host, port, conns, make_requests(index))
    loop.run(start_at, window)
    loop.drain(drain_timeout)
    queue.put(loop.res)


@contextmanager
def reopening_connections() -> Iterator[None]:
    """``loadgen.run_load`` inside this block drives ``_ReopeningLoop`` workers (run_load
    looks its worker up when it starts them; they are forked, so nothing is pickled)."""
    original = loadgen._worker
    loadgen._worker = _reopening_worker  # type: ignore[assignment]
    try:
        yield
    finally:
        loadgen._worker = original  # type: ignore[assignment]


def with_errors(
    res: dict[str, Any], seconds: float, after: tuple[float, float] = (0.0, 0.0)
) -> dict[str, Any]:
    """P3's window result plus ``closed`` (connections the server closed), ``errors``
    (non-2xx answers), the server CPU per answer of any kind, and ``after`` (seconds and CPU
    seconds the server stayed busy after the window, from ``wait_idle``) per 2xx answer."""
    res["closed"] = res["statuses"].pop(CLOSED, 0)
    ok = sum(n for s, n in res["statuses"].items() if 200 <= s < 300)
    answered = sum(res["statuses"].values())
    res["errors"] = answered - ok
    cpu = (res["server_cpu"] + res["db_cpu"]) * seconds
    res["server_cpu_per_answer_ms"] = 1000 * cpu / max(answered, 1)
    res["after_seconds"] = after[0]
    res["after_cpu_per_req_ms"] = 1000 * after[1] / max(ok, 1)
    return res


def _submit_body(name: str) -> bytes:
    return json.dumps({"name": name, "parameters": {"arguments": ARGUMENTS}}).encode()


def _post(client: Any, path: str, body: Any) -> Any:
    r = client.post(path, json=body)
    if r.status_code >= 300:
        raise RuntimeError(f"POST {path}: HTTP {r.status_code}: {r.text[:500]}")
    return r.json()


def _create_deployment(client: Any) -> str:
    flow = _post(client, "/flows/", {"name": "bench-flow"})
    _post(client, "/work_pools/", {"name": "bench-pool", "type": "process"})
    dep = _post(
        client,
        "/deployments/",
        {
            "name": "bench",
            "flow_id": flow["id"],
            "work_pool_name": "bench-pool",
            "entrypoint": "jobs/pi.py:main",
            "parameters": {},
            "parameter_openapi_schema": PARAMETER_SCHEMA,
            "enforce_parameter_schema": True,
        },
    )
    return str(dep["id"])


def _bulk_create(client: Any, deployment_id: str, runs: list[dict[str, Any]]) -> list[str]:
    """Create ``runs`` (at most 100), retrying the failed ones: a bulk call fails whole with
    "database is locked" while the event persister writes the previous calls' events."""
    path = f"/deployments/{deployment_id}/create_flow_run/bulk"
    ids: list[str] = []
    todo = runs
    for attempt in range(600):
        out = _post(client, path, todo)["results"]
        ids += [str(r["flow_run_id"]) for r in out if r.get("status") == "CREATED"]
        todo = [run for run, r in zip(todo, out, strict=True) if r.get("status") != "CREATED"]
        if not todo:
            return ids
        time.sleep(min(0.5, 0.05 * (attempt + 1)))
    raise RuntimeError(f"bulk create: {len(todo)} still failing: {str(out[:2])[:500]}")


def fmt_rate(xs: list[float]) -> str:
    s = summarize(xs)
    return f"{s['median']:,.0f} ({s['min']:,.0f}-{s['max']:,.0f})"


def median_window(windows: list[dict[str, Any]]) -> dict[str, Any]:
    return sorted(windows, key=lambda w: w["rate"])[len(windows) // 2]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=10_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--kinds", default="show,submit")
    ap.add_argument("--services", choices=SERVICES, default="events")
    args = ap.parse_args(argv)
    kinds = args.kinds.split(",")
    windows: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    with PrefectPeer(args.size, args.services) as peer:
        for rep in range(args.reps):
            for kind in kinds:
                w = peer.measure(kind, args.seconds, processes=args.processes, conns=args.conns)
                windows[kind].append(w)
                log(f"prefect {kind} rep{rep}: {w['rate']:.0f}/s statuses={w['statuses']}")
    rows = []
    for kind, ws in windows.items():
        med = median_window(ws)
        rows.append(
            [
                kind,
                fmt_rate([w["rate"] for w in ws]),
                f"{summarize([w['errors'] for w in ws])['median']:,.0f}",
                f"{med['server_cpu_per_req_ms']:.2f}",
                f"{med['server_cpu_per_answer_ms']:.2f}",
                f"{summarize([w['latency']['median'] for w in ws])['median'] * 1e3:.1f}",
                f"{med['after_seconds']:.1f} s, {med['after_cpu_per_req_ms']:.2f} ms/2xx",
            ]
        )
    print_table(
        f"Prefect {PREFECT_VERSION} server (SQLite, services {args.services}), "
        f"{args.size:,} runs, {args.processes}x{args.conns} connections, "
        f"{args.seconds:g} s windows (median (min-max) of {args.reps})",
        [
            "endpoint",
            "2xx /s",
            "non-2xx per window",
            "CPU ms/2xx",
            "CPU ms/answer",
            "p50 ms",
            "busy after the window",
        ],
        rows,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
