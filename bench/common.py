"""Shared pieces of the benchmarks: stores, bulk seeding, servers, signed requests, statistics.

Nothing here is timed by itself. Every benchmark prints figures (no pass/fail): the machines are
noisy, so each figure is reported next to a "physical limit" measured in the same run (raw SQL,
a bare endpoint, a direct spark-submit) with medians and spreads.

Stores are created fresh: a new SQLite file, or a new PostgreSQL schema (``bench_<hex>``) in
the ``test`` database, both brought to the newest schema through ``Store.migrate()``. Jobs are
bulk-inserted through SQLAlchemy Core (SQLite: ``executemany`` in chunks of 10,000 inside one
transaction) or with ``COPY`` through psycopg (PostgreSQL), never through the API.
"""

from __future__ import annotations

import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
OUT = BENCH / "out"
VENV_BIN = Path(sys.executable).parent
MRS_JOBS = VENV_BIN / "mrs-jobs"
SERVE_FAKE = ROOT / "tests" / "crash" / "serve_fake.py"
PG_BASE = os.environ.get(
    "MRS_JOBS_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
CLK_TCK = os.sysconf("SC_CLK_TCK")

if str(ROOT / "src") not in sys.path:  # running from a checkout without the venv's .pth
    sys.path.insert(0, str(ROOT / "src"))

from sqlalchemy import text  # noqa: E402

from mrs_jobs.api.signing import format_sdk_date, sign_headers  # noqa: E402
from mrs_jobs.secretbox import SecretBox, load_secret_box  # noqa: E402
from mrs_jobs.services.cluster_admin import ClusterAdmin  # noqa: E402
from mrs_jobs.services.credentials import CredentialService  # noqa: E402
from mrs_jobs.services.projects import ProjectService  # noqa: E402
from mrs_jobs.settings import Settings  # noqa: E402
from mrs_jobs.store import Store  # noqa: E402
from mrs_jobs.store.tables import job_events, jobs  # noqa: E402

__all__ = [
    "Api",
    "BenchStore",
    "RawHttp",
    "Server",
    "Tenant",
    "check",
    "fmt_ms",
    "hardware",
    "log",
    "make_store",
    "print_table",
    "seed_jobs",
    "signed_request",
    "summarize",
]


# ------------------------------------------------------------------------------------------
# statistics and tables
# ------------------------------------------------------------------------------------------
def summarize(samples: Sequence[float]) -> dict[str, float]:
    """Median and spread: min, p10, p90, max and the relative IQR (robust on noisy boxes)."""
    xs = sorted(samples)
    if not xs:
        return {
            "n": 0,
            "median": float("nan"),
            "min": float("nan"),
            "max": float("nan"),
            "p10": float("nan"),
            "p90": float("nan"),
            "p99": float("nan"),
            "iqr_pct": float("nan"),
        }
    n = len(xs)

    def q(p: float) -> float:
        if n == 1:
            return xs[0]
        k = (n - 1) * p
        lo, hi = int(k), min(int(k) + 1, n - 1)
        return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)

    med = statistics.median(xs)
    iqr = q(0.75) - q(0.25)
    return {
        "n": n,
        "median": med,
        "min": xs[0],
        "max": xs[-1],
        "p10": q(0.10),
        "p90": q(0.90),
        "p99": q(0.99),
        "iqr_pct": (100.0 * iqr / med) if med else float("nan"),
    }


def fmt_ms(seconds: float, digits: int = 1) -> str:
    return f"{seconds * 1000:.{digits}f}"


def spread_ms(s: dict[str, float]) -> str:
    return f"{s['min'] * 1000:.1f}-{s['max'] * 1000:.1f}"


def print_table(title: str, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Print (and return) a Markdown table, so the README can take it verbatim."""
    rows = [[str(c) for c in r] for r in rows]
    widths = [len(h) for h in headers]
    for r in rows:
        for i, c in enumerate(r):
            widths[i] = max(widths[i], len(c))

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(widths[i]) for i, c in enumerate(cells)) + " |"

    out = [f"\n### {title}\n", line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    text_ = "\n".join(out)
    print(text_, flush=True)
    return text_


def hardware() -> dict[str, str]:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    import sqlite3

    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "memory": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------
# stores
# ------------------------------------------------------------------------------------------
@dataclass
class Tenant:
    project_id: str
    cluster_id: str
    ak: str
    sk: str
    credential_user: str = "admin"


@dataclass
class BenchStore:
    """A fresh store (SQLite file or PostgreSQL schema) plus the data dir of its server."""

    kind: str  # "sqlite" | "postgres"
    url: str
    store: Store
    data_dir: Path
    schema: str | None = None
    tenant: Tenant | None = None
    job_ids: list[str] = field(default_factory=list)  # seeded ids, in insertion order
    seeded: int = 0
    seed_seconds: float = 0.0

    def drop(self) -> None:
        self.store.dispose()
        if self.kind == "postgres" and self.schema:
            from sqlalchemy import create_engine

            admin = create_engine(PG_BASE)
            with admin.begin() as conn:
                conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")
            admin.dispose()
        shutil.rmtree(self.data_dir.parent, ignore_errors=True)  # data dir + server logs

    @property
    def app_name(self) -> str:
        return f"mrsbench_{self.schema or 'x'}"

    def server_backend_pids(self) -> list[int]:
        """PostgreSQL backends opened by the benchmark's server (by application_name)."""
        if self.kind != "postgres":
            return []
        with self.store.read() as conn:
            rows = conn.execute(
                text("SELECT pid FROM pg_stat_activity WHERE application_name = :a"),
                {"a": self.app_name},
            ).all()
        return [int(r[0]) for r in rows]

    def server_env(self) -> dict[str, str]:
        return {"MRS_JOBS_DATABASE_URL": self.url, "MRS_JOBS_DATA_DIR": str(self.data_dir)}


def pg_available() -> bool:
    from sqlalchemy import create_engine

    try:
        eng = create_engine(PG_BASE, connect_args={"connect_timeout": 3})
        with eng.connect():
            pass
        eng.dispose()
        return True
    except Exception:
        return False


def secret_box(data_dir: Path, url: str) -> SecretBox:
    """The installation's secret box: SKs are sealed with <data_dir>/secret.key, which the
    server started over this data dir reads too."""
    return load_secret_box(Settings(data_dir=data_dir, database_url=url))


def make_store(
    kind: str,
    *,
    max_running: int = 0,
    max_queued: int = 1_000_000,
    components: Sequence[str] = ("Spark", "Hive", "Hadoop", "Flink"),
    tmp_root: Path | None = None,
) -> BenchStore:
    """A fresh, migrated store with one project, one AK/SK and one cluster.

    The cluster is what ``mrs-jobs admin create-cluster <project> --max-running 0
    --max-queued 1000000`` creates (same service call), so submitted jobs stay queued.
    """
    root = Path(tempfile.mkdtemp(prefix=f"mrsbench-{kind}-", dir=tmp_root))
    data_dir = root / "data"
    data_dir.mkdir(parents=True)
    schema = None
    if kind == "sqlite":
        url = f"sqlite:///{data_dir / 'mrs-jobs.db'}"
    elif kind == "postgres":
        from sqlalchemy import create_engine

        schema = "bench_" + uuid.uuid4().hex[:10]
        admin = create_engine(PG_BASE)
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        admin.dispose()
        sep = "&" if "?" in PG_BASE else "?"
        url = f"{PG_BASE}{sep}options=-csearch_path%3D{schema}"
    else:
        raise ValueError(kind)
    store = Store(url)
    store.migrate()
    # The server started over this data dir seals/opens SKs with <data_dir>/secret.key.
    pid = ProjectService(store).create_project("bench")
    ak, sk = CredentialService(store, secret_box(data_dir, url)).create_aksk(pid, "admin")
    cid = ClusterAdmin(store).create_cluster(
        pid,
        "bench",
        components=list(components),
        config={"spark_master": "local[2]"},
        max_running=max_running,
        max_queued=max_queued,
    )
    bs = BenchStore(kind=kind, url=url, store=store, data_dir=data_dir, schema=schema)
    bs.tenant = Tenant(pid, cid, ak, sk)
    return bs


# ------------------------------------------------------------------------------------------
# seeding
# ------------------------------------------------------------------------------------------
JOB_COLUMNS = [c.name for c in jobs.columns]
EVENT_COLUMNS = ["job_id", "at_ms", "from_state", "to_state", "reason"]

# (state, result, weight): all terminal, as "1,000,000 finished jobs".
OUTCOMES = [
    ("FINISHED", "SUCCEEDED", 80),
    ("FINISHED", "FAILED", 8),
    ("FAILED", "FAILED", 4),
    ("KILLED", "KILLED", 8),
]
JOB_TYPES = [
    ("SparkSubmit", 40),
    ("SparkSql", 15),
    ("HiveSql", 10),
    ("SparkScript", 5),
    ("HiveScript", 5),
    ("MapReduce", 10),
    ("DistCp", 8),
    ("Flink", 7),
]
N_NAMES = 1000  # job-0000 .. job-0999: a name selects ~0.1 % of the jobs
USERS = ["admin", "etl", "analyst", "ml", "ops"]
DAY_MS = 86_400_000
SEED_SPAN_DAYS = 365
SEED_END_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: fixed, so runs are comparable
SEED_START_MS = SEED_END_MS - SEED_SPAN_DAYS * DAY_MS
FAKE_PID_BASE = 100_000  # above pid_max (32768 here): never a live process


def _uuid4(bits: int) -> str:
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"


def generate_jobs(
    n: int,
    project_id: str,
    cluster_id: str,
    data_dir: Path,
    *,
    seed: int = 42,
    events_per_job: int = 6,
    start: int = 0,
) -> Iterator[tuple[tuple[Any, ...], list[tuple[Any, ...]]]]:
    """Rows of finished jobs submitted evenly over one year, in submission order (as they
    would have been inserted), with random UUIDs; and their last ``events_per_job``
    state-change events (a real finished job has 6: NEW ... FINISHED)."""
    rng = random.Random(seed)
    step = (SEED_END_MS - SEED_START_MS) / max(n, 1)
    jobs_dir = str(data_dir / "jobs")
    outcomes = rng.choices(OUTCOMES, weights=[o[2] for o in OUTCOMES], k=n)
    types = rng.choices([t[0] for t in JOB_TYPES], weights=[t[1] for t in JOB_TYPES], k=n)
    names = [f"job-{k:04d}" for k in range(N_NAMES)]
    apps = ["/opt/jobs/etl.py", "/opt/jobs/report.py", "/opt/jobs/wordcount.jar"]
    arg_pool = [json.dumps([a, "--date", f"2025-{m:02d}-01"]) for a in apps for m in range(1, 13)]
    prop_pool = [
        json.dumps({"spark.executor.memory": "2g", "mrs.bench": str(k)}) for k in range(97)
    ]
    randrange, rand, getrandbits, choice = rng.randrange, rng.random, rng.getrandbits, rng.choice
    for i in range(n):
        jid = _uuid4(getrandbits(128))
        state, result, _w = outcomes[i]
        submitted = int(SEED_START_MS + i * step + rand() * step)
        started = submitted + 100 + randrange(30_000)
        finished = started + 5_000 + randrange(3_600_000)
        killed = finished if state == "KILLED" else 0
        ok = result == "SUCCEEDED"
        row = (
            jid,  # id
            project_id,  # project_id
            cluster_id,  # cluster_id
            names[randrange(N_NAMES)],  # job_name
            types[i],  # job_type
            choice(USERS),  # user_name
            "default",  # queue
            state,  # state
            result,  # result
            100.0 if ok else float(randrange(100)),  # progress
            submitted,  # submitted_ms
            started,  # started_ms
            finished,  # finished_ms
            arg_pool[randrange(len(arg_pool))],  # arguments
            prop_pool[i % 97],  # properties
            f"local-{started}",  # launcher_id
            f"local-{started}",  # app_id
            "",  # tracking_url
            "" if ok else "exit code 1",  # reason
            0,  # deleted_ms
            killed,  # kill_requested_ms
            killed,  # kill_sent_ms
            "bench-seed-supervisor",  # owner
            FAKE_PID_BASE + ((start + i) % 1_000_000),  # pid (never alive)
            1,  # pid_start
            f"{jobs_dir}/{jid}",  # workdir
            0,  # deadline_ms
            None,  # kill_requested_by
            1,  # attempt
            0,  # retry_at_ms
            None,  # cpu_seconds
            None,  # peak_memory_mb
        )
        if events_per_job:
            times = (submitted, submitted, submitted, started, started + 500, finished)
            events = [
                (jid, times[k], _CHAIN[k][0], _CHAIN[k][1] if k < 5 else state, "")
                for k in range(6 - events_per_job, 6)
            ]
        else:
            events = []
        yield row, events


_CHAIN = [
    (None, "NEW"),
    ("NEW", "NEW_SAVING"),
    ("NEW_SAVING", "SUBMITTED"),
    ("SUBMITTED", "ACCEPTED"),
    ("ACCEPTED", "RUNNING"),
    ("RUNNING", ""),
]
_ROW_ORDER = [
    "id",
    "project_id",
    "cluster_id",
    "job_name",
    "job_type",
    "user_name",
    "queue",
    "state",
    "result",
    "progress",
    "submitted_ms",
    "started_ms",
    "finished_ms",
    "arguments",
    "properties",
    "launcher_id",
    "app_id",
    "tracking_url",
    "reason",
    "deleted_ms",
    "kill_requested_ms",
    "kill_sent_ms",
    "owner",
    "pid",
    "pid_start",
    "workdir",
    "deadline_ms",
    "kill_requested_by",
    "attempt",
    "retry_at_ms",
    "cpu_seconds",
    "peak_memory_mb",
]


def seed_jobs(
    bs: BenchStore, n: int, *, events_per_job: int = 6, chunk: int = 10_000, seed: int = 42
) -> float:
    """Bulk-insert ``n`` finished jobs (+ events) into the bench store; returns seconds."""
    assert bs.tenant is not None
    assert sorted(_ROW_ORDER) == sorted(JOB_COLUMNS), "jobs table changed: update the seeder"
    t0 = time.perf_counter()
    gen = generate_jobs(
        n,
        bs.tenant.project_id,
        bs.tenant.cluster_id,
        bs.data_dir,
        seed=seed + bs.seeded,
        events_per_job=events_per_job,
        start=bs.seeded,
    )
    ids: list[str] = []
    if bs.kind == "sqlite":
        _seed_sqlite(bs, gen, ids, chunk)
    else:
        _seed_pg(bs, gen, ids, chunk)
    bs.job_ids.extend(ids)
    bs.seeded += n
    bs.seed_seconds = time.perf_counter() - t0
    return bs.seed_seconds


def _chunks(gen: Iterator[Any], size: int) -> Iterator[list[Any]]:
    buf: list[Any] = []
    for item in gen:
        buf.append(item)
        if len(buf) >= size:
            yield buf
            buf = []
    if buf:
        yield buf


def _compiled_insert(bs: BenchStore, table: Any, columns: Sequence[str]) -> str:
    """The Core ``insert(table)`` for these columns, compiled for the store's dialect, so
    the rows can go to the driver's ``executemany`` as plain tuples (no per-row dicts)."""
    style = bs.store.engine.dialect.paramstyle  # in the columns' order, not the table's
    mark = "?" if style == "qmark" else "%s"
    return (
        f"INSERT INTO {table.name} ({', '.join(columns)}) "
        f"VALUES ({', '.join([mark] * len(columns))})"
    )


def _seed_sqlite(bs: BenchStore, gen: Iterator[Any], ids: list[str], chunk: int) -> None:
    """One write transaction; ``executemany`` of 10,000 rows at a time. Indexes stay in place,
    as in a store that grew by itself. A large page cache for this connection only (random
    UUID keys make index inserts random); it is not stored in the database."""
    job_sql = _compiled_insert(bs, jobs, _ROW_ORDER)
    ev_sql = _compiled_insert(bs, job_events, EVENT_COLUMNS)
    with bs.store.write() as conn:
        conn.exec_driver_sql("PRAGMA cache_size=-1048576")
        for part in _chunks(gen, chunk):
            conn.exec_driver_sql(job_sql, [r for r, _ev in part])
            evs = [e for _r, evl in part for e in evl]
            if evs:
                conn.exec_driver_sql(ev_sql, evs)
            ids.extend(r[0] for r, _ev in part)
        conn.exec_driver_sql("PRAGMA cache_size=-2000")
    with bs.store.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def _copy_line(values: Sequence[Any]) -> str:
    return "\t".join("\\N" if v is None else str(v) for v in values) + "\n"


def _seed_pg(bs: BenchStore, gen: Iterator[Any], ids: list[str], chunk: int) -> None:
    """``COPY ... FROM STDIN`` through the psycopg connection under SQLAlchemy, then ANALYZE
    (autovacuum would do that shortly after a real bulk growth anyway)."""
    with bs.store.write() as conn:
        raw = conn.connection.driver_connection
        with raw.cursor() as cur:
            jcols = ", ".join(_ROW_ORDER)
            ecols = ", ".join(EVENT_COLUMNS)
            for part in _chunks(gen, chunk):
                # Text format, built here in bulk (the seeded values hold no tab, newline or
                # backslash, so nothing needs escaping; None is \\N).
                with cur.copy(f"COPY jobs ({jcols}) FROM STDIN") as cp:
                    cp.write("".join(_copy_line(r) for r, _ev in part))
                with cur.copy(f"COPY job_events ({ecols}) FROM STDIN") as cp:
                    cp.write("".join(_copy_line(e) for _r, evl in part for e in evl))
                ids.extend(r[0] for r, _ev in part)
    # ANALYZE outside a transaction block.
    with bs.store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE jobs")
        conn.exec_driver_sql("ANALYZE job_events")


def count_jobs(bs: BenchStore) -> int:
    with bs.store.read() as conn:
        return int(conn.execute(text("SELECT count(*) FROM jobs")).scalar_one())


# ------------------------------------------------------------------------------------------
# processes
# ------------------------------------------------------------------------------------------
def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of one process (all its threads), from /proc."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = raw.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def postgres_cpu_seconds() -> float:
    """CPU of every postgres process (the database's share of a PostgreSQL run)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            comm = Path(f"/proc/{entry}/comm").read_text().strip()
        except OSError:
            continue
        if comm.startswith("postgres"):
            total += proc_cpu_seconds(int(entry))
    return total


def postgres_pids_cpu(pids: Sequence[int]) -> float:
    return sum(proc_cpu_seconds(p) for p in pids)


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def children_of(pid: int) -> list[int]:
    """Direct and indirect children (by ppid) of a process."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(raw.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c in parents.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``mrs-jobs serve`` (or any command printing "... is running at <url>") as a subprocess.

    Production settings unless overridden: log level INFO, no access log, supervisor on with
    its default 0.25 s poll. Its stdout/stderr go to ``<data_dir>/../server.log``.
    """

    def __init__(
        self,
        argv: Sequence[str],
        env: dict[str, str],
        log_path: Path,
        marker: str = "is running at",
    ) -> None:
        self.argv = list(argv)
        self.env = {**os.environ, "MRS_JOBS_PORT": "0", **env}
        self.log_path = log_path
        self.marker = marker
        self.proc: subprocess.Popen[bytes] | None = None
        self.endpoint = ""
        self.host = ""
        self.port = 0

    @classmethod
    def mrs(cls, bs: BenchStore, *, fake: bool = False, **env: str) -> Server:
        """The service over this store. ``fake``: tests/crash/serve_fake.py (SparkSubmit jobs
        whose first argument is "fake" run tests/fake_engine.py)."""
        if fake:
            argv = [sys.executable, str(SERVE_FAKE)]
        else:
            argv = [str(MRS_JOBS), "serve"]
        url = bs.url
        if bs.kind == "postgres":  # lets us find the server's own backends (their CPU)
            url += f"&application_name={bs.app_name}"
        return cls(
            argv,
            # Retention off unless a bench sets it: the seeded jobs all ended in 2025, and the
            # supervisor would purge them while the bench reads them (and spend the CPU on it).
            {
                **bs.server_env(),
                "MRS_JOBS_DATABASE_URL": url,
                "MRS_JOBS_RETENTION_DAYS": "0",
                **env,
            },
            bs.data_dir.parent / "server.log",
        )

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 90.0) -> Server:
        import httpx

        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            stdout=open(self.log_path, "ab"),  # noqa: SIM115
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=str(ROOT),
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-3000:]}")
            txt = self.log_path.read_bytes()[offset:].decode(errors="replace")
            if self.marker in txt:
                endpoint = txt.split(self.marker, 1)[1].split()[0]
                try:
                    if httpx.get(endpoint + "/health", timeout=2).status_code == 200:
                        self.endpoint = endpoint
                        hostport = endpoint.split("//", 1)[1]
                        self.host, port = hostport.rsplit(":", 1)
                        self.port = int(port)
                        return self
                except httpx.HTTPError:
                    pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("server did not start in time")

    def stop(self, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def running(server: Server) -> Iterator[Server]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


# ------------------------------------------------------------------------------------------
# HTTP: pre-signed raw requests over a keep-alive socket
# ------------------------------------------------------------------------------------------
USER_AGENT = "mrs-jobs-bench/1.0"


def signed_request(
    tenant: Tenant,
    host: str,
    port: int,
    method: str,
    path: str,
    query: str = "",
    body: bytes = b"",
    sdk_date: str | None = None,
) -> bytes:
    """A complete HTTP/1.1 request, signed like the official SDK (SDK-HMAC-SHA256).

    The signature covers method, path, query, the five SDK headers and the body hash; it stays
    valid for the server's clock-skew window (15 min), so a benchmark may send it many times.
    """
    hostport = f"{host}:{port}"
    headers = {
        "Content-Type": "application/json",
        "Host": hostport,
        "User-Agent": USER_AGENT,
        "X-Project-Id": tenant.project_id,
    }
    added = sign_headers(
        ak=tenant.ak,
        sk=tenant.sk,
        method=method,
        url_path=path,
        raw_query=query,
        headers=headers,
        body=body,
        sdk_date=sdk_date,
    )
    target = path + (f"?{query}" if query else "")
    lines = [f"{method} {target} HTTP/1.1"]
    lines += [f"{k}: {v}" for k, v in {**headers, **added}.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def now_sdk_date() -> str:
    return format_sdk_date(datetime.now(UTC))


class RawHttp:
    """The leanest keep-alive HTTP/1.1 client: sends prepared bytes, reads one response.

    Used so the load generator's own CPU stays small next to the server's on a 2-core box.
    Handles Content-Length bodies only (what uvicorn sends for these routes).
    """

    def __init__(self, host: str, port: int, timeout: float = 60.0) -> None:
        self.addr = (host, port)
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.buf = b""

    def _connect(self) -> socket.socket:
        s = socket.create_connection(self.addr, timeout=self.timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock, self.buf = s, b""
        return s

    def request(self, raw: bytes) -> tuple[int, bytes]:
        s = self.sock or self._connect()
        try:
            s.sendall(raw)
            return self._read()
        except (ConnectionError, OSError):
            self.close()
            s = self._connect()
            s.sendall(raw)
            return self._read()

    def _read(self) -> tuple[int, bytes]:
        assert self.sock is not None
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
                break
        while len(rest) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            rest += chunk
        self.buf = rest[length:]
        return status, rest[:length]

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None
                self.buf = b""


class Api:
    """Signed calls for the benchmarks' single-request measurements (not the load test)."""

    def __init__(self, server: Server, tenant: Tenant) -> None:
        self.server, self.tenant = server, tenant
        self.http = RawHttp(server.host, server.port)
        self.prefix = f"/v2/{tenant.project_id}/clusters/{tenant.cluster_id}/job-executions"

    def prepare(self, method: str, suffix: str = "", query: str = "", body: Any = None) -> bytes:
        data = b"" if body is None else json.dumps(body).encode()
        return signed_request(
            self.tenant,
            self.server.host,
            self.server.port,
            method,
            self.prefix + suffix,
            query,
            data,
        )

    def send(self, raw: bytes) -> tuple[int, Any, float]:
        t0 = time.perf_counter()
        status, body = self.http.request(raw)
        dt = time.perf_counter() - t0
        return status, (json.loads(body) if body else None), dt

    def call(
        self, method: str, suffix: str = "", query: str = "", body: Any = None
    ) -> tuple[int, Any, float]:
        return self.send(self.prepare(method, suffix, query, body))

    def close(self) -> None:
        self.http.close()


def check(status: int, expected: int, body: Any, what: str) -> None:
    if status != expected:
        raise RuntimeError(f"{what}: HTTP {status}, expected {expected}: {str(body)[:500]}")


def seeded_stores(backends: str, sizes: str) -> Iterator[BenchStore]:
    """A fresh store per backend and size ("sqlite,postgres", "10000,100000"), seeded with
    that many finished jobs, dropped once the caller moves on."""
    for kind in backends.split(","):
        for size in [int(s) for s in sizes.split(",")]:
            bs = make_store(kind)
            try:
                log(f"seeding {kind} {size:,}")
                seed_jobs(bs, size)
                yield bs
            finally:
                bs.drop()
