"""P7: what the job box costs: run start latency, and P4 (API / direct spark-submit) boxed or not.

1. Start latency of a trivial run (``/bin/true``) through the runtime, as the supervisor starts
   every job: ``ProcessTable.launch`` -> ``exit.json`` written, with the box and without it,
   alternating, N times each.
2. P4 with and without the box, in one run: the same small PySpark job through ``mrs-jobs
   serve`` started with ``MRS_JOBS_BOX_JOBS=true`` (the default) and ``=false`` (the server is
   restarted between the two, on the same store), and the same spark-submit run directly (no
   service, no shim, no box) from the job's ``launch.json``; the three alternate every
   repetition, so the machine's noise lands on all of them alike.

Run: ``.venv/bin/python bench/p7_box_cost.py [--starts 40] [--reps 4]``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Api, Server, log, make_store, print_table, summarize  # noqa: E402
from p4_engine_overhead import APP, api_run, direct_run  # noqa: E402

from mrs_jobs.runtime.box import BoxPolicy, box_support, bwrap_path  # noqa: E402
from mrs_jobs.runtime.launch import LaunchSpec  # noqa: E402
from mrs_jobs.runtime.process import ProcessTable, read_exit  # noqa: E402


def start_latency(n: int, scratch: Path) -> dict[str, dict[str, float]]:
    """Seconds from launch to exit.json for /bin/true, boxed and not (alternating)."""
    bwrap = bwrap_path()
    policy = BoxPolicy(bwrap=str(bwrap), hidden=(str(scratch / "data"),))
    table = ProcessTable()
    times: dict[str, list[float]] = {"plain": [], "boxed": []}
    for i in range(n):
        for kind in ("plain", "boxed") if i % 2 == 0 else ("boxed", "plain"):
            workdir = scratch / "data" / "jobs" / f"{kind}-{i}"
            workdir.mkdir(parents=True)
            spec = LaunchSpec(argv=["/bin/true"], env={"PATH": "/usr/bin:/bin"}, cwd=str(workdir))
            box = policy.for_run(workdir, spec.argv, spec.env) if kind == "boxed" else None
            t0 = time.perf_counter()
            table.launch(workdir, spec, box=box, bwrap=policy.bwrap if box else None)
            while read_exit(workdir) is None:
                time.sleep(0.0005)
            times[kind].append(time.perf_counter() - t0)
            table.reap()
    return {k: summarize(v) for k, v in times.items()}


def p4_pair(reps: int, scratch: Path) -> dict[str, Any]:
    scratch.mkdir(parents=True, exist_ok=True)
    bs = make_store("sqlite", max_running=4, max_queued=100, tmp_root=scratch)
    app = scratch / "p7_app.py"
    app.write_text(APP)
    runs: dict[str, list[float]] = {"boxed": [], "plain": [], "direct": []}
    engine_ms: dict[str, list[float]] = {"boxed": [], "plain": []}
    first: dict[str, Any] | None = None
    try:
        for rep in range(reps + 1):  # the first round warms up (not counted)
            order = ("boxed", "plain", "direct") if rep % 2 else ("direct", "plain", "boxed")
            for kind in order:
                if kind == "direct":
                    if first is not None:
                        dt = direct_run(first["workdir"], first["launch"], scratch)
                        if rep:
                            runs["direct"].append(dt)
                    continue
                env = {"MRS_JOBS_BOX_JOBS": "true" if kind == "boxed" else "false"}
                with Server.mrs(bs, **env) as server:
                    api = Api(server, bs.tenant)  # type: ignore[arg-type]
                    r = api_run(bs, api, app, server.pid)
                    api.close()
                if kind == "plain" and first is None:
                    first = r  # its launch.json is the direct run's argv (no box in it)
                    if rep == 0:
                        dt = direct_run(first["workdir"], first["launch"], scratch)
                if rep:
                    runs[kind].append(r["server_s"])
                    engine_ms[kind].append(r["to_engine_ms"])
            if rep:
                log(
                    f"P7 rep {rep}: boxed {runs['boxed'][-1]:.2f}s plain {runs['plain'][-1]:.2f}s"
                    f" direct {runs['direct'][-1]:.2f}s"
                )
    finally:
        bs.drop()
    pairs = zip(runs["boxed"], runs["plain"], runs["direct"], strict=True)
    ratios = [(b / d, p / d, b / p) for b, p, d in pairs]
    return {
        "reps": reps,
        "runs": {k: summarize(v) for k, v in runs.items()},
        "engine_ms": {k: summarize(v) for k, v in engine_ms.items()},
        "boxed_vs_direct": summarize([r[0] for r in ratios]),
        "plain_vs_direct": summarize([r[1] for r in ratios]),
        "boxed_vs_plain": summarize([r[2] for r in ratios]),
    }


def _s(x: dict[str, float], unit: str = "s", k: float = 1.0, digits: int = 2) -> str:
    return (
        f"{x['median'] * k:.{digits}f} ({x['min'] * k:.{digits}f}-{x['max'] * k:.{digits}f}) "
        + unit
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--starts", type=int, default=40)
    ap.add_argument("--reps", type=int, default=4)
    args = ap.parse_args(argv)
    reason = box_support(bwrap_path())
    if reason is not None:
        print(f"no box on this host: {reason}", file=sys.stderr)
        return 2
    scratch = Path(tempfile.mkdtemp(prefix="mrsbench-p7-"))
    try:
        lat = start_latency(args.starts, scratch / "latency")
        print_table(
            f"P7 run start latency (/bin/true, launch -> exit.json, {args.starts} each)",
            ["run", "median (min-max)", "vs plain"],
            [
                ["plain (shim only)", _s(lat["plain"], "ms", 1000, 1), ""],
                [
                    "boxed (shim + bwrap)",
                    _s(lat["boxed"], "ms", 1000, 1),
                    f"+{(lat['boxed']['median'] - lat['plain']['median']) * 1000:.1f} ms",
                ],
            ],
        )
        if args.reps > 0:
            p4 = p4_pair(args.reps, scratch / "p4")
            r = p4["runs"]
            print_table(
                f"P7 P4 with and without the box (PySpark job, {p4['reps']} runs each)",
                ["measure", "median (min-max)", "ratio (per repetition)"],
                [
                    ["direct spark-submit", _s(r["direct"]), ""],
                    [
                        "API, no box: submit -> FINISHED",
                        _s(r["plain"]),
                        f"{p4['plain_vs_direct']['median']:.3f}x direct",
                    ],
                    [
                        "API, boxed: submit -> FINISHED",
                        _s(r["boxed"]),
                        f"{p4['boxed_vs_direct']['median']:.3f}x direct, "
                        f"{p4['boxed_vs_plain']['median']:.3f}x no box",
                    ],
                    ["submit -> engine started, no box", _s(p4["engine_ms"]["plain"], "ms"), ""],
                    ["submit -> engine started, boxed", _s(p4["engine_ms"]["boxed"], "ms"), ""],
                ],
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
