"""P16: latency at half the maximum rate (issue 21: p99 <= 25 ms there).

For each backend and kind (show, submit) over a seeded store, in one run: the maximum rate
(closed loop, P3's load: 2 processes x 16 keep-alive connections, pre-signed requests), then
the same connections paced to offer half of it (bench/loadgen.py, latency counted from when
each request was due). Prints the rates and the latency percentiles of both.

    .venv/bin/python bench/p16_half_rate.py --backends sqlite,postgres --size 10000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Server, log, make_store, print_table, seed_jobs  # noqa: E402
from p3_throughput import BENCH_ENV, _service_requests, measure  # noqa: E402


def _ms(summary: dict[str, float], key: str) -> str:
    return f"{1000 * summary[key]:.1f}"


def run(kind: str, size: int, seconds: float, kinds: list[str]) -> list[list[str]]:
    bs = make_store(kind)
    rows = []
    try:
        log(f"seeding {kind} {size:,}")
        seed_jobs(bs, size)
        assert bs.tenant is not None
        with Server.mrs(bs, **BENCH_ENV) as server:
            for what in kinds:
                make = _service_requests(
                    what, bs.tenant, server.host, server.port, bs.job_ids, 6000
                )
                args: dict[str, Any] = {"processes": 2, "conns": 16, "seconds": seconds}
                top = measure(server, make, bs, warmup=0.5, **args)
                half = measure(server, make, bs, warmup=1.0, rate=top["rate"] / 2, **args)
                for label, m in (("maximum", top), ("half", half)):
                    lat = m["latency"]
                    rows.append(
                        [kind, what, label, f"{m['rate']:,.0f}", _ms(lat, "median"),
                         _ms(lat, "p90"), _ms(lat, "p99"), _ms(lat, "max")]
                    )  # fmt: skip
                p99 = _ms(half["latency"], "p99")
                log(f"{kind} {what}: max {top['rate']:,.0f}/s, p99 at half rate {p99} ms")
    finally:
        bs.drop()
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--size", type=int, default=10000)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--kinds", default="show,submit")
    args = ap.parse_args()
    rows = []
    for kind in args.backends.split(","):
        rows += run(kind, args.size, args.seconds, args.kinds.split(","))
    headers = ["db", "request", "load", "rate /s", "p50 ms", "p90 ms", "p99 ms", "max ms"]
    print_table("P16 latency at the maximum rate and at half of it", headers, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
