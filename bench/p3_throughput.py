"""P3: API throughput (submit, show, list) vs a bare endpoint of the same framework.

The service runs as ``mrs-jobs serve`` (supervisor on, production settings) over the seeded
store; its cluster is created with max_running 0 and max_queued 1,000,000 (``mrs-jobs admin
create-cluster <project> --max-running 0 --max-queued 1000000``), so submits stay queued. The
bare endpoint is ``bench/bare_app.py``: FastAPI + uvicorn started the same way (same socket
creation, same uvicorn settings, one process), with routes returning JSON of the same shape.

Load: ``bench/loadgen.py``, P processes x C keep-alive connections, closed loop, pre-signed
requests (signatures verified by the server on every request: AK/SK is in the measured path).
Each window: warm-up, then a measured interval; endpoints interleaved per repetition so each
service figure has a bare figure measured seconds apart (ratio per repetition).

The per-project rate limit (``MRS_JOBS_RATE_LIMIT_PER_SECOND``, default 200/s) would cap every
figure at 200/s; it is set to 1e9 here so the limiter's code still runs but never refuses.
Replay protection is off (the default).

CPU is read from /proc for the server process, its PostgreSQL backends (by
application_name), the load-generator processes (getrusage) and the whole machine; "other" is
what neither used (other people's work on a shared box). Server CPU per request is the
client-independent cost.

Targets: submit >= 1,000/s, show >= 3,000/s, each >= 0.5x the bare endpoint.

``--workers N``: ``mrs-jobs serve`` with 1 and with N API processes (``MRS_JOBS_WORKERS``) over
the same seeded store, started one after the other in each repetition (1, N, 1, N, ...), each
measured on the same kinds; prints both rates and the N/1 ratio per repetition (target:
>= 0.8 N, up to the core count). Server CPU is then the serve process and its children.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    BENCH,
    BenchStore,
    Server,
    Tenant,
    children_of,
    log,
    make_store,
    print_table,
    proc_cpu_seconds,
    seed_jobs,
    signed_request,
    summarize,
)
from loadgen import machine_busy_seconds, run_load  # noqa: E402

TARGETS = {"submit": 1000.0, "show": 3000.0}
RATIO_TARGET = 0.5
SUBMIT_BODY = {"job_type": "SparkSubmit", "arguments": ["/opt/jobs/pi.py", "10"], "properties": {}}
BENCH_ENV = {
    "MRS_JOBS_RATE_LIMIT_PER_SECOND": "1000000000",
    "MRS_JOBS_RATE_LIMIT_BURST": "1000000000",
    # The seeded jobs ended in 2025 (common.SEED_END_MS): with the default 30-day retention
    # the supervisor would purge them while the shows ask for them (400 0176).
    "MRS_JOBS_RETENTION_DAYS": "0",
}


def _service_requests(
    kind: str, tenant: Tenant, host: str, port: int, ids: list[str], per_worker: int
) -> Any:
    prefix = f"/v2/{tenant.project_id}/clusters/{tenant.cluster_id}/job-executions"

    def make(index: int) -> list[bytes]:
        rng = random.Random(index)
        if kind == "submit":
            # Unique bodies: every submit is a distinct signed request (no replay).
            return [
                signed_request(
                    tenant,
                    host,
                    port,
                    "POST",
                    prefix,
                    "",
                    json.dumps({**SUBMIT_BODY, "job_name": f"load-{index}-{k}"}).encode(),
                )
                for k in range(per_worker)
            ]
        if kind == "show":
            return [
                signed_request(tenant, host, port, "GET", f"{prefix}/{rng.choice(ids)}")
                for _ in range(500)
            ]
        if kind == "list":  # the SDK's default list: page 1, limit 10, newest first
            return [signed_request(tenant, host, port, "GET", prefix)]
        raise ValueError(kind)

    return make


def _bare_requests(kind: str, host: str, port: int) -> Any:
    path = {"submit": "/bare/submit", "show": "/bare/show", "list": "/bare/list"}[kind]
    body = json.dumps({**SUBMIT_BODY, "job_name": "bare"}).encode() if kind == "submit" else b""
    method = "POST" if kind == "submit" else "GET"
    raw = (
        f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json"
        f"\r\nUser-Agent: mrs-jobs-bench/1.0\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    raw += body

    def make(_index: int) -> list[bytes]:
        return [raw]

    return make


def _tree_cpu_seconds(pid: int) -> float:
    """CPU of the serve process and its children (its API processes with --workers)."""
    return sum(proc_cpu_seconds(p) for p in [pid, *children_of(pid)])


def measure(
    server: Server,
    make: Any,
    bs: BenchStore | None,
    *,
    processes: int,
    conns: int,
    seconds: float,
    warmup: float,
    rate: float = 0.0,
) -> dict[str, Any]:
    """One window of load (closed loop, or paced at ``rate`` requests/s in all)."""
    marks: dict[str, dict[str, float]] = {}

    db_marks: dict[str, dict[int, float]] = {}

    def on_window(edge: str) -> None:
        pids = bs.server_backend_pids() if bs is not None else []
        db_marks[edge] = {p: proc_cpu_seconds(p) for p in pids}
        marks[edge] = {
            "server": _tree_cpu_seconds(server.pid),
            "machine": machine_busy_seconds(),
        }

    res = run_load(
        server.host,
        server.port,
        make,
        processes=processes,
        conns=conns,
        warmup=warmup,
        seconds=seconds,
        on_window=on_window,
        rate=rate,
    )
    d = {k: marks["end"][k] - marks["start"][k] for k in marks["end"]}
    # Backends that appeared during the window count from zero; vanished ones are lost.
    d["db"] = sum(max(0.0, c - db_marks["start"].get(p, 0.0)) for p, c in db_marks["end"].items())
    ok = sum(n for s, n in res.statuses.items() if 200 <= s < 300)
    other = max(0.0, d["machine"] - d["server"] - d["db"] - res.client_cpu)
    return {
        "rate": ok / seconds,
        "completed": res.completed,
        "statuses": res.statuses,
        "latency": summarize(res.latencies),
        "server_cpu": d["server"] / seconds,  # cores
        "db_cpu": d["db"] / seconds,
        "client_cpu": res.client_cpu / seconds,
        "other_cpu": other / seconds,
        "server_cpu_per_req_ms": 1000 * (d["server"] + d["db"]) / max(ok, 1),
        "client_cpu_per_req_ms": 1000 * res.client_cpu / max(res.completed, 1),
    }


def run(
    bs: BenchStore,
    server: Server,
    bare: Server,
    *,
    reps: int = 3,
    seconds: float = 2.0,
    warmup: float = 0.5,
    processes: int = 2,
    conns: int = 16,
    kinds: tuple[str, ...] = ("submit", "show", "list"),
) -> dict[str, Any]:
    assert bs.tenant is not None
    ids = bs.job_ids
    out: dict[str, Any] = {
        "backend": bs.kind,
        "jobs": bs.seeded,
        "processes": processes,
        "conns": conns,
        "seconds": seconds,
        "kinds": {},
    }
    per_worker = 6000  # unique pre-signed submits per worker per window (wraps if exceeded)
    for kind in kinds:
        out["kinds"][kind] = {"service": [], "bare": [], "ratio": []}
    for rep in range(reps):
        for kind in kinds:
            # list: 2x2 connections; it is slow on big stores and every request still in
            # flight when the window closes is waited for (the drain) before the next one.
            pc = (processes, conns) if kind != "list" else (2, 2)
            b = measure(
                bare,
                _bare_requests(kind, bare.host, bare.port),
                None,
                processes=pc[0],
                conns=pc[1],
                seconds=seconds,
                warmup=warmup,
            )
            s = measure(
                server,
                _service_requests(kind, bs.tenant, server.host, server.port, ids, per_worker),
                bs,
                processes=pc[0],
                conns=pc[1],
                seconds=seconds,
                warmup=warmup,
            )
            k = out["kinds"][kind]
            k["service"].append(s)
            k["bare"].append(b)
            k["ratio"].append(s["rate"] / b["rate"] if b["rate"] else 0.0)
            log(
                f"P3 {bs.kind} {bs.seeded:,} {kind} rep{rep}: {s['rate']:.0f}/s "
                f"(bare {b['rate']:.0f}/s) statuses={s['statuses']} "
                f"server {s['server_cpu']:.2f} db {s['db_cpu']:.2f} client {s['client_cpu']:.2f}"
                f" other {s['other_cpu']:.2f} cores"
            )
    return out


def tables(results: list[dict[str, Any]]) -> str:
    rows = []
    cpu_rows = []
    for r in results:
        for kind, k in r["kinds"].items():
            rates = summarize([s["rate"] for s in k["service"]])
            brates = summarize([b["rate"] for b in k["bare"]])
            ratio = summarize(k["ratio"])
            target = TARGETS.get(kind)
            verdict = ""
            if target is not None:
                good = rates["median"] >= target and ratio["median"] >= RATIO_TARGET
                verdict = " ok" if good else " MISS"
            lat = summarize([s["latency"]["median"] for s in k["service"]])
            rows.append(
                [
                    r["backend"],
                    f"{r['jobs']:,}",
                    kind,
                    f"{rates['median']:,.0f} ({rates['min']:,.0f}-{rates['max']:,.0f})",
                    f"{brates['median']:,.0f} ({brates['min']:,.0f}-{brates['max']:,.0f})",
                    f"{ratio['median']:.2f}x ({ratio['min']:.2f}-{ratio['max']:.2f}){verdict}",
                    f"{lat['median'] * 1e3:.1f}",
                ]
            )
            med = sorted(k["service"], key=lambda s: s["rate"])[len(k["service"]) // 2]
            bmed = sorted(k["bare"], key=lambda s: s["rate"])[len(k["bare"]) // 2]
            cpu_rows.append(
                [
                    r["backend"],
                    f"{r['jobs']:,}",
                    kind,
                    f"{med['server_cpu']:.2f}",
                    f"{med['db_cpu']:.2f}",
                    f"{med['client_cpu']:.2f}",
                    f"{med['other_cpu']:.2f}",
                    f"{med['server_cpu_per_req_ms']:.2f}",
                    f"{bmed['server_cpu_per_req_ms']:.3f}",
                    f"{med['client_cpu_per_req_ms']:.3f}",
                    (
                        f"{1000 / med['server_cpu_per_req_ms']:,.0f}"
                        if med["server_cpu_per_req_ms"]
                        else "-"
                    ),
                ]
            )
    conns = f"{results[0]['processes']}x{results[0]['conns']}" if results else "?"
    text_ = print_table(
        f"P3 throughput, requests/s (median (min-max) of windows; {conns} connections, list 2x2)",
        [
            "db",
            "jobs",
            "endpoint",
            "service /s",
            "bare /s",
            "service/bare",
            "service p50 latency ms",
        ],
        rows,
    )
    text_ += "\n" + print_table(
        "P3 CPU during the median window (cores; 2 = the whole machine) and per request",
        [
            "db",
            "jobs",
            "endpoint",
            "server",
            "postgres",
            "client",
            "other",
            "server+db ms/req",
            "bare ms/req",
            "client ms/req",
            "1 core / (server+db ms/req)",
        ],
        cpu_rows,
    )
    return text_


def run_workers(
    bs: BenchStore,
    workers: int,
    *,
    reps: int,
    seconds: float,
    warmup: float = 0.5,
    processes: int,
    conns: int,
    kinds: tuple[str, ...],
) -> dict[str, Any]:
    """The same store served by ``serve`` with 1 and with ``workers`` API processes, started
    in turn within each repetition; ratio = rate with ``workers`` / rate with 1."""
    assert bs.tenant is not None
    out: dict[str, Any] = {"backend": bs.kind, "jobs": bs.seeded, "workers": workers, "kinds": {}}
    for kind in kinds:
        out["kinds"][kind] = {1: [], workers: [], "ratio": []}
    for rep in range(reps):
        for count in (1, workers):
            env = {**BENCH_ENV, "MRS_JOBS_WORKERS": str(count)}
            with Server.mrs(bs, **env) as server:
                for kind in kinds:
                    make = _service_requests(
                        kind, bs.tenant, server.host, server.port, bs.job_ids, 6000
                    )
                    pc = (processes, conns) if kind != "list" else (2, 2)
                    s = measure(
                        server,
                        make,
                        bs,
                        processes=pc[0],
                        conns=pc[1],
                        seconds=seconds,
                        warmup=warmup,
                    )
                    out["kinds"][kind][count].append(s)
                    log(
                        f"P3 workers={count} {bs.kind} {bs.seeded:,} {kind} rep{rep}: "
                        f"{s['rate']:.0f}/s statuses={s['statuses']} server "
                        f"{s['server_cpu']:.2f} db {s['db_cpu']:.2f} client "
                        f"{s['client_cpu']:.2f} other {s['other_cpu']:.2f} cores"
                    )
        for kind in kinds:
            k = out["kinds"][kind]
            one, many = k[1][-1]["rate"], k[workers][-1]["rate"]
            k["ratio"].append(many / one if one else 0.0)
    return out


def workers_table(results: list[dict[str, Any]]) -> str:
    rows = []
    for r in results:
        n = r["workers"]
        for kind, k in r["kinds"].items():
            one = summarize([s["rate"] for s in k[1]])
            many = summarize([s["rate"] for s in k[n]])
            ratio = summarize(k["ratio"])
            cpu1 = sorted(k[1], key=lambda s: s["rate"])[len(k[1]) // 2]
            cpun = sorted(k[n], key=lambda s: s["rate"])[len(k[n]) // 2]
            good = ratio["median"] >= 0.8 * n
            rows.append(
                [
                    r["backend"],
                    f"{r['jobs']:,}",
                    kind,
                    f"{one['median']:,.0f} ({one['min']:,.0f}-{one['max']:,.0f})",
                    f"{many['median']:,.0f} ({many['min']:,.0f}-{many['max']:,.0f})",
                    f"{ratio['median']:.2f}x ({ratio['min']:.2f}-{ratio['max']:.2f})"
                    + (" ok" if good else " MISS"),
                    f"{cpu1['server_cpu']:.2f} / {cpun['server_cpu']:.2f}",
                    f"{cpu1['db_cpu']:.2f} / {cpun['db_cpu']:.2f}",
                    f"{cpu1['client_cpu']:.2f} / {cpun['client_cpu']:.2f}",
                    f"{cpu1['other_cpu']:.2f} / {cpun['other_cpu']:.2f}",
                ]
            )
    n = results[0]["workers"] if results else "N"
    return print_table(
        f"P3 serve --workers: requests/s with 1 and {n} API processes (median (min-max) of "
        f"repetitions; ratio per repetition, target >= {0.8 * n:.1f}x); CPU cores in the median "
        f"window (1 / {n})",
        [
            "db",
            "jobs",
            "endpoint",
            "1 worker /s",
            f"{n} workers /s",
            "ratio",
            "server cores",
            "postgres cores",
            "client cores",
            "other cores",
        ],
        rows,
    )


def start_bare(tmp: Path) -> Server:
    argv = [sys.executable, str(BENCH / "bare_app.py")]
    return Server(argv, {}, tmp / "bare.log").start()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--kinds", default="submit,show,list")
    ap.add_argument(
        "--workers",
        type=int,
        default=1,
        help="N > 1: compare serve with 1 and N API processes (no bare endpoint)",
    )
    args = ap.parse_args(argv)
    if args.workers > 1:
        return main_workers(args)
    results = []
    for kind in args.backends.split(","):
        for size in [int(s) for s in args.sizes.split(",")]:
            bs = make_store(kind)
            try:
                log(f"seeding {kind} {size:,}")
                seed_jobs(bs, size)
                bare = start_bare(bs.data_dir.parent)
                try:
                    with Server.mrs(bs, **BENCH_ENV) as server:
                        results.append(
                            run(
                                bs,
                                server,
                                bare,
                                reps=args.reps,
                                seconds=args.seconds,
                                processes=args.processes,
                                conns=args.conns,
                                kinds=tuple(args.kinds.split(",")),
                            )
                        )
                finally:
                    bare.stop()
            finally:
                bs.drop()
    tables(results)
    return 0


def main_workers(args: argparse.Namespace) -> int:
    results = []
    for kind in args.backends.split(","):
        for size in [int(s) for s in args.sizes.split(",")]:
            bs = make_store(kind)
            try:
                log(f"seeding {kind} {size:,}")
                seed_jobs(bs, size)
                results.append(
                    run_workers(
                        bs,
                        args.workers,
                        reps=args.reps,
                        seconds=args.seconds,
                        processes=args.processes,
                        conns=args.conns,
                        kinds=tuple(args.kinds.split(",")),
                    )
                )
            finally:
                bs.drop()
    workers_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
