"""P13: the supervisor's housekeeping read (each cluster's live job types) with a long queue.

Before: one GROUP BY over every live job (``state IN (...)``), so its cost grew with the queue.
Now: ``job_counts`` for visible jobs plus the jobs awaiting purge (``store/supervision.py``).
Both are timed in one run on the same store: ``queued`` jobs waiting, the rest ended.

    .venv/bin/python bench/p13_housekeeping.py --backend sqlite --queued 16000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from sqlalchemy import select, update

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import make_store, seed_jobs  # noqa: E402

from mrs_jobs.domain.states import LIVE_STATES  # noqa: E402
from mrs_jobs.store import supervision  # noqa: E402
from mrs_jobs.store.tables import jobs  # noqa: E402


def scan_every_live_job(conn):  # the query before: every live job's row is read
    live = [s.value for s in LIVE_STATES]
    return conn.execute(
        select(jobs.c.cluster_id, jobs.c.job_type)
        .where(jobs.c.state.in_(live))
        .group_by(jobs.c.cluster_id, jobs.c.job_type)
    ).all()


def timed(store, fn, reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        with store.read() as conn:
            t0 = time.perf_counter()
            fn(conn)
            out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--queued", type=int, default=16_000)
    ap.add_argument("--ended", type=int, default=100_000)
    ap.add_argument("--reps", type=int, default=50)
    args = ap.parse_args()
    bs = make_store(args.backend)
    try:
        seed_jobs(bs, args.ended + args.queued)
        with bs.store.write() as conn:
            ids = [r[0] for r in conn.execute(select(jobs.c.id).limit(args.queued))]
            for start in range(0, len(ids), 1000):
                conn.execute(
                    update(jobs)
                    .where(jobs.c.id.in_(ids[start : start + 1000]))
                    .values(state="SUBMITTED", result="UNDEFINED", finished_ms=0)
                )
        before = timed(bs.store, scan_every_live_job, args.reps)
        after = timed(bs.store, supervision.live_types_by_cluster, args.reps)
        b, a = statistics.median(before), statistics.median(after)
        print(f"P13 {args.backend}: {args.queued:,} queued, {args.ended:,} ended")
        print(f"  every live job (before): median {b:.3f} ms")
        print(f"  job_counts + awaiting purge (now): median {a:.3f} ms ({b / a:.0f}x less)")
    finally:
        bs.drop()


if __name__ == "__main__":
    main()
