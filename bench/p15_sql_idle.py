"""P15: the cluster's Spark SQL server (a JVM) after one query: its memory, and its idle stop.

A real ``mrs-jobs serve`` (SQLite, real engines, cluster with running slots) gets one SparkSql
job (``SELECT 1``). The bench finds the cluster's SQL server by its name in /proc
(``mrs-jobs-sql-<cluster id>``), samples the resident memory of its whole process tree (the
shim, bwrap, spark-submit's JVM) once a second from the job's end until the service stops it,
and prints: the server's start and the job's time, its RSS right after the job, its peak, how
long after the job it was stopped, and the service's own RSS before and after. The idle
setting is ``MRS_JOBS_ENGINE_IDLE_SECONDS`` (default 600 s); ``--idle`` sets it for this run,
and the supervisor's housekeeping, which applies it, runs every 10 s.

    .venv/bin/python bench/p15_sql_idle.py --idle 60
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Api, Server, check, log, make_store  # noqa: E402

PAGE_KB = 4


def _rss_mb(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/statm").read_text().split()
    except OSError:
        return 0.0
    return int(fields[1]) * PAGE_KB / 1024


def _tree(root: int) -> list[int]:
    """``root`` and every process below it (by parent pid)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [root], [root]
    while frontier:
        frontier = [p for p, pp in parents.items() if pp in frontier]
        found += frontier
    return found


def _sql_server(cluster_id: str) -> int | None:
    """The shim of the cluster's SQL server: the oldest process whose argv names it."""
    needle = f"mrs-jobs-sql-{cluster_id}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return min(found) if found else None


def _tree_rss(root: int) -> float:
    return sum(_rss_mb(p) for p in _tree(root))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--idle", type=float, default=60.0, help="MRS_JOBS_ENGINE_IDLE_SECONDS")
    ap.add_argument("--timeout", type=float, default=900.0)
    args = ap.parse_args()
    bs = make_store("sqlite", max_running=4)
    assert bs.tenant is not None
    server = Server.mrs(bs, MRS_JOBS_ENGINE_IDLE_SECONDS=str(args.idle)).start()
    api = Api(server, bs.tenant)
    try:
        service_before = _rss_mb(server.pid)
        t0 = time.monotonic()
        body = {"job_type": "SparkSql", "job_name": "p15", "arguments": ["SELECT 1"]}
        status, out, _ = api.call("POST", body=body)
        check(status, 200, out, "submit")
        job_id = out["job_submit_result"]["job_id"]
        state = ""
        while state not in ("FINISHED", "FAILED", "KILLED"):
            assert time.monotonic() - t0 < args.timeout, "the job did not end"
            time.sleep(0.5)
            status, out, _ = api.call("GET", f"/{job_id}")
            state = out["job_detail"]["job_state"]
        ended = time.monotonic()
        result = out["job_detail"]["job_result"]
        shim = _sql_server(bs.tenant.cluster_id)
        assert shim is not None, "no SQL server found"
        after_job = peak = _tree_rss(shim)
        log(f"job {state}/{result} in {ended - t0:.1f} s; SQL server tree {after_job:.0f} MB")
        while _sql_server(bs.tenant.cluster_id) is not None:
            assert time.monotonic() - ended < args.timeout, "the SQL server was never stopped"
            peak = max(peak, _tree_rss(shim))
            time.sleep(1.0)
        stopped = time.monotonic() - ended
        service_after = _rss_mb(server.pid)
        print(
            "\n| idle setting s | job (server start + query) s | SQL server RSS after the job MB "
            "| peak MB | stopped after the job s | service RSS before / after MB |"
        )
        print("|---|---|---|---|---|---|")
        print(
            f"| {args.idle:.0f} | {ended - t0:.1f} | {after_job:.0f} | {peak:.0f} | {stopped:.0f} "
            f"| {service_before:.0f} / {service_after:.0f} |"
        )
    finally:
        api.close()
        server.stop()
        bs.drop()


if __name__ == "__main__":
    main()
