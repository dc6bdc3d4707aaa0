"""P5: memory: idle RSS of the service and its growth per tracked running job.

The service is ``tests/crash/serve_fake.py`` (``mrs-jobs serve`` whose SparkSubmit jobs with
first argument "fake" run ``tests/fake_engine.py``) on a fresh SQLite store, with a cluster of
max_running 200. Measured (VmRSS of the service process; PSS in brackets):
  - idle, just started (3 s after /health answers);
  - idle, warm: after 200 signed requests (show, list, a submit and its kill), 3 s later;
  - with 100 fake jobs running (``fake --sleep 600``), all RUNNING, 3 s later;
    growth per job = (running - warm) / 100;
  - after batch-deleting the 100 jobs (killed and purged), 3 s later (what stays).
The "physical limit" next to it: the bare FastAPI/uvicorn app (``bench/bare_app.py``) after the
same number of requests. Each job's shim and engine are separate processes (not the service's
RSS); their total is shown for information.

Targets: idle <= 120 MB; <= 2 MB per running job.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    BENCH,
    Api,
    RawHttp,
    Server,
    check,
    children_of,
    log,
    make_store,
    print_table,
    pss_kb,
    rss_kb,
    seed_jobs,
    signed_request,
)
from loadgen import run_load  # noqa: E402
from sqlalchemy import bindparam, text  # noqa: E402

N_JOBS = 100


def _threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0


def snapshot(pid: int) -> dict[str, float]:
    return {"rss_mb": rss_kb(pid) / 1024, "pss_mb": pss_kb(pid) / 1024, "threads": _threads(pid)}


def run(n_jobs: int = N_JOBS, settle: float = 3.0, seeded: int = 0) -> dict[str, Any]:
    bs = make_store("sqlite", max_running=max(200, n_jobs), max_queued=10_000)
    out: dict[str, Any] = {"jobs": n_jobs, "seeded": seeded}
    if seeded:
        seed_jobs(bs, seeded)
    seeded_ids = list(bs.job_ids)
    try:
        bare = Server(
            [sys.executable, str(BENCH / "bare_app.py")], {}, bs.data_dir.parent / "bare.log"
        ).start()
        try:
            time.sleep(settle)
            out["bare_cold"] = snapshot(bare.pid)
            http = RawHttp(bare.host, bare.port)
            raw = (
                f"GET /bare/show HTTP/1.1\r\nHost: {bare.host}:{bare.port}\r\n"
                "Content-Length: 0\r\n\r\n"
            ).encode()
            for _ in range(200):
                http.request(raw)
            http.close()
            time.sleep(settle)
            out["bare_warm"] = snapshot(bare.pid)
        finally:
            bare.stop()

        with Server.mrs(bs, fake=True) as server:
            time.sleep(settle)
            out["cold"] = snapshot(server.pid)
            api = Api(server, bs.tenant)  # type: ignore[arg-type]
            status, body, _ = api.call(
                "POST",
                "",
                body={
                    "job_type": "SparkSubmit",
                    "job_name": "warm",
                    "arguments": ["fake", "--sleep", "0"],
                    "properties": {},
                },
            )
            check(status, 200, body, "submit")
            warm_id = body["job_submit_result"]["job_id"]
            for k in range(200):
                if k % 2:
                    status, body, _ = api.call("GET", f"/{warm_id}")
                else:
                    status, body, _ = api.call("GET", "", "limit=10")
                check(status, 202, body, "warm-up")
            _wait_states(bs, [warm_id], {"FINISHED"})
            time.sleep(settle)
            out["warm"] = snapshot(server.pid)
            _concurrent_load(server, bs, seeded_ids or [warm_id])
            time.sleep(settle)
            out["loaded"] = snapshot(server.pid)

            ids = []
            for k in range(n_jobs):
                status, body, _ = api.call(
                    "POST",
                    "",
                    body={
                        "job_type": "SparkSubmit",
                        "job_name": f"mem-{k}",
                        "arguments": ["fake", "--sleep", "600"],
                        "properties": {},
                    },
                )
                check(status, 200, body, "submit")
                ids.append(body["job_submit_result"]["job_id"])
            t0 = time.perf_counter()
            _wait_states(bs, ids, {"RUNNING"})
            log(f"P5: {n_jobs} fake jobs RUNNING after {time.perf_counter() - t0:.1f}s")
            time.sleep(settle)
            out["running"] = snapshot(server.pid)
            kids = children_of(server.pid)
            shims = [p for p in _session_members(server.pid) if p not in kids] + kids
            out["engine_processes"] = len(set(shims))
            out["engine_rss_mb"] = sum(rss_kb(p) for p in set(shims)) / 1024
            out["engine_pss_mb"] = sum(pss_kb(p) for p in set(shims)) / 1024

            status, body, _ = api.call("POST", "/batch-delete", body={"job_id_list": ids})
            check(status, 202, body, "batch-delete")
            _wait_gone(bs, ids)
            time.sleep(settle)
            out["after"] = snapshot(server.pid)
            api.close()
    finally:
        bs.drop()
    out["per_job_mb"] = (out["running"]["rss_mb"] - out["warm"]["rss_mb"]) / n_jobs
    out["per_job_pss_mb"] = (out["running"]["pss_mb"] - out["warm"]["pss_mb"]) / n_jobs
    return out


def _concurrent_load(server: Any, bs: Any, ids: list[str], seconds: float = 5.0) -> None:
    """2 processes x 16 keep-alive connections of shows (of random seeded jobs) and lists, as
    P3 drives them: every API worker thread busy at once, so the store's pool opens what it may
    keep, and each connection's page cache fills from a store larger than it."""
    tenant = bs.tenant
    prefix = f"/v2/{tenant.project_id}/clusters/{tenant.cluster_id}/job-executions"
    rng = random.Random(5)

    def make(_i: int) -> list[bytes]:
        shows = [
            signed_request(tenant, server.host, server.port, "GET", f"{prefix}/{rng.choice(ids)}")
            for _ in range(200)
        ]
        return [*shows, signed_request(tenant, server.host, server.port, "GET", prefix)]

    done = run_load(server.host, server.port, make, processes=2, conns=16, seconds=seconds)
    log(f"P5: concurrent load {done.rate:.0f} requests/s, statuses {done.statuses}")


def _session_members(pid: int) -> list[int]:
    """Shims run in their own sessions, so they are found by the job marker instead."""
    import os

    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            env = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if b"MRS_JOBS_JOB_ID=" in env and int(entry) != pid:
            found.append(int(entry))
    return found


def _wait_states(bs: Any, ids: list[str], states: set[str], timeout: float = 180.0) -> None:
    q = text("SELECT count(*) FROM jobs WHERE state IN :s AND id IN :ids").bindparams(
        bindparam("s", expanding=True), bindparam("ids", expanding=True)
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with bs.store.read() as conn:
            n = conn.execute(q, {"s": sorted(states), "ids": ids}).scalar_one()
        if n == len(ids):
            return
        time.sleep(0.2)
    raise RuntimeError(f"jobs did not reach {states} in {timeout}s")


def _wait_gone(bs: Any, ids: list[str], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with bs.store.read() as conn:
            left = conn.execute(text("SELECT count(*) FROM jobs WHERE deleted_ms > 0")).scalar_one()
        if left == 0:
            return
        time.sleep(0.2)
    raise RuntimeError("deleted jobs were not purged in time")


def tables(r: dict[str, Any]) -> str:
    def row(label: str, s: dict[str, float], note: str = "") -> list[str]:
        return [label, f"{s['rss_mb']:.1f}", f"{s['pss_mb']:.1f}", str(s["threads"]), note]

    idle_ok = "ok" if r["loaded"]["rss_mb"] <= 120 else "MISS"
    per_ok = "ok" if r["per_job_mb"] <= 2 else "MISS"
    rows = [
        row("bare FastAPI app, started", r["bare_cold"]),
        row("bare FastAPI app, after 200 requests", r["bare_warm"], "the framework's floor"),
        row("service idle, just started", r["cold"]),
        row("service idle, after 200 requests", r["warm"]),
        row(
            "service idle, after 5 s of 32 concurrent connections",
            r["loaded"],
            f"{idle_ok} (target <=120 MB)",
        ),
        row(
            f"service with {r['jobs']} running jobs",
            r["running"],
            f"+{r['per_job_mb']:.2f} MB/job RSS ({r['per_job_pss_mb']:.2f} PSS) "
            f"{per_ok} (target <=2 MB/job)",
        ),
        row(
            f"service after deleting the {r['jobs']} jobs",
            r["after"],
            f"{r['after']['rss_mb'] - r['warm']['rss_mb']:+.1f} MB vs warm idle",
        ),
    ]
    text_ = print_table(
        "P5 memory of the service process (MB)",
        ["state", "RSS MB", "PSS MB", "threads", "note"],
        rows,
    )
    text_ += (
        f"\n\nOutside the service: {r['engine_processes']} job processes (shims + fake "
        f"engines) used {r['engine_rss_mb']:.0f} MB RSS / {r['engine_pss_mb']:.0f} MB PSS "
        f"in total ({r['engine_pss_mb'] / r['jobs']:.1f} MB PSS per job)."
    )
    print(text_.split("\n\n")[-1])
    return text_


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=N_JOBS)
    ap.add_argument("--seed", type=int, default=200_000, help="finished jobs in the store")
    args = ap.parse_args(argv)
    tables(run(args.jobs, seeded=args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
