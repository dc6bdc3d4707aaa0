"""P4: engine overhead: a small PySpark job through the API vs. the same spark-submit run directly.

Through the API (``mrs-jobs serve`` on a fresh SQLite store, a cluster with free slots): the
client POSTs the submit and waits until the job is terminal. Measured:
  - api (server view): submit sent -> the FINISHED event committed by the supervisor
    (``job_events.at_ms``); the primary figure;
  - api (seen): submit sent -> first 20 ms poll of the store that sees FINISHED (the state is
    polled in the store, not through the API, so the benchmark's own requests do not load the
    service while the engine runs; one show at the end checks the API's answer);
  - submit -> engine started: submit sent -> ``engine.pid`` written by the shim right after it
    started spark-submit (mtime); and submit -> the ACCEPTED event (slot claimed);
  - engine exit -> FINISHED recorded: ``exit.json`` finished_ms -> the FINISHED event.
Directly: the argv, environment and working directory from that job's ``launch.json`` (paths
moved to a fresh directory, the service's process markers removed so its orphan sweep leaves
it alone), run with ``subprocess.run`` and timed start to exit.
API and direct runs alternate (one warm-up of each first, not counted).

Targets: api/direct <= 1.05x; submit -> engine start <= 100 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    Api,
    BenchStore,
    Server,
    check,
    log,
    make_store,
    print_table,
    proc_cpu_seconds,
    summarize,
)
from sqlalchemy import text  # noqa: E402

APP = """\
from pyspark.sql import SparkSession

spark = SparkSession.builder.appName("mrs-bench-p4").getOrCreate()
print("SUM", spark.sparkContext.parallelize(range(100000), 4).map(lambda x: x * x).sum())
spark.stop()
"""
TERMINAL = {"FINISHED", "FAILED", "KILLED"}
MARKERS = ("MRS_JOBS_INSTANCE", "MRS_JOBS_JOB_ID")


def _events(bs: BenchStore, job_id: str) -> dict[str, int]:
    with bs.store.read() as conn:
        rows = conn.execute(
            text("SELECT to_state, at_ms FROM job_events WHERE job_id = :j ORDER BY id"),
            {"j": job_id},
        ).all()
    return {r[0]: int(r[1]) for r in rows}


def api_run(bs: BenchStore, api: Api, app: Path, server_pid: int) -> dict[str, Any]:
    req = api.prepare(
        "POST",
        "",
        body={
            "job_type": "SparkSubmit",
            "job_name": "p4",
            "arguments": [str(app)],
            "properties": {},
        },
    )
    t0_wall = time.time()
    t0 = time.perf_counter()
    status, body, _ = api.send(req)
    check(status, 200, body, "submit")
    job_id = body["job_submit_result"]["job_id"]
    workdir = bs.data_dir / "jobs" / job_id
    launch = None
    cpu0 = proc_cpu_seconds(server_pid)
    while True:  # poll the store, not the API: the API's own cost must not slow the engine
        with bs.store.read() as conn:
            state = conn.execute(
                text("SELECT state FROM jobs WHERE id = :j"), {"j": job_id}
            ).scalar_one()
        if state in TERMINAL:
            break
        if launch is None:  # deleted when the job ends (it may hold secrets): copy it now
            try:
                launch = json.loads((workdir / "launch.json").read_text())
            except (OSError, ValueError):
                pass
        time.sleep(0.02)
    client = time.perf_counter() - t0
    service_cpu = proc_cpu_seconds(server_pid) - cpu0
    status, body, _ = api.call("GET", f"/{job_id}")
    check(status, 202, body, "show")
    detail = body["job_detail"]
    if detail["job_state"] != "FINISHED" or detail["job_result"] != "SUCCEEDED":
        raise RuntimeError(f"P4 job ended {detail['job_state']}/{detail['job_result']}")
    ev = _events(bs, job_id)
    t0_ms = t0_wall * 1000
    engine_start = (workdir / "engine.pid").stat().st_mtime * 1000
    exit_ms = json.loads((workdir / "exit.json").read_text())["finished_ms"]
    return {
        "job_id": job_id,
        "workdir": workdir,
        "launch": launch,
        "client_s": client,
        "service_cpu_s": service_cpu,
        "server_s": (ev["FINISHED"] - t0_ms) / 1000,
        "to_accepted_ms": ev["ACCEPTED"] - t0_ms,
        "to_engine_ms": engine_start - t0_ms,
        "engine_s": (exit_ms - engine_start) / 1000,
        "exit_to_finished_ms": ev["FINISHED"] - exit_ms,
    }


SHIM = Path(__file__).resolve().parent.parent / "src" / "mrs_jobs" / "runtime" / "shim.py"


def direct_run(
    workdir: Path, launch: dict[str, Any], scratch: Path, *, shim: bool = False
) -> float:
    """Run the job's launch.json argv directly (``shim``: through the service's shim, as the
    supervisor does, but without the service), in a fresh copy of its directory layout."""
    old = str(workdir.resolve())
    new = scratch / f"direct-{time.time_ns()}"
    new.mkdir(parents=True)
    for entry in workdir.iterdir():  # same layout (the conf dir was deleted with launch.json)
        if entry.is_dir():
            (new / entry.name).mkdir()
    (new / "conf").mkdir(exist_ok=True)  # SPARK_CONF_DIR (empty), removed when the job ended

    def move(s: Any) -> Any:
        if isinstance(s, str):
            return s.replace(old, str(new))
        if isinstance(s, list):
            return [move(x) for x in s]
        if isinstance(s, dict):
            return {k: move(v) for k, v in s.items()}
        return s

    argv = move(launch["argv"])
    env = {k: move(v) for k, v in launch["env"].items() if k not in MARKERS}
    cwd = move(launch["cwd"]) if os.path.isabs(launch["cwd"]) else str(new / launch["cwd"])
    if shim:
        moved = move(launch)
        moved["env"] = env
        (new / "launch.json").write_text(json.dumps(moved))
        argv = [sys.executable, "-I", str(SHIM), str(new)]
        cwd = str(new)
    with open(new / "stdout.log", "ab") as out, open(new / "stderr.log", "ab") as err:
        t0 = time.perf_counter()
        proc = subprocess.run(
            argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, check=False
        )
        dt = time.perf_counter() - t0
    code = proc.returncode
    if shim and code == 0:
        code = json.loads((new / "exit.json").read_text()).get("returncode")
    if code != 0:
        raise RuntimeError(
            f"direct spark-submit exited {code}: {(new / 'stderr.log').read_text()[-2000:]}"
        )
    return dt


def run(reps: int = 5, tmp_root: Path | None = None) -> dict[str, Any]:
    bs = make_store("sqlite", max_running=4, max_queued=100, tmp_root=tmp_root)
    scratch = Path(tempfile.mkdtemp(prefix="mrsbench-p4-"))
    app = scratch / "p4_app.py"
    app.write_text(APP)
    runs: list[dict[str, Any]] = []
    directs: list[float] = []
    shims: list[float] = []
    try:
        with Server.mrs(bs) as server:
            api = Api(server, bs.tenant)  # type: ignore[arg-type]
            first = api_run(bs, api, app, server.pid)  # warm-up (JVM classes, page cache)
            direct_run(first["workdir"], first["launch"], scratch)
            log(f"P4 warm-up done: api {first['server_s']:.2f}s")
            # api and direct every repetition (alternating order); the shim-only run (for
            # attribution) every other repetition, to keep the run short.
            orders = [
                ("api", "direct", "shim"),
                ("direct", "api"),
                ("shim", "api", "direct"),
                ("direct", "api"),
            ]
            for rep in range(reps):
                for what in orders[rep % 4]:
                    if what == "api":
                        runs.append(api_run(bs, api, app, server.pid))
                    elif what == "direct":
                        directs.append(direct_run(first["workdir"], first["launch"], scratch))
                    else:
                        shims.append(
                            direct_run(first["workdir"], first["launch"], scratch, shim=True)
                        )
                log(
                    f"P4 rep {rep}: api {runs[-1]['server_s']:.2f}s "
                    f"(client {runs[-1]['client_s']:.2f}s) direct {directs[-1]:.2f}s "
                    f"shim {shims[-1]:.2f}s engine start +{runs[-1]['to_engine_ms']:.0f} ms"
                )
            api.close()
    finally:
        bs.drop()
        shutil.rmtree(scratch, ignore_errors=True)
    ratios = [r["server_s"] / d for r, d in zip(runs, directs, strict=True)]
    cratios = [r["client_s"] / d for r, d in zip(runs, directs, strict=True)]
    return {
        "reps": reps,
        "api_server": summarize([r["server_s"] for r in runs]),
        "api_client": summarize([r["client_s"] for r in runs]),
        "direct": summarize(directs),
        "shim": summarize(shims),
        "ratio": summarize(ratios),
        "ratio_client": summarize(cratios),
        "to_accepted_ms": summarize([r["to_accepted_ms"] for r in runs]),
        "to_engine_ms": summarize([r["to_engine_ms"] for r in runs]),
        "engine_s": summarize([r["engine_s"] for r in runs]),
        "exit_to_finished_ms": summarize([r["exit_to_finished_ms"] for r in runs]),
        "service_cpu_s": summarize([r["service_cpu_s"] for r in runs]),
    }


def tables(r: dict[str, Any]) -> str:
    def s(x: dict[str, float], unit: str = "s", k: float = 1.0) -> str:
        return f"{x['median'] * k:.2f} ({x['min'] * k:.2f}-{x['max'] * k:.2f}) {unit}"

    rows = [
        ["direct spark-submit", s(r["direct"]), ""],
        [
            "direct, through the shim (no service)",
            s(r["shim"]),
            f"{r['shim']['median'] / r['direct']['median']:.3f}x",
        ],
        [
            "API: submit -> FINISHED recorded",
            s(r["api_server"]),
            f"{r['ratio']['median']:.3f}x ({r['ratio']['min']:.3f}-{r['ratio']['max']:.3f})"
            + (" ok" if r["ratio"]["median"] <= 1.05 else " MISS")
            + " (target <=1.05x)",
        ],
        [
            "API: submit -> FINISHED seen (20 ms store polls)",
            s(r["api_client"]),
            f"{r['ratio_client']['median']:.3f}x",
        ],
        ["  submit -> ACCEPTED (slot claimed)", s(r["to_accepted_ms"], "ms"), ""],
        [
            "  submit -> engine process started",
            s(r["to_engine_ms"], "ms"),
            ("ok" if r["to_engine_ms"]["median"] <= 100 else "MISS") + " (target <=100 ms)",
        ],
        ["  engine run (engine.pid -> exit.json)", s(r["engine_s"]), ""],
        ["  engine exit -> FINISHED recorded", s(r["exit_to_finished_ms"], "ms"), ""],
        ["service CPU during a run (server process)", s(r["service_cpu_s"]), ""],
    ]
    return print_table(
        f"P4 engine overhead (PySpark job, {r['reps']} runs each; median (min-max))",
        ["measure", "value", "vs direct / target"],
        rows,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args(argv)
    tables(run(args.reps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
