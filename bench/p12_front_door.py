"""P12 the front door: an authenticated client under a slow-head flood; replay protection's cost.

``flood``: a real ``mrs-jobs serve`` (API only), 1,000 loopback connections that send part of a
request head and then nothing (``tests/support_flood.py``: reopened when the server closes
them), from one address or from forty; beside it an authenticated client makes REQUESTS list
calls, every other one over a new connection. Prints the share answered 202 and p50/p99.
``--src DIR`` runs the server from another checkout's ``src`` (e.g. a ``git worktree`` of an
older commit: the figures before a change).

``replay``: two servers, replay protection off and on, the same signed POST (a kill of a job
that does not exist: 400 0176 after authentication, so the replay check runs and the handler
costs one read) and a signed GET show, sequential over one keep-alive connection, in
alternating rounds; prints requests/s (median of the rounds) and the on/off ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from tempfile import TemporaryDirectory

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support import SigV4Auth  # noqa: E402
from support_flood import SlowHeadFlood, ensure_open_files  # noqa: E402
from support_server import ServerProcess  # noqa: E402


def _server(data: Path, src: str | None, **env: str) -> ServerProcess:
    if src:
        env["PYTHONPATH"] = src + os.pathsep + os.environ.get("PYTHONPATH", "")
    return ServerProcess(data, MRS_JOBS_RUN_SUPERVISOR="false", **env).start()


def _client(srv: ServerProcess) -> tuple[httpx.Client, str]:
    boot = srv.bootstrap
    auth = SigV4Auth(boot["ak"], boot["sk"], boot["project_id"])
    base = f"/v2/{boot['project_id']}/clusters/{boot['cluster_id']}/job-executions"
    return httpx.Client(base_url=srv.endpoint, auth=auth, timeout=10), base


def _authenticated_calls(srv: ServerProcess, n: int) -> tuple[float, float, float]:
    kept, base = _client(srv)
    times, ok = [], 0
    with kept:
        for i in range(n):
            started = time.monotonic()
            try:
                if i % 2:
                    ok += kept.get(base).status_code == 202
                else:
                    fresh, _ = _client(srv)
                    with fresh:
                        ok += fresh.get(base).status_code == 202
            except httpx.HTTPError:
                pass
            times.append(time.monotonic() - started)
    times.sort()
    return ok / n, times[len(times) // 2], times[int(len(times) * 0.99) - 1]


def flood(args: argparse.Namespace) -> None:
    reason = ensure_open_files(args.connections * 2 + 500)
    if reason:
        raise SystemExit(reason)
    sources = (
        ["127.0.0.1"]
        if args.addresses == 1
        else [f"127.0.0.{i + 2}" for i in range(args.addresses)]
    )
    with TemporaryDirectory() as tmp:
        srv = _server(Path(tmp) / "data", args.src)
        try:
            host, port = srv.endpoint.split("//", 1)[1].rsplit(":", 1)
            calm = _authenticated_calls(srv, args.requests)
            fl = SlowHeadFlood(host, int(port), target=args.connections, sources=sources).start()
            try:
                fl.wait_opened(args.connections)
                time.sleep(args.settle)
                held = fl.open_now
                under = _authenticated_calls(srv, args.requests)
            finally:
                fl.stop()
        finally:
            srv.stop()
    print("| flood | served | p50 ms | p99 ms | flood connections held |")
    print("|---|---|---|---|---|")
    print(f"| none | {calm[0]:.1%} | {calm[1] * 1000:.1f} | {calm[2] * 1000:.1f} | - |")
    print(
        f"| {args.connections} from {args.addresses} address(es) | {under[0]:.1%} | "
        f"{under[1] * 1000:.1f} | {under[2] * 1000:.1f} | {held} |"
    )


def _rate(client: httpx.Client, base: str, n: int, method: str) -> float:
    started = time.perf_counter()
    for _ in range(n):
        if method == "POST":
            r = client.post(f"{base}/{uuid.uuid4()}/kill")
            assert r.status_code == 400, r.text  # 0176: authenticated, then not found
        else:
            r = client.get(f"{base}/{uuid.uuid4()}")
            assert r.status_code == 400, r.text
    return n / (time.perf_counter() - started)


def replay(args: argparse.Namespace) -> None:
    with TemporaryDirectory() as tmp:
        off = _server(Path(tmp) / "off", None)
        on = _server(Path(tmp) / "on", None, MRS_JOBS_REPLAY_PROTECTION="true")
        try:
            clients = {"off": _client(off), "on": _client(on)}
            rates: dict[tuple[str, str], list[float]] = {}
            for _ in range(args.rounds):
                for method in ("POST", "GET"):
                    for name, (client, base) in clients.items():
                        rates.setdefault((name, method), []).append(
                            _rate(client, base, args.requests, method)
                        )
        finally:
            off.stop()
            on.stop()
    print("| request | replay off (req/s) | replay on (req/s) | on / off |")
    print("|---|---|---|---|")
    for method, what in (("POST", "signed POST kill"), ("GET", "signed GET show")):
        a = statistics.median(rates[("off", method)])
        b = statistics.median(rates[("on", method)])
        print(f"| {what} | {a:.0f} | {b:.0f} | {b / a:.3f} |")
    check = _replay_check_seconds()
    post = 1 / statistics.median(rates[("off", "POST")])
    print(
        f"\nThe check itself (ReplayCache.first_use, full cache of 100,000): "
        f"{check * 1e6:.2f} µs a request, {check / post:.2%} of a signed POST here."
    )


def _replay_check_seconds(n: int = 200_000) -> float:
    from mrs_jobs.api.replay import ReplayCache

    cache = ReplayCache(max_entries=100_000)
    expires = time.time() + 900
    sigs = [uuid.uuid4().hex * 2 for _ in range(n)]
    for sig in sigs[: n // 2]:  # fill it first
        cache.first_use("AK", sig, expires)
    started = time.perf_counter()
    for sig in sigs[n // 2 :]:
        cache.first_use("AK", sig, expires)
    return (time.perf_counter() - started) / (n - n // 2)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    sub = p.add_subparsers(dest="what", required=True)
    f = sub.add_parser("flood")
    f.add_argument("--connections", type=int, default=1000)
    f.add_argument("--addresses", type=int, default=40, help="loopback source addresses")
    f.add_argument("--requests", type=int, default=200)
    f.add_argument("--settle", type=float, default=2.0, help="seconds before measuring")
    f.add_argument("--src", help="run the server from this src directory (before/after)")
    r = sub.add_parser("replay")
    r.add_argument("--rounds", type=int, default=5)
    r.add_argument("--requests", type=int, default=500)
    args = p.parse_args()
    flood(args) if args.what == "flood" else replay(args)


if __name__ == "__main__":
    main()
