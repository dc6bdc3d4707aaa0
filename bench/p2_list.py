"""P2: filtered, paged list over the seeded store, with an exact ``total_record``.

Each query is sent through the HTTP API (pre-signed, keep-alive, signature checked) and timed
as the client sees it; the "physical limit" next to it is the store's own query function
(``store.jobs.list_visible``: the COUNT and the page SELECT) run in this process on the same
database. The SQL the service really sends is captured from the engine and its plan printed
(SQLite ``EXPLAIN QUERY PLAN``, PostgreSQL ``EXPLAIN (ANALYZE, BUFFERS)``).

Queries (limit 10, sort desc, the SDK's defaults): all jobs; by state (FAILED, ~4 %); by type
(SparkSql, ~15 %); by name (one of 1,000 names, ~0.1 %); by a one-day time window (~0.27 %).
Each on the first page and on a deep page: page 1,000 (rows 9,991-10,000), or the last page
when there are fewer matches.

Target: median <= 20 ms per request on SQLite (1,000,000 jobs).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    DAY_MS,
    SEED_START_MS,
    Api,
    BenchStore,
    Server,
    check,
    log,
    print_table,
    seeded_stores,
    summarize,
)
from sqlalchemy import event  # noqa: E402

from mrs_jobs.domain.validation import ListQuery  # noqa: E402
from mrs_jobs.store import jobs as job_store  # noqa: E402

TARGET_MS = 20.0
DEEP_PAGE = 1000
LIMIT = 10


def filters() -> list[tuple[str, dict[str, str]]]:
    day = SEED_START_MS + 180 * DAY_MS  # mid-year
    return [
        ("all", {}),
        ("state=FAILED", {"job_state": "FAILED"}),
        ("type=SparkSql", {"job_type": "SparkSql"}),
        ("name=job-0042", {"job_name": "job-0042"}),
        (
            "1-day window",
            {"submitted_time_begin": str(day), "submitted_time_end": str(day + DAY_MS - 1)},
        ),
    ]


def capture_sql(bs: BenchStore, params: dict[str, str]) -> list[tuple[str, Any]]:
    """The statements ``list_visible`` sends for these parameters (with their values)."""
    assert bs.tenant is not None
    seen: list[tuple[str, Any]] = []

    def grab(_conn, _cursor, statement, parameters, _context, _many):  # type: ignore[no-untyped-def]
        seen.append((statement, parameters))

    event.listen(bs.store.engine, "before_cursor_execute", grab)
    try:
        with bs.store.read() as conn:
            job_store.list_visible(
                conn, bs.tenant.project_id, bs.tenant.cluster_id, ListQuery.parse(params)
            )
    finally:
        event.remove(bs.store.engine, "before_cursor_execute", grab)
    return [
        (s, p)
        for s, p in seen
        if ("jobs" in s or "job_counts" in s)
        and not s.lstrip().upper().startswith(("BEGIN", "PRAGMA"))
    ]


def explain(bs: BenchStore, statement: str, parameters: Any) -> list[str]:
    with bs.store.read() as conn:
        if bs.kind == "sqlite":
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
            depth: dict[int, int] = {0: -1}
            out = []
            for node, parent, _unused, detail in rows:
                depth[node] = depth.get(parent, -1) + 1
                out.append("  " * depth[node] + detail)
            return out
        rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters).all()
        return [r[0] for r in rows]


def db_floor(bs: BenchStore, params: dict[str, str], reps: int) -> list[float]:
    assert bs.tenant is not None
    q = ListQuery.parse(params)
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        with bs.store.read() as conn:
            job_store.list_visible(conn, bs.tenant.project_id, bs.tenant.cluster_id, q)
        out.append(time.perf_counter() - t0)
    return out


def run(bs: BenchStore, server: Server, *, reps: int = 11, plans: bool = True) -> dict[str, Any]:
    assert bs.tenant is not None
    api = Api(server, bs.tenant)
    out: dict[str, Any] = {"backend": bs.kind, "jobs": bs.seeded, "queries": [], "plans": {}}
    for label, base in filters():
        first = {**base, "limit": str(LIMIT), "offset": "1"}
        status, body, _ = api.call("GET", "", urlencode(sorted(first.items())))
        check(status, 202, body, f"list {label}")
        total = body["total_record"]
        last_page = max(1, -(-total // LIMIT))
        deep = {**base, "limit": str(LIMIT), "offset": str(min(DEEP_PAGE, last_page))}
        for page_label, params in (("first", first), (f"page {deep['offset']}", deep)):
            query = urlencode(sorted(params.items()))
            req = api.prepare("GET", "", query)
            for _ in range(2):  # warm-up
                api.send(req)
            lat = []
            for _ in range(reps):
                status, body, dt = api.send(req)
                check(status, 202, body, f"list {label}")
                lat.append(dt)
            floor = db_floor(bs, params, max(3, reps // 2))
            with bs.store.read() as conn:
                exact = job_store.list_visible(
                    conn, bs.tenant.project_id, bs.tenant.cluster_id, ListQuery.parse(params)
                )[0]
            s, f = summarize(lat), summarize(floor)
            out["queries"].append(
                {
                    "filter": label,
                    "page": page_label,
                    "total_record": body["total_record"],
                    "exact": body["total_record"] == exact,
                    "rows": len(body["job_list"]),
                    "api": s,
                    "db": f,
                }
            )
            log(
                f"P2 {bs.kind} {bs.seeded:,} {label} {page_label}: api {s['median'] * 1e3:.1f} ms"
                f" db {f['median'] * 1e3:.1f} ms total={body['total_record']}"
            )
            if plans:
                key = f"{label} / {page_label}"
                out["plans"][key] = [
                    {"sql": stmt, "plan": explain(bs, stmt, p)}
                    for stmt, p in capture_sql(bs, params)
                ]
    api.close()
    return out


def tables(results: list[dict[str, Any]]) -> str:
    rows = []
    for r in results:
        for q in r["queries"]:
            a, d = q["api"], q["db"]
            target = ""
            if r["backend"] == "sqlite":
                target = " ok" if a["median"] * 1e3 <= TARGET_MS else " MISS"
            rows.append(
                [
                    r["backend"],
                    f"{r['jobs']:,}",
                    q["filter"],
                    q["page"],
                    f"{q['total_record']:,}",
                    "yes" if q["exact"] else "NO",
                    f"{a['median'] * 1e3:.1f} ({a['min'] * 1e3:.1f}-{a['max'] * 1e3:.1f}){target}",
                    f"{d['median'] * 1e3:.1f}",
                    f"{a['median'] / d['median']:.2f}x" if d["median"] else "-",
                ]
            )
    return print_table(
        "P2 list: API latency vs the store's own query (ms; median (min-max)); "
        "target <=20 ms on SQLite",
        ["db", "jobs", "filter", "page", "total_record", "exact", "API ms", "DB-only ms", "API/DB"],
        rows,
    )


def plan_text(results: list[dict[str, Any]], *, jobs: int | None = None) -> str:
    """The captured SQL and plans, for the README (largest store of each backend)."""
    lines = []
    for r in results:
        if jobs is not None and r["jobs"] != jobs:
            continue
        lines.append(f"\n#### {r['backend']}, {r['jobs']:,} jobs\n")
        for key, stmts in r["plans"].items():
            lines.append(f"- **{key}**")
            for st in stmts:
                sql = st["sql"].lower()
                kind = (
                    "COUNT (job_counts)"
                    if "job_counts" in sql
                    else "COUNT"
                    if "count(" in sql
                    else "page"
                )
                lines.append(f"  - {kind}:")
                lines.append("    ```")
                lines += ["    " + p for p in st["plan"]]
                lines.append("    ```")
    text_ = "\n".join(lines)
    print(text_)
    return text_


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument("--reps", type=int, default=11)
    args = ap.parse_args(argv)
    results = []
    for bs in seeded_stores(args.backends, args.sizes):
        # The seeded jobs ended in 2025: without this, retention purges them under the lists.
        with Server.mrs(bs, MRS_JOBS_RETENTION_DAYS="0") as server:
            results.append(run(bs, server, reps=args.reps))
    tables(results)
    plan_text(results, jobs=max(r["jobs"] for r in results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
