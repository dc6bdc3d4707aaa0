"""P6 daily load: the store-side cost of one job's whole life, for the 100,000 jobs/day plan.

A job's life (submit -> claim -> running -> finished -> delete -> purge) is driven in-process
through the service's own layers: ``JobService.submit``, the real ``Supervisor`` passes
(``run_once``), ``BatchDeleteService.delete``, and the supervisor's purge. Only the process
layer is replaced: a ``ProcessTable`` stand-in "launches" a job by writing its launch record
and a successful ``exit.json`` (no shim, no engine), reports it running on the first look and
ended on the next. Everything else is real: the SQL, the transactions, the job directories,
the supervisor's /proc scans for straggler processes.

Every SQL statement and transaction is counted with SQLAlchemy events (plus connection
checkouts: on PostgreSQL each one is also a ``pool_pre_ping`` round trip), per phase:

- ``batched``: N jobs submitted, then passes until all ended, deleted in batches of
  ``--delete-batch`` ids, passes until purged. The supervisor claims many jobs per pass: the
  store's capacity in jobs/s.
- ``one at a time``: M jobs, each submitted, driven to its end, deleted alone and purged before
  the next, as at a low arrival rate (1.16 jobs/s = 100,000/day): the upper bound per job,
  idle passes included.
- ``observe``: one watch pass over K running jobs (the per-second cost of a running job).
- ``idle pass``: a pass with nothing to do (a supervisor runs 4 per second at the default
  0.25 s poll).
- ``status probe`` (``--status-probe``, on by default): the engine side of following a detached
  job is one REST call per job per second. A real Spark standalone master (pyspark's
  ``spark-class``, loopback, no workers) answers the two calls a standalone ``status()`` starts
  with: the REST server's driver status and the master's ``/json/``; a lower bound (loopback,
  idle master) for what one followed job costs the supervisor's loop.

Also prints the rows and bytes a finished job keeps (jobs, job_events, audit, ...) and what is
left after the purge. Wall time and CPU: this process (service + supervisor + SQLite) and,
on PostgreSQL, the server backends of this run (by ``application_name``).

    .venv/bin/python bench/p6_daily_load.py [--jobs 1000] [--single 100] [--observe 200]
        [--delete-batch 100] [--backends sqlite,postgres]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    BenchStore,
    log,
    make_store,
    pg_available,
    postgres_pids_cpu,
    print_table,
)
from sqlalchemy import event, text  # noqa: E402

from mrs_jobs.engines.base import ClusterSpec, JobSpec, LaunchSpec, Observation  # noqa: E402
from mrs_jobs.engines.registry import EngineRegistry  # noqa: E402
from mrs_jobs.runtime.process import ProcessHandle  # noqa: E402
from mrs_jobs.services.batch_delete import BatchDeleteService  # noqa: E402
from mrs_jobs.services.context import Caller  # noqa: E402
from mrs_jobs.services.jobs import JobService  # noqa: E402
from mrs_jobs.settings import Settings  # noqa: E402
from mrs_jobs.store import Store  # noqa: E402
from mrs_jobs.supervisor.loop import Supervisor  # noqa: E402

PID_BASE = 5_000_000  # above PID_MAX_LIMIT (4,194,304): never a live process
TABLES = ("jobs", "job_events", "sql_results", "submit_keys", "audit", "supervisors")


# ------------------------------------------------------------------------------------------
# the stand-ins: an engine and a process table that start nothing
# ------------------------------------------------------------------------------------------
class NullEngine:
    job_types = frozenset({"SparkSubmit"})

    def build(self, job: JobSpec, cluster: ClusterSpec, workdir: Path) -> LaunchSpec:
        return LaunchSpec(["/bin/true"], {"PATH": "/usr/bin:/bin"}, str(workdir))

    def observe(self, job: JobSpec, workdir: Path, launch: LaunchSpec) -> Observation:
        return Observation(app_id=f"app-{job.job_id[:8]}", running=True, progress=50.0)


class NullTable:
    """Launch = write launch.json and a successful exit.json; running for ``looks`` looks."""

    def __init__(self) -> None:
        self.next_pid = PID_BASE
        self.looks: dict[int, int] = {}
        self.running_looks = 1

    def launch(self, job_dir: Path, spec: LaunchSpec, **_: Any) -> ProcessHandle:
        record = {"argv": spec.argv, "env": spec.env, "cwd": spec.cwd, "notes": spec.notes}
        (job_dir / "launch.json").write_text(json.dumps(record))
        done = {"returncode": 0, "signal": None, "finished_ms": int(time.time() * 1000)}
        (job_dir / "exit.json").write_text(json.dumps(done))
        self.next_pid += 1
        self.looks[self.next_pid] = 0
        return ProcessHandle(self.next_pid, 1)

    def is_running(self, handle: ProcessHandle) -> bool:
        seen = self.looks.get(handle.pid)
        if seen is None:
            return False
        self.looks[handle.pid] = seen + 1
        return seen < self.running_looks

    def signal_group(self, handle: ProcessHandle, sig: int) -> bool:
        return False

    def reap(self) -> list[int]:
        return []


# ------------------------------------------------------------------------------------------
# counting
# ------------------------------------------------------------------------------------------
@dataclass
class Tally:
    statements: Counter[str] = field(default_factory=Counter)
    commits: int = 0
    checkouts: int = 0

    def total(self) -> int:
        return sum(self.statements.values())


@dataclass
class Phase:
    name: str
    jobs: int
    wall_s: float
    cpu_s: float
    db_cpu_s: float
    tally: Tally
    passes: int = 0


class Counting:
    """SQL statements by verb, commits and pool checkouts of one Store, via SQLAlchemy events."""

    def __init__(self, store: Store) -> None:
        self.tally = Tally()

        @event.listens_for(store.engine, "before_cursor_execute")
        def _stmt(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
            verb = statement.lstrip().split(None, 1)[0].upper()
            if verb != "BEGIN":
                self.tally.statements[verb] += 1

        @event.listens_for(store.engine, "commit")
        def _commit(conn):  # type: ignore[no-untyped-def]
            self.tally.commits += 1

        @event.listens_for(store.engine.pool, "checkout")
        def _checkout(dbapi_conn, record, proxy):  # type: ignore[no-untyped-def]
            self.tally.checkouts += 1

    def reset(self) -> Tally:
        old, self.tally = self.tally, Tally()
        return old


class World:
    """The service pieces over the counted ``store``; the benchmark's own checks go through
    ``bs.store`` (another engine, not counted)."""

    def __init__(self, bs: BenchStore, counting: Counting, store: Store) -> None:
        assert bs.tenant is not None
        self.bs = bs
        self.store = store
        self.probe = bs.store
        self.counting = counting
        self.settings = Settings(data_dir=bs.data_dir, database_url=bs.url)
        self.caller = Caller(bs.tenant.project_id, None, "admin", "bench")
        self.cluster_id = bs.tenant.cluster_id
        self.jobs = JobService(store, runnable_types=frozenset({"SparkSubmit"}), wake=_noop)
        self.deletes = BatchDeleteService(store, wake=_noop)
        self.sup = Supervisor(store, self.settings, EngineRegistry([NullEngine()]))
        self.table = NullTable()
        self.sup.table = self.table  # type: ignore[assignment]
        self.backends: list[int] = []

    def submit(self) -> str:
        job = self.jobs.submit(
            self.caller,
            self.cluster_id,
            job_type="SparkSubmit",
            job_name="daily",
            arguments=["app.py", "--date", "2026-11-30"],
            properties={"mrs.job.timeout": "3600"},
        )
        return job.id

    def count(self, sql: str) -> int:
        with self.probe.read() as conn:
            return int(conn.execute(text(sql)).scalar_one())

    def passes_until(self, cond: Callable[[], bool], limit: int = 100_000) -> int:
        n = 0
        while not cond():
            self.sup.run_once()
            n += 1
            if n >= limit:
                raise RuntimeError("the supervisor did not get there")
        return n

    def db_cpu(self) -> float:
        return postgres_pids_cpu(self.backends) if self.backends else 0.0

    def measure(self, name: str, jobs: int, body: Callable[[], int]) -> Phase:
        """Run ``body`` (returns supervisor passes) with its own tally, wall and CPU time."""
        self.refresh_backends()
        self.counting.reset()
        db0, cpu0, t0 = self.db_cpu(), time.process_time(), time.perf_counter()
        passes = body()
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        self.refresh_backends()
        db = self.db_cpu() - db0
        return Phase(name, jobs, wall, cpu, db, self.counting.reset(), passes)

    def refresh_backends(self) -> None:
        if self.bs.kind != "postgres":
            return
        with self.probe.read() as conn:
            rows = conn.execute(
                text("SELECT pid FROM pg_stat_activity WHERE application_name = :a"),
                {"a": self.bs.app_name},
            ).all()
        self.backends = sorted({*self.backends, *(int(r[0]) for r in rows)})


def _noop() -> None:
    return None


# ------------------------------------------------------------------------------------------
# footprint: rows and bytes per job
# ------------------------------------------------------------------------------------------
def footprint(w: World) -> dict[str, tuple[int, int]]:
    """table -> (rows, bytes incl. indexes)."""
    out: dict[str, tuple[int, int]] = {}
    with w.probe.read() as conn:
        for t in TABLES:
            rows = int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one())
            if w.bs.kind == "postgres":
                size = int(
                    conn.execute(text("SELECT pg_total_relation_size(:t)"), {"t": t}).scalar_one()
                )
            else:
                size = int(
                    conn.execute(
                        text(
                            "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name = :t OR name "
                            "IN (SELECT name FROM sqlite_master WHERE tbl_name = :t "
                            "AND type = 'index')"
                        ),
                        {"t": t},
                    ).scalar_one()
                )
            out[t] = (rows, size)
    return out


def payload_bytes(w: World, table: str) -> int:
    """Bytes of the rows themselves (no page slack, no indexes): the growth per job."""
    with w.probe.read() as conn:
        if w.bs.kind == "postgres":
            sql = f"SELECT coalesce(sum(pg_column_size(t.*)), 0) FROM {table} t"
        else:
            sql = f"SELECT coalesce(sum(payload), 0) FROM dbstat WHERE name = '{table}'"
        return int(conn.execute(text(sql)).scalar_one())


# ------------------------------------------------------------------------------------------
# the scenarios
# ------------------------------------------------------------------------------------------
def batched(w: World, n: int) -> tuple[list[Phase], list[str]]:
    ids: list[str] = []

    def submit_all() -> int:
        ids.extend(w.submit() for _ in range(n))
        return 0

    def all_ended() -> bool:
        return (
            w.count("SELECT count(*) FROM jobs WHERE state IN ('FINISHED','FAILED','KILLED')") == n
        )

    phases = [w.measure("submit", n, submit_all)]
    phases.append(w.measure("claim, run, finish", n, lambda: w.passes_until(all_ended)))
    return phases, ids


def delete_and_purge(w: World, ids: list[str], delete_batch: int) -> list[Phase]:
    def delete_all() -> int:
        for i in range(0, len(ids), delete_batch):
            w.deletes.delete(w.caller, w.cluster_id, ids[i : i + delete_batch])
        return 0

    phases = [w.measure(f"delete ({delete_batch} ids/call)", len(ids), delete_all)]
    phases.append(
        w.measure(
            "purge",
            len(ids),
            lambda: w.passes_until(lambda: w.count("SELECT count(*) FROM jobs") == 0),
        )
    )
    return phases


def one_at_a_time(w: World, m: int) -> Phase:
    def life() -> int:
        passes = 0
        for _ in range(m):
            job_id = w.submit()
            passes += w.passes_until(
                lambda j=job_id: w.count(
                    f"SELECT count(*) FROM jobs WHERE id = '{j}' AND state = 'FINISHED'"
                )
                == 1
            )
            w.deletes.delete(w.caller, w.cluster_id, [job_id])
            passes += w.passes_until(
                lambda j=job_id: w.count(f"SELECT count(*) FROM jobs WHERE id = '{j}'") == 0
            )
        return passes

    return w.measure("whole life, one job at a time", m, life)


def observe_pass(w: World, k: int) -> tuple[Phase, list[str]]:
    """K jobs running (the stand-in keeps saying so): one pass that observes all of them."""
    w.table.running_looks = 10**9
    ids = [w.submit() for _ in range(k)]
    w.passes_until(lambda: w.count("SELECT count(*) FROM jobs WHERE state = 'RUNNING'") == k)

    def one_pass() -> int:
        w.sup._last_observe.clear()  # as one second later: every running job is due
        w.sup.run_once()
        return 1

    phase = w.measure("observe pass (per running job)", k, one_pass)
    w.table.running_looks = 1
    for pid in list(w.table.looks):
        w.table.looks[pid] = 10**9  # now they end
    return phase, ids


def idle_passes(w: World, n: int = 200) -> Phase:
    def body() -> int:
        for _ in range(n):
            w.sup.run_once()
        return n

    return w.measure("idle pass (per pass)", n, body)


def raw_commits(w: World, n: int = 200) -> Phase:
    """The limit: one-row INSERT transactions through the same Store (checkout, commit, fsync)."""
    with w.store.write() as conn:
        conn.execute(text("CREATE TABLE p6_raw (id INTEGER PRIMARY KEY, v VARCHAR(64))"))

    def body() -> int:
        for i in range(n):
            with w.store.write() as conn:
                conn.execute(text("INSERT INTO p6_raw (id, v) VALUES (:i, 'x')"), {"i": i})
        return 0

    return w.measure("limit: 1-row INSERT + COMMIT (per txn)", n, body)


# ------------------------------------------------------------------------------------------
def run(kind: str, *, n: int, single: int, observe_k: int, delete_batch: int) -> dict[str, Any]:
    bs = make_store(kind, max_running=1_000_000)
    if kind == "postgres":
        sep = "&" if "?" in bs.url else "?"
        store = Store(f"{bs.url}{sep}application_name={bs.app_name}")
    else:
        store = Store(bs.url)
    counting = Counting(store)
    w = World(bs, counting, store)
    try:
        w.sup.reconcile()
        log(f"{kind}: batched, {n} jobs")
        phases, ids = batched(w, n)
        kept = footprint(w)
        payload = {t: payload_bytes(w, t) for t in ("jobs", "job_events", "audit")}
        phases += delete_and_purge(w, ids, delete_batch)
        after = footprint(w)
        log(f"{kind}: one at a time, {single} jobs")
        phases.append(one_at_a_time(w, single))
        log(f"{kind}: observe pass over {observe_k} running jobs")
        obs, obs_ids = observe_pass(w, observe_k)
        phases.append(obs)
        w.passes_until(
            lambda: w.count("SELECT count(*) FROM jobs WHERE state = 'FINISHED'") == observe_k
        )
        delete_and_purge(w, obs_ids, delete_batch)
        phases.append(idle_passes(w))
        phases.append(raw_commits(w))
        return report(kind, n, phases, kept, after, payload)
    finally:
        store.dispose()
        bs.drop()


def report(
    kind: str,
    n: int,
    phases: list[Phase],
    kept: dict[str, tuple[int, int]],
    after: dict[str, tuple[int, int]],
    payload: dict[str, int],
) -> dict[str, Any]:
    rows = []
    life = Tally()
    life_wall = life_cpu = life_db = 0.0
    for p in phases:
        per = p.jobs or 1
        t = p.tally
        verbs = ", ".join(f"{v} {c / per:.2f}" for v, c in sorted(t.statements.items()))
        rows.append(
            [
                p.name,
                p.jobs,
                f"{p.wall_s * 1000 / per:.2f}",
                f"{p.jobs / p.wall_s:,.0f}" if p.wall_s else "-",
                f"{p.cpu_s * 1000 / per:.2f}",
                f"{p.db_cpu_s * 1000 / per:.2f}" if kind == "postgres" else "-",
                f"{t.total() / per:.2f}",
                f"{t.commits / per:.2f}",
                f"{t.checkouts / per:.2f}",
                verbs,
                p.passes,
            ]
        )
        if p.name in ("submit", "claim, run, finish", "purge") or p.name.startswith("delete"):
            life.statements.update(t.statements)
            life.commits += t.commits
            life.checkouts += t.checkouts
            life_wall += p.wall_s
            life_cpu += p.cpu_s
            life_db += p.db_cpu_s
    rows.append(
        [
            "**batched life (sum)**",
            n,
            f"{life_wall * 1000 / n:.2f}",
            f"{n / life_wall:,.0f}",
            f"{life_cpu * 1000 / n:.2f}",
            f"{life_db * 1000 / n:.2f}" if kind == "postgres" else "-",
            f"{life.total() / n:.2f}",
            f"{life.commits / n:.2f}",
            f"{life.checkouts / n:.2f}",
            ", ".join(f"{v} {c / n:.2f}" for v, c in sorted(life.statements.items())),
            "",
        ]
    )
    print_table(
        f"P6 {kind}: store cost per job (or per pass / per observed job)",
        [
            "phase",
            "jobs",
            "ms/job",
            "jobs/s",
            "CPU ms/job (this process)",
            "DB CPU ms/job",
            "statements/job",
            "commits/job",
            "checkouts/job",
            "by verb",
            "passes",
        ],
        rows,
    )
    print_table(
        f"P6 {kind}: what {n} finished jobs keep, and what is left after delete + purge",
        [
            "table",
            "rows/job (finished)",
            "bytes/job incl. indexes",
            "row payload bytes/job",
            "rows left after purge",
            "bytes left",
        ],
        [
            [
                t,
                f"{kept[t][0] / n:.2f}",
                f"{kept[t][1] / n:,.0f}",
                f"{payload[t] / n:,.0f}" if t in payload else "-",
                after[t][0],
                f"{after[t][1]:,}",
            ]
            for t in TABLES
        ],
    )
    return {
        "kind": kind,
        "phases": [
            {
                "name": p.name,
                "jobs": p.jobs,
                "wall_s": p.wall_s,
                "cpu_s": p.cpu_s,
                "db_cpu_s": p.db_cpu_s,
                "statements": dict(p.tally.statements),
                "commits": p.tally.commits,
                "checkouts": p.tally.checkouts,
                "passes": p.passes,
            }
            for p in phases
        ],
        "kept": kept,
        "after": after,
        "payload": payload,
    }


def status_probe(n: int = 200) -> None:
    """Wall and CPU of the REST calls a standalone ``status()`` makes, against a real master."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    import tempfile

    from support_spark_cluster import start_cluster, stop_cluster

    from mrs_jobs.engines.spark_standalone import StandaloneClient

    base = Path(tempfile.mkdtemp(prefix="mrsbench-master-"))
    cluster = start_cluster(base, workers=0)
    client = StandaloneClient(cluster.rest_url, cluster.ui_url)
    rows = []
    try:
        calls = {
            "REST driver status (GET /v1/submissions/status/<driver>)": lambda: (
                client.driver_state("driver-20261130000000-0000")
            ),
            "master /json/ (GET)": client.master_state,
        }
        for name, call in calls.items():
            for _ in range(20):
                call()  # warm-up: JIT of the master, the client's connection
            cpu0, t0 = time.process_time(), time.perf_counter()
            for _ in range(n):
                call()
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            rows.append(
                [name, n, f"{wall * 1000 / n:.2f}", f"{cpu * 1000 / n:.2f}", f"{n / wall:,.0f}"]
            )
    finally:
        client.close()
        stop_cluster(cluster)
    print_table(
        f"P6 status probe: a real Spark standalone master on loopback "
        f"(up in {cluster.startup_s:.1f} s)",
        ["call", "calls", "ms/call (wall)", "CPU ms/call (this process)", "calls/s, one thread"],
        rows,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=1000, help="jobs in the batched life")
    ap.add_argument("--single", type=int, default=100, help="jobs driven one at a time")
    ap.add_argument("--observe", type=int, default=200, help="running jobs in the observe pass")
    ap.add_argument("--delete-batch", type=int, default=100, help="ids per batch delete call")
    ap.add_argument("--backends", default="sqlite,postgres")
    ap.add_argument(
        "--status-probe",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="time the REST calls of a standalone status() against a real master",
    )
    args = ap.parse_args()
    print(f"host: {os.uname().nodename}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    for kind in [k for k in args.backends.split(",") if k]:
        if kind == "postgres" and not pg_available():
            log("PostgreSQL not reachable: skipped")
            continue
        run(
            kind,
            n=args.jobs,
            single=args.single,
            observe_k=args.observe,
            delete_batch=args.delete_batch,
        )
    if args.status_probe:
        log("status probe: a Spark standalone master")
        status_probe()


if __name__ == "__main__":
    main()
