"""P10: purging 1,000,000 expired jobs while the API serves: p99 during the purge vs idle.

One store, one ``mrs-jobs serve`` process (its own supervisor), one run:
  1. seed ``--jobs`` ended jobs that ended 30 days ago (with ``--events`` state-change events
     each) plus ``--recent`` jobs that ended today, the cluster keeping everything
     (``retention_days=0``);
  2. start the server and a paced client: ``--clients`` threads, each sending one request
     every ``--period`` seconds in turn: the SDK's default list, a show of a recent job, a
     submit (signed like the SDK, one keep-alive connection each);
  3. windows of ``--interleave`` seconds (30) alternate until none of the old jobs is left:
     idle (the cluster's ``retention_days`` 0: nothing to purge) and purge (``retention_days``
     7 in the store, what ``mrs-jobs admin update-cluster <id> --set retention_days=7``
     writes; the server's supervisor finds the expired jobs at its next retention check and
     purges them in batches while the load goes on). Alternating, both kinds of window share
     whatever else the machine is doing (``--interleave 0``: one ``--idle`` window, then the
     purge to the end).
The figure: p99 of the purge window over p99 of the idle window (target <= 2), and the purge's
rate.

    .venv/bin/python bench/p10_retention_purge.py --jobs 1000000
    .venv/bin/python bench/p10_retention_purge.py --quick   # 50,000 jobs, a smoke test
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    OUT,
    BenchStore,
    RawHttp,
    Server,
    log,
    make_store,
    print_table,
    signed_request,
)
from p8_retention_sim import EVENT_COLS, JOB_COLS, hour_rows, insert_many  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from mrs_jobs.store import jobs as job_store  # noqa: E402
from mrs_jobs.store.tables import jobs  # noqa: E402
from mrs_jobs.store.tenants import get_cluster, update_cluster  # noqa: E402

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
GUARD = 3.0  # seconds at the start of each window that count for neither
ENV = {
    "MRS_JOBS_RATE_LIMIT_PER_SECOND": "1000000000",
    "MRS_JOBS_RATE_LIMIT_BURST": "1000000000",
    "MRS_JOBS_RETENTION_INTERVAL_SECONDS": "1",
    "MRS_JOBS_RETENTION_DAYS": "0",
}
SUBMIT = {"job_type": "SparkSubmit", "arguments": ["/opt/jobs/etl.py", "10"], "properties": {}}


def seed(bs: BenchStore, n: int, ended_ms: int, events: int, rng: random.Random) -> list[str]:
    """``n`` jobs that ended in the hours before ``ended_ms`` (rows, ``events`` events each)."""
    ids: list[str] = []
    done = 0
    hour = 0
    while done < n:
        k = min(20_000, n - done)
        rows, evs, _ = hour_rows(rng, bs, k, ended_ms - (hour + 1) * HOUR_MS)
        evs = [e for i, e in enumerate(evs) if i % 6 >= 6 - events]
        with bs.store.write() as conn:
            insert_many(conn, "jobs", JOB_COLS, rows)
            insert_many(conn, "job_events", EVENT_COLS, evs)
        ids += [r[0] for r in rows]
        done += k
        hour += 1
        if done % 200_000 == 0 or done == n:
            log(f"P10 seeded {done:,} jobs")
    return ids


@dataclasses.dataclass
class Sample:
    at: float
    kind: str
    seconds: float
    status: int


class Client(threading.Thread):
    """One keep-alive connection; a request every ``period`` seconds (list, show, submit)."""

    def __init__(self, server: Server, bs: BenchStore, recent: list[str], period: float, i: int):
        super().__init__(daemon=True)
        self.server, self.bs, self.recent, self.period = server, bs, recent, period
        self.rng = random.Random(i)
        self.i = i
        self.samples: list[Sample] = []
        self.stop = threading.Event()

    def request(self, kind: str, k: int) -> bytes:
        t = self.bs.tenant
        assert t is not None
        prefix = f"/v2/{t.project_id}/clusters/{t.cluster_id}/job-executions"
        host, port = self.server.host, self.server.port
        if kind == "list":
            return signed_request(t, host, port, "GET", prefix)
        if kind == "show":
            return signed_request(t, host, port, "GET", f"{prefix}/{self.rng.choice(self.recent)}")
        body = json.dumps({**SUBMIT, "job_name": f"p10-{self.i}-{k}"}).encode()
        return signed_request(t, host, port, "POST", prefix, "", body)

    def run(self) -> None:
        http = RawHttp(self.server.host, self.server.port)
        kinds = ("list", "show", "submit")
        next_at = time.monotonic() + self.rng.random() * self.period
        k = 0
        while not self.stop.is_set():
            time.sleep(max(0.0, next_at - time.monotonic()))
            next_at += self.period
            kind = kinds[k % 3]
            raw = self.request(kind, k)
            t0 = time.perf_counter()
            status, _ = http.request(raw)
            self.samples.append(Sample(time.monotonic(), kind, time.perf_counter() - t0, status))
            k += 1
        http.close()


def old_left(bs: BenchStore, cutoff_ms: int) -> int:
    assert bs.tenant is not None
    with bs.store.read() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(jobs)
                .where(
                    jobs.c.cluster_id == bs.tenant.cluster_id,
                    jobs.c.finished_ms > 0,
                    jobs.c.finished_ms < cutoff_ms,
                )
            ).scalar_one()
        )


def any_old_left(bs: BenchStore, cutoff_ms: int) -> bool:
    assert bs.tenant is not None
    with bs.store.read() as conn:
        return (
            conn.execute(
                select(jobs.c.id)
                .where(
                    jobs.c.cluster_id == bs.tenant.cluster_id,
                    jobs.c.finished_ms > 0,
                    jobs.c.finished_ms < cutoff_ms,
                )
                .limit(1)
            ).first()
            is not None
        )


def set_retention(bs: BenchStore, days: int) -> None:
    assert bs.tenant is not None
    with bs.store.write() as conn:
        cluster = get_cluster(conn, None, bs.tenant.cluster_id)
        assert cluster is not None
        config = cluster.config | {"retention_days": days}
        update_cluster(conn, dataclasses.replace(cluster, config=config))


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


Window = tuple[float, float]


def alternate(
    args: argparse.Namespace, bs: BenchStore, cutoff: int
) -> tuple[list[Window], list[Window], int]:
    """Idle and purge windows under the same load; returns them and the old jobs left.

    With ``--interleave S`` (the default) the cluster's retention is switched on and off every
    S seconds until no old job is left, so idle and purge windows alternate and share whatever
    else the machine is doing; the first ``GUARD`` seconds of each (a pass still finishing,
    the next check not yet come) count for neither. With 0: one idle window, then the purge.
    """
    idle: list[Window] = []
    purge: list[Window] = []
    left, started = args.jobs, time.monotonic()
    if not args.interleave:
        idle.append((time.monotonic(), time.monotonic() + args.idle))
        time.sleep(args.idle)
    on = not args.interleave
    while left > 0 and time.monotonic() - started < args.timeout:
        set_retention(bs, 7 if on else 0)
        begin = time.monotonic()
        span = args.interleave or args.timeout
        while time.monotonic() - begin < span and left > 0:
            time.sleep(1.0)
            if on and not any_old_left(bs, cutoff):
                left = 0
        (purge if on else idle).append((begin + GUARD, time.monotonic()))
        if left > 0:
            left = old_left(bs, cutoff)
            log(f"P10 old jobs left: {left:,}")
        on = not on if args.interleave else on
    return idle, purge, left


def run(args: argparse.Namespace) -> dict[str, Any]:
    bs = make_store("sqlite", max_running=0, tmp_root=args.tmp_root)
    rng = random.Random(9)
    now = job_store.now_ms()
    set_retention(bs, 0)
    t0 = time.perf_counter()
    seed(bs, args.jobs, now - 30 * DAY_MS, args.events, rng)
    recent = seed(bs, args.recent, now, args.events, rng)
    seed_s = time.perf_counter() - t0
    cutoff = now - 20 * DAY_MS
    server = Server.mrs(bs, **ENV).start()
    clients = [Client(server, bs, recent, args.period, i) for i in range(args.clients)]
    try:
        for c in clients:
            c.start()
        time.sleep(2.0)  # connections warm
        idle, purge, left = alternate(args, bs, cutoff)
        time.sleep(2.0)
    finally:
        for c in clients:
            c.stop.set()
        for c in clients:
            c.join(30)
        server.stop()
    samples = [s for c in clients for s in c.samples]
    if args.samples is not None:  # every request's time, to see when the slow ones came
        windows = {"idle": idle, "purge": purge}
        rows = [dataclasses.astuple(s) for s in samples]
        args.samples.write_text(json.dumps({"windows": windows, "samples": rows}))
    bs.drop()
    return summarise(samples, idle, purge, args, left, seed_s)


def summarise(
    samples: list[Sample],
    idle: list[Window],
    purge: list[Window],
    args: argparse.Namespace,
    left: int,
    seed_s: float,
) -> dict[str, Any]:
    def window(ws: list[Window], kind: str | None = None) -> list[float]:
        return [
            s.seconds
            for s in samples
            if any(w[0] <= s.at < w[1] for w in ws)
            and (kind is None or s.kind == kind)
            and s.status < 500
        ]

    out: dict[str, Any] = {
        "jobs": args.jobs,
        "events_per_job": args.events,
        "seed_s": seed_s,
        "purge_s": sum(b - a + GUARD for a, b in purge),
        "purge_jobs_per_s": (args.jobs - left) / max(sum(b - a + GUARD for a, b in purge), 1e-9),
        "interleave_s": args.interleave,
        "left": left,
        "errors": sum(1 for s in samples if s.status >= 500),
        "windows": {},
    }
    for kind in (None, "list", "show", "submit"):
        i, p = window(idle, kind), window(purge, kind)
        out["windows"][kind or "all"] = {
            "idle_n": len(i),
            "purge_n": len(p),
            "idle_p50_ms": statistics.median(i) * 1e3 if i else float("nan"),
            "purge_p50_ms": statistics.median(p) * 1e3 if p else float("nan"),
            "idle_p99_ms": pct(i, 0.99) * 1e3,
            "purge_p99_ms": pct(p, 0.99) * 1e3,
        }
    return out


def table(r: dict[str, Any]) -> str:
    rows = []
    for kind, w in r["windows"].items():
        ratio = w["purge_p99_ms"] / w["idle_p99_ms"]
        rows.append(
            (
                kind, w["idle_n"], w["purge_n"], f"{w['idle_p50_ms']:.1f}",
                f"{w['purge_p50_ms']:.1f}", f"{w['idle_p99_ms']:.1f}",
                f"{w['purge_p99_ms']:.1f}", f"{ratio:.2f}",
            )
        )  # fmt: skip
    out = print_table(
        f"P10: purging {r['jobs']:,} expired jobs ({r['events_per_job']} events each) in "
        f"{r['purge_s']:.0f} s ({r['purge_jobs_per_s']:,.0f} jobs/s) while the API serves",
        ["requests", "idle n", "purge n", "idle p50 ms", "purge p50 ms", "idle p99 ms",
         "purge p99 ms", "p99 purge/idle"],
        rows,
    )  # fmt: skip
    extra = f"old jobs left at the end: {r['left']:,}; 5xx answers: {r['errors']}"
    print(extra)
    return out + "\n" + extra + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=1_000_000)
    ap.add_argument("--recent", type=int, default=20_000)
    ap.add_argument("--events", type=int, default=2, help="events per job (0-6)")
    ap.add_argument("--clients", type=int, default=2)
    ap.add_argument("--period", type=float, default=0.05, help="seconds between requests")
    ap.add_argument("--idle", type=float, default=40.0, help="the idle window (--interleave 0)")
    ap.add_argument(
        "--interleave",
        type=float,
        default=30.0,
        help="seconds per alternating idle / purge window (0: one idle window, then the purge)",
    )
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument(
        "--tmp-root",
        type=Path,
        default=Path("/dev/shm") if Path("/dev/shm").is_dir() else None,
        help="where the SQLite file lives (default /dev/shm: the disk's flushes left out)",
    )
    ap.add_argument("--samples", type=Path, help="write every request's (at, kind, s, status)")
    ap.add_argument("--quick", action="store_true", help="50,000 jobs, 10 s idle")
    args = ap.parse_args(argv)
    if args.quick:
        args.jobs, args.recent, args.idle = 50_000, 2_000, 10.0
    result = run(args)
    text = table(result)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "p10_retention_purge.json").write_text(json.dumps(result, indent=1))
    (OUT / "p10_retention_purge.txt").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
