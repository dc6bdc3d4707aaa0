"""Run every benchmark (P1-P5, growth over store sizes) and print/write the tables.

    .venv/bin/python bench/run_all.py                      # full: 10k, 100k, 1M on both DBs
    .venv/bin/python bench/run_all.py --quick              # smoke run: small sizes, few reps
    .venv/bin/python bench/run_all.py --sizes 10000,100000 --backends sqlite --only p1,p2

For each backend and size: a fresh store is seeded (bulk insert), one ``mrs-jobs serve`` and
one bare app are started, then P2 (read-only), P1 (deletes; rows are restored), P3 (adds
queued jobs) and the in-process P3 breakdown run against it. P4 and P5 run once on their own
small stores.

Results: bench/out/results-<time>.json and bench/out/summary-<time>.md (all tables, plans).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import p1_batch_delete as p1  # noqa: E402
import p2_list as p2  # noqa: E402
import p3_breakdown as p3b  # noqa: E402
import p3_throughput as p3  # noqa: E402
import p4_engine_overhead as p4  # noqa: E402
import p5_memory as p5  # noqa: E402
from common import (  # noqa: E402
    OUT,
    Server,
    hardware,
    log,
    make_store,
    pg_available,
    print_table,
    proc_cpu_seconds,
    seed_jobs,
)


def idle_cpu(server: Server, seconds: float = 3.0) -> float:
    """Cores the service uses with no request in flight (its supervisor's passes)."""
    time.sleep(1.0)
    c0 = proc_cpu_seconds(server.pid)
    time.sleep(seconds)
    return (proc_cpu_seconds(server.pid) - c0) / seconds


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--sizes",
        default=None,
        help="comma-separated store sizes (default 10000,100000,1000000; --quick: 2000,10000)",
    )
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--only", default="p1,p2,p3,p4,p5")
    ap.add_argument("--quick", action="store_true", help="small sizes and few repetitions")
    args = ap.parse_args(argv)

    quick = args.quick
    sizes = [
        int(s)
        for s in (args.sizes or ("2000,10000" if quick else "10000,100000,1000000")).split(",")
    ]
    only = set(args.only.split(","))
    backends = args.backends.split(",")
    if "postgres" in backends and not pg_available():
        log("PostgreSQL is not reachable: skipping it")
        backends.remove("postgres")
    reps = {
        "p1": 3 if quick else 5,
        "p2": 5 if quick else 7,
        "p3": 1 if quick else 3,
        "p4": 1 if quick else 5,
    }
    p3_seconds = 1.0 if quick else 1.5

    started = time.strftime("%Y%m%d-%H%M%S")
    t_start = time.perf_counter()
    res: dict[str, Any] = {
        "hardware": hardware(),
        "started": started,
        "sizes": sizes,
        "backends": backends,
        "quick": quick,
        "blocks": [],
        "p1": [],
        "p1_variants": [],
        "p2": [],
        "p3": [],
        "p3_breakdown": [],
        "seed": [],
    }
    for kind in backends:
        for size in sizes:
            bs = make_store(kind)
            block = {"backend": kind, "jobs": size, "loadavg_start": _loadavg()}
            try:
                log(f"== {kind} {size:,}: seeding")
                secs = seed_jobs(bs, size)
                res["seed"].append({"backend": kind, "jobs": size, "seconds": secs})
                log(f"seeded {size:,} jobs in {secs:.1f}s")
                bare = p3.start_bare(bs.data_dir.parent)
                try:
                    with Server.mrs(bs, **p3.BENCH_ENV) as server:
                        block["idle_server_cores"] = idle_cpu(server)
                        log(f"idle server CPU: {block['idle_server_cores']:.2f} cores")
                        if "p2" in only:
                            res["p2"].append(p2.run(bs, server, reps=reps["p2"]))
                        if "p1" in only:
                            res["p1"].append(p1.run(bs, server, reps=reps["p1"]))
                        if "p3" in only:
                            res["p3"].append(
                                p3.run(bs, server, bare, reps=reps["p3"], seconds=p3_seconds)
                            )
                finally:
                    bare.stop()
                if "p3" in only:
                    res["p3_breakdown"].append(p3b.run(bs, n=60 if quick else 200))
                if "p1" in only:  # server stopped: its supervisor must not purge in between
                    res["p1_variants"].append(p1.sql_variants(bs, reps=3 if quick else 5))
            finally:
                block["loadavg_end"] = _loadavg()
                res["blocks"].append(block)
                bs.drop()
    if "p4" in only:
        log("== P4")
        res["p4"] = p4.run(reps["p4"])
    if "p5" in only:
        log("== P5")
        res["p5"] = p5.run(20 if quick else 100)
    res["seconds"] = time.perf_counter() - t_start

    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"results-{started}.json").write_text(json.dumps(res, indent=1, default=str))
    md = render(res)
    (OUT / f"summary-{started}.md").write_text(md)
    log(f"done in {res['seconds'] / 60:.1f} min; bench/out/summary-{started}.md")
    return 0


def render(res: dict[str, Any]) -> str:
    hw = res["hardware"]
    parts = [
        f"# mrs-jobs benchmarks, {res['started']}\n",
        "Hardware: " + ", ".join(f"{k} {v}" for k, v in hw.items()),
        f"\nTotal run time: {res.get('seconds', 0) / 60:.1f} min",
        "\nLoad average at the start / end of each block (other work on the box): "
        + "; ".join(
            f"{b['backend']} {b['jobs']:,}: {b['loadavg_start']} / {b.get('loadavg_end', '?')}"
            for b in res["blocks"]
        ),
    ]
    if res["seed"]:
        parts.append(
            print_table(
                "Seeding (bulk insert, 6 events per job)",
                ["db", "jobs", "seconds", "jobs/s"],
                [
                    [
                        s["backend"],
                        f"{s['jobs']:,}",
                        f"{s['seconds']:.1f}",
                        f"{s['jobs'] / s['seconds']:,.0f}",
                    ]
                    for s in res["seed"]
                ],
            )
        )
    if any("idle_server_cores" in b for b in res["blocks"]):
        parts.append(
            print_table(
                "Idle service CPU (no requests; the supervisor's passes), cores",
                ["db", "jobs", "cores"],
                [
                    [b["backend"], f"{b['jobs']:,}", f"{b['idle_server_cores']:.2f}"]
                    for b in res["blocks"]
                    if "idle_server_cores" in b
                ],
            )
        )
    if res["p1"]:
        parts.append(p1.tables(res["p1"]))
    if res.get("p1_variants"):
        parts.append(p1.variant_table(res["p1_variants"]))
    if res["p2"]:
        parts.append(p2.tables(res["p2"]))
    if res["p3"]:
        parts.append(p3.tables(res["p3"]))
    if res["p3_breakdown"]:
        parts.append(p3b.tables(res["p3_breakdown"]))
    if res.get("p4"):
        parts.append(p4.tables(res["p4"]))
    if res.get("p5"):
        parts.append(p5.tables(res["p5"]))
    if res["p2"]:
        parts.append("\n## Query plans (largest store of each backend)")
        biggest = max(r["jobs"] for r in res["p2"])
        parts.append(p2.plan_text(res["p2"], jobs=biggest))
    return "\n".join(parts) + "\n"


if __name__ == "__main__":
    sys.exit(main())
