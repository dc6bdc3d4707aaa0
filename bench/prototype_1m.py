"""Prototype changes measured on one store (default: SQLite, 1,000,000 jobs), src/ untouched.

    .venv/bin/python bench/prototype_1m.py [--size 1000000] [--backend sqlite]
        [--patches nodelay,auth_cache,purge_scan_once,analyze] [--indexes]
        [--partial-deleted-index]

Starts bench/serve_variant.py with the patches, then measures what they are meant to change:
idle CPU, P2 (optionally after creating the P2 index prototype), P1 at 1 and 1,000 ids and
the purge throughput, P3 submit and show. Prints the same tables as the benchmarks.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import p1_batch_delete as p1  # noqa: E402
import p2_list as p2  # noqa: E402
import p3_throughput as p3  # noqa: E402
from common import Server, log, make_store, print_table, seed_jobs  # noqa: E402
from run_all import idle_cpu  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1_000_000)
    ap.add_argument("--backend", default="sqlite")
    ap.add_argument("--patches", default="nodelay,auth_cache,purge_scan_once,analyze")
    ap.add_argument("--indexes", action="store_true", help="also create the P2 index prototype")
    ap.add_argument(
        "--partial-deleted-index",
        action="store_true",
        help="replace ix_jobs_deleted by a partial index WHERE deleted_ms > 0",
    )
    args = ap.parse_args(argv)
    bs = make_store(args.backend)
    try:
        log(f"seeding {args.backend} {args.size:,}")
        seed_jobs(bs, args.size)
        if args.partial_deleted_index:
            with bs.store.write() as conn:
                conn.exec_driver_sql("DROP INDEX ix_jobs_deleted")
                conn.exec_driver_sql(
                    "CREATE INDEX ix_jobs_deleted ON jobs (deleted_ms) WHERE deleted_ms > 0"
                )
            log("ix_jobs_deleted replaced by a partial index (deleted_ms > 0)")
        if args.indexes:
            log(f"P2 indexes created in {p2.apply_index_prototype(bs):.1f}s")
        bare = p3.start_bare(bs.data_dir.parent, nodelay="nodelay" in args.patches)
        try:
            with Server.mrs(bs, patches=args.patches, **p3.BENCH_ENV) as server:
                idle = idle_cpu(server)
                log(f"idle server CPU {idle:.2f} cores")
                r2 = p2.run(bs, server, reps=5, plans=True)
                r1 = p1.run(bs, server, reps=5, counts=(1, 10, 1000))
                r3 = p3.run(bs, server, bare, reps=3, seconds=1.5, kinds=("submit", "show"))
        finally:
            bare.stop()
    finally:
        bs.drop()
    print(
        f"\n## Prototype {args.patches}{' + P2 indexes' if args.indexes else ''}"
        f"{' + partial ix_jobs_deleted' if args.partial_deleted_index else ''} on "
        f"{args.backend} {args.size:,}"
    )
    print_table(
        "Idle service CPU",
        ["db", "jobs", "cores"],
        [[args.backend, f"{args.size:,}", f"{idle:.2f}"]],
    )
    p2.tables([r2])
    p2.plan_text([r2])
    p1.tables([r1])
    p3.tables([r3])
    return 0


if __name__ == "__main__":
    sys.exit(main())
