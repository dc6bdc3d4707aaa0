"""P8: 100,000 jobs a day for 30 simulated days with 7-day retention: size and speed stay flat.

Time is compressed: each simulated hour, ``jobs_per_day / 24`` ended jobs are inserted the way
they end up in the store (the row, its 6 state-change events, for SQL types one stored result
row), with submit/end times inside that hour of a simulated clock. Then the supervisor's own
retention and purge run as of that simulated time: a real ``Supervisor``'s
``retention.run(now)`` (the cluster says ``retention_days=7``) until it has no backlog, and its
``purger.step()`` until no deleted job is left. Nothing about retention is re-implemented here.

At the end of each simulated day: the database size (SQLite: the file after a WAL checkpoint,
and the pages in use; PostgreSQL: ``pg_total_relation_size`` of the tables), the rows kept,
and the medians of the service calls a client makes (``JobService.list`` of the default page,
``show`` of a kept job, ``submit``), called in process so the figure is the store's cost, not
HTTP's. The figure the issue asks for: size within +-10 % of its mean after day 8.

Job directories are not created (rows only): 700,000 directories would measure the file
system, and removing a directory is the same ``shutil.rmtree`` call whether retention or a
batch delete asked for it (tests/supervisor/test_retention.py checks that they go).

    .venv/bin/python bench/p8_retention_sim.py --days 30 --jobs-per-day 100000
    .venv/bin/python bench/p8_retention_sim.py --quick          # a smoke test (~1 min)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import OUT, BenchStore, log, make_store, pg_available, print_table  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402

from mrs_jobs.domain.validation import ListQuery  # noqa: E402
from mrs_jobs.engines.registry import EngineRegistry  # noqa: E402
from mrs_jobs.secretbox import load_secret_box  # noqa: E402
from mrs_jobs.services.context import Caller  # noqa: E402
from mrs_jobs.services.jobs import JobService  # noqa: E402
from mrs_jobs.settings import Settings  # noqa: E402
from mrs_jobs.store import supervision as sup_store  # noqa: E402
from mrs_jobs.store.tables import job_events, jobs  # noqa: E402
from mrs_jobs.store.tenants import get_cluster, update_cluster  # noqa: E402
from mrs_jobs.supervisor.loop import Supervisor  # noqa: E402

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z, the simulated clock's start
OUTCOMES = [("FINISHED", "SUCCEEDED")] * 80 + [("FINISHED", "FAILED")] * 8
OUTCOMES += [("FAILED", "FAILED")] * 4 + [("KILLED", "KILLED")] * 8
TYPES = ["SparkSubmit"] * 40 + ["SparkSql"] * 15 + ["HiveSql"] * 10 + ["MapReduce"] * 10
TYPES += ["DistCp"] * 8 + ["Flink"] * 7 + ["SparkScript"] * 5 + ["HiveScript"] * 5
CHAIN = [(None, "NEW"), ("NEW", "NEW_SAVING"), ("NEW_SAVING", "SUBMITTED")]
CHAIN += [("SUBMITTED", "ACCEPTED"), ("ACCEPTED", "RUNNING")]
SUBMIT = {"job_type": "SparkSubmit", "arguments": ["/opt/jobs/etl.py", "--date", "2026-01-01"]}


JOB_COLS = (
    "id", "project_id", "cluster_id", "job_name", "job_type", "user_name", "queue", "state",
    "result", "progress", "submitted_ms", "started_ms", "finished_ms", "arguments", "properties",
    "launcher_id", "app_id", "tracking_url", "reason", "deleted_ms", "kill_requested_ms",
    "kill_sent_ms", "owner", "workdir", "deadline_ms",
)  # fmt: skip
EVENT_COLS = ("job_id", "at_ms", "from_state", "to_state", "reason")
RESULT_COLS = ("job_id", "statement", "rows")
ARGS = json.dumps(["/opt/jobs/etl.py", "--date", "2026-01-01"])
PROPS = json.dumps({"spark.executor.memory": "2g"})
NAMES = [f"job-{k:04d}" for k in range(1000)]
USERS = ("admin", "etl", "analyst", "ml", "ops")


def hour_rows(
    rng: random.Random, bs: BenchStore, n: int, start_ms: int
) -> tuple[list[tuple], list[tuple], list[tuple]]:
    """``n`` jobs that were submitted and ended within the hour starting at ``start_ms``
    (tuples in the order of JOB_COLS, EVENT_COLS, RESULT_COLS)."""
    assert bs.tenant is not None
    pid, cid = bs.tenant.project_id, bs.tenant.cluster_id
    jobs_dir = str(bs.data_dir / "jobs")
    rows, events, results = [], [], []
    randrange, choice, bits = rng.randrange, rng.choice, rng.getrandbits
    half = HOUR_MS // 2
    for _ in range(n):
        h = f"{bits(128):032x}"
        jid = f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"
        state, result = choice(OUTCOMES)
        job_type = choice(TYPES)
        ok = result == "SUCCEEDED"
        submitted = start_ms + randrange(half)
        started = submitted + 100 + randrange(30_000)
        finished = started + 5_000 + randrange(half - 40_000)
        app = f"local-{started}"
        rows.append(
            (
                jid, pid, cid, NAMES[randrange(1000)], job_type, choice(USERS), "default",
                state, result, 100.0 if ok else float(randrange(100)), submitted, started,
                finished, ARGS, PROPS, app, app, "", "" if ok else "exit code 1", 0, 0, 0,
                "bench-sim", f"{jobs_dir}/{jid}", 0,
            )
        )  # fmt: skip
        times = (submitted, submitted, submitted, started, started + 500)
        events += [(jid, t, a, b, "") for t, (a, b) in zip(times, CHAIN, strict=True)]
        events.append((jid, finished, "RUNNING", state, ""))
        if ok and job_type in ("SparkSql", "HiveSql"):
            results.append((jid, 0, RESULT_ROWS))
    return rows, events, results


RESULT_ROWS = json.dumps([{"day": "2026-01-01", "n": "123456"}] * 5)


def insert_many(conn: Any, table: str, cols: tuple[str, ...], rows: list[tuple]) -> None:
    """The driver's own executemany (SQLAlchemy's per-row work would dominate the run)."""
    if not rows:
        return
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join([mark] * len(cols))})"
    conn.exec_driver_sql(sql, rows)


def db_size(bs: BenchStore) -> tuple[int, int]:
    """(bytes on disk, bytes in use)."""
    with bs.store.read() as conn:
        if bs.kind == "sqlite":
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            page = conn.exec_driver_sql("PRAGMA page_size").scalar_one()
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
            free = conn.exec_driver_sql("PRAGMA freelist_count").scalar_one()
            path = Path(bs.url.removeprefix("sqlite:///"))
            return path.stat().st_size, int((pages - free) * page)
        total = conn.execute(
            text(
                "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n "
                "ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'"
            )
        ).scalar_one()
        return int(total), int(total)


def timed(fn: Any, reps: int) -> float:
    """Median seconds of ``reps`` calls."""
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def run(
    kind: str, days: int, per_day: int, keep_days: int, reps: int, tmp_root: Path | None
) -> list[dict[str, Any]]:
    bs = make_store(kind, max_running=0, tmp_root=tmp_root)
    assert bs.tenant is not None
    tenant = bs.tenant
    with bs.store.write() as conn:
        cluster = get_cluster(conn, None, tenant.cluster_id)
        assert cluster is not None
        config = cluster.config | {"retention_days": keep_days}
        update_cluster(conn, dataclasses.replace(cluster, config=config))
    settings = Settings(data_dir=bs.data_dir, database_url=bs.url)
    sup = Supervisor(bs.store, settings, EngineRegistry([]), secrets=load_secret_box(settings))
    service = JobService(bs.store, runnable_types=frozenset({"SparkSubmit"}), wake=lambda: None)
    caller = Caller(tenant.project_id, None, "admin", "bench")
    rng = random.Random(8)
    per_hour = [per_day // 24 + (1 if h < per_day % 24 else 0) for h in range(24)]
    kept_ids: list[str] = []
    figures = []
    t_run = time.perf_counter()
    purge_s = 0.0
    for day in range(days):
        for hour in range(24):
            start = T0 + day * DAY_MS + hour * HOUR_MS
            rows, events, results = hour_rows(rng, bs, per_hour[hour], start)
            with bs.store.write() as conn:
                insert_many(conn, "jobs", JOB_COLS, rows)
                insert_many(conn, "job_events", EVENT_COLS, events)
                insert_many(conn, "sql_results", RESULT_COLS, results)
            kept_ids = (kept_ids + [r[0] for r in rows[:5]])[-100:]  # the last 20 hours
            t0 = time.perf_counter()
            now = start + HOUR_MS
            while sup.retention.run(now):
                pass
            while True:
                with bs.store.read() as conn:
                    if not sup_store.deleted_jobs(conn, limit=1):
                        break
                sup.purger.step()
            purge_s += time.perf_counter() - t0
        figures.append(measure_day(bs, service, caller, day + 1, kept_ids, reps, rng))
        figures[-1]["retention_s"] = round(purge_s, 2)
        purge_s = 0.0
        f = figures[-1]
        log(
            f"P8 {kind} day {day + 1}: {f['jobs']:,} jobs, {f['disk_mb']:.1f} MB on disk, "
            f"list {f['list_ms']:.2f} ms, show {f['show_ms']:.2f} ms, submit {f['submit_ms']:.2f}"
            f" ms, retention+purge {f['retention_s']} s ({time.perf_counter() - t_run:.0f} s)"
        )
    bs.drop()
    return figures


def measure_day(
    bs: BenchStore,
    service: JobService,
    caller: Caller,
    day: int,
    kept: list[str],
    reps: int,
    rng: random.Random,
) -> dict[str, Any]:
    assert bs.tenant is not None
    cid = bs.tenant.cluster_id
    disk, used = db_size(bs)
    with bs.store.read() as conn:
        n_jobs = conn.execute(select(func.count()).select_from(jobs)).scalar_one()
        n_events = conn.execute(select(func.count()).select_from(job_events)).scalar_one()
    counter = iter(range(10**9))
    return {
        "day": day,
        "jobs": int(n_jobs),
        "events": int(n_events),
        "disk_mb": disk / 1e6,
        "used_mb": used / 1e6,
        "list_ms": timed(lambda: service.list(caller, cid, ListQuery()), reps) * 1e3,
        "show_ms": timed(lambda: service.show(caller, cid, rng.choice(kept)), reps) * 1e3,
        "submit_ms": timed(
            lambda: service.submit(
                caller, cid, job_name=f"sim-{day}-{next(counter)}", properties={}, **SUBMIT
            ),
            reps,
        )
        * 1e3,
    }


def flatness(figures: list[dict[str, Any]], key: str, after_day: int) -> float:
    """Largest deviation from the mean after ``after_day``, in % of the mean."""
    values = [f[key] for f in figures if f["day"] > after_day]
    if not values:
        return float("nan")
    mean = statistics.fmean(values)
    return max(abs(v - mean) for v in values) / mean * 100


def table(kind: str, figures: list[dict[str, Any]], after_day: int) -> str:
    rows = [
        (
            f["day"], f"{f['jobs']:,}", f"{f['events']:,}", f"{f['disk_mb']:.1f}",
            f"{f['used_mb']:.1f}", f"{f['list_ms']:.2f}", f"{f['show_ms']:.2f}",
            f"{f['submit_ms']:.2f}", f"{f['retention_s']:.1f}",
        )
        for f in figures
    ]  # fmt: skip
    out = print_table(
        f"P8 {kind}: retention over {len(figures)} simulated days",
        ["day", "jobs", "events", "disk MB", "in use MB", "list ms", "show ms", "submit ms",
         "retention+purge s"],
        rows,
    )  # fmt: skip
    lines = [f"after day {after_day}, largest deviation from the mean:"]
    for key in ("disk_mb", "used_mb", "jobs", "list_ms", "show_ms", "submit_ms"):
        lines.append(f"  {key}: {flatness(figures, key, after_day):.1f} %")
    text_ = "\n".join(lines)
    print(text_)
    return out + "\n" + text_ + "\n"


def plot(
    results: dict[str, list[dict[str, Any]]], path: Path, keep_days: int, per_day: int
) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is not installed (pip install -e '.[bench]'): no PNG")
        return False
    fig, (size_ax, lat_ax) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    for kind, figures in results.items():
        days = [f["day"] for f in figures]
        size_ax.plot(days, [f["disk_mb"] for f in figures], marker="o", label=f"{kind}: size MB")
        for key, style in (("list_ms", "-"), ("show_ms", "--"), ("submit_ms", ":")):
            lat_ax.plot(days, [f[key] for f in figures], style, label=f"{kind}: {key[:-3]}")
    size_ax.axvline(keep_days + 1, color="grey", linewidth=0.8)
    size_ax.set_ylabel("database size (MB)")
    size_ax.set_ylim(bottom=0)
    size_ax.legend()
    size_ax.set_title(f"{per_day:,} jobs/day, retention {keep_days} days (bench P8)")
    lat_ax.set_ylabel("median (ms), in process")
    lat_ax.set_xlabel("simulated day")
    lat_ax.set_ylim(bottom=0)
    lat_ax.legend(fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    return True


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--jobs-per-day", type=int, default=100_000)
    ap.add_argument("--retention-days", type=int, default=7)
    ap.add_argument("--backend", default="sqlite", help="sqlite, postgres or both")
    ap.add_argument("--reps", type=int, default=30, help="calls per median")
    ap.add_argument("--png", type=Path, default=OUT / "p8_retention.png")
    ap.add_argument("--quick", action="store_true", help="10 days of 5,000 jobs (smoke test)")
    ap.add_argument("--replot", type=Path, help="only draw the PNG from a run's JSON")
    ap.add_argument(
        "--tmp-root",
        type=Path,
        default=Path("/dev/shm") if Path("/dev/shm").is_dir() else None,
        help="where the SQLite file lives (default /dev/shm: the disk's flushes left out)",
    )
    args = ap.parse_args(argv)
    if args.quick:
        args.days, args.jobs_per_day = 10, 5_000
    if args.replot:
        saved = json.loads(args.replot.read_text())
        return 0 if plot(saved, args.png, args.retention_days, args.jobs_per_day) else 1
    kinds = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    if "postgres" in kinds and not pg_available():
        log("PostgreSQL not reachable: skipped")
        kinds.remove("postgres")
    results, texts = {}, []
    after = args.retention_days + 1
    for kind in kinds:
        results[kind] = run(
            kind, args.days, args.jobs_per_day, args.retention_days, args.reps, args.tmp_root
        )
        texts.append(table(kind, results[kind], after))
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "p8_retention.json").write_text(json.dumps(results, indent=1))
    (OUT / "p8_retention.txt").write_text("\n".join(texts))
    if plot(results, args.png, args.retention_days, args.jobs_per_day):
        log(f"plot: {args.png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
