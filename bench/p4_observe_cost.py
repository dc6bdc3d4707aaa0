"""P4, attribution: what reading a running Spark job's progress costs the job itself.

The P4 application run directly (``SparkSubmitEngine.build`` for a local cluster, no service,
no shim) while a thread observes it once a second the way the supervisor does:
  - none: nobody observes;
  - rest: the old way, the driver UI's ``/api/v1/applications/<id>/jobs`` every second;
  - eventlog: the new way, ``LocalDrivers.observe`` (the event log read from where it stopped;
    one UI request after 30 s, which a job this short never reaches).
Measured per run: wall time, and the CPU time of the job's processes (JVM, Python workers:
``RUSAGE_CHILDREN``), which a busy machine disturbs far less than wall time. The three
variants alternate, in a rotating order, after one warm-up run.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import log, print_table, summarize  # noqa: E402
from p4_engine_overhead import APP  # noqa: E402

from mrs_jobs.engines.base import ClusterSpec, JobSpec  # noqa: E402
from mrs_jobs.engines.spark import SparkSubmitEngine  # noqa: E402
from mrs_jobs.engines.spark_progress import (  # noqa: E402
    EVENTS_DIR,
    LocalDrivers,
    find_event_log_app,
    rest_jobs,
    ui_port_of,
)

VARIANTS = ("none", "rest", "eventlog")


def _observer(variant: str, workdir: Path, launch, stop: threading.Event) -> None:  # noqa: ANN001
    drivers = LocalDrivers()
    port = ui_port_of(launch, workdir)
    while not stop.wait(1.0):
        if variant == "eventlog":
            drivers.observe(workdir, launch)
        elif variant == "rest" and port is not None:
            found = find_event_log_app(workdir / EVENTS_DIR)
            if found is not None and found[1]:
                rest_jobs(port, found[0], 0.3)


def one_run(variant: str, scratch: Path, app: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the job's processes) of one run observed by ``variant``."""
    workdir = scratch / f"{variant}-{time.time_ns()}"
    job = JobSpec(f"p4-{time.time_ns()}", "SparkSubmit", "p4", [str(app)], {})
    launch = SparkSubmitEngine().build(job, ClusterSpec(cluster_id="bench"), workdir)
    stop = threading.Event()
    watcher = threading.Thread(target=_observer, args=(variant, workdir, launch, stop))
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(workdir / "stdout.log", "ab") as out, open(workdir / "stderr.log", "ab") as err:
        t0 = time.perf_counter()
        watcher.start()
        proc = subprocess.run(
            launch.argv, env=launch.env, cwd=launch.cwd, stdout=out, stderr=err, check=False
        )
        wall = time.perf_counter() - t0
    stop.set()
    watcher.join()
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"spark-submit exited {proc.returncode}")
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return wall, cpu


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="mrsbench-p4obs-"))
    app = scratch / "p4_app.py"
    app.write_text(APP)
    one_run("none", scratch, app)  # warm-up
    results: dict[str, list[tuple[float, float]]] = {v: [] for v in VARIANTS}
    for rep in range(args.reps):
        order = VARIANTS[rep % 3 :] + VARIANTS[: rep % 3]
        for variant in order:
            results[variant].append(one_run(variant, scratch, app))
        log(f"P4 observe rep {rep}: " + ", ".join(f"{v} {results[v][-1]}" for v in VARIANTS))
    base_wall = summarize([w for w, _ in results["none"]])["median"]
    base_cpu = summarize([c for _, c in results["none"]])["median"]
    rows = []
    for variant in VARIANTS:
        wall = summarize([w for w, _ in results[variant]])
        cpu = summarize([c for _, c in results[variant]])
        rows.append(
            [
                variant,
                f"{wall['median']:.2f} ({wall['min']:.2f}-{wall['max']:.2f}) s",
                f"{wall['median'] / base_wall:.3f}x",
                f"{cpu['median']:.2f} ({cpu['min']:.2f}-{cpu['max']:.2f}) s",
                f"{cpu['median'] / base_cpu:.3f}x",
            ]
        )
    print_table(
        f"P4 observation cost (PySpark job run directly, {args.reps} runs each; median (min-max))",
        ["observer", "wall", "vs none", "CPU of the job's processes", "vs none"],
        rows,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
