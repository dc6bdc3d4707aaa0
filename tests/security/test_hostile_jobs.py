"""Hostile jobs (issue 13): one real ``mrs-jobs serve`` with default settings and two projects;
jobs of project A reach for the service's secrets and for project B, and every attempt fails.

Project A has the bootstrap cluster (no roots: the default, where a job sees the host read-only)
and a second cluster whose output root *holds the data directory* (jobs see only their roots).
Project B (created with ``mrs-jobs admin``) runs an SQL job, so its Spark Thrift Server is up,
and a PySpark job held running on a latch while A attacks its Spark UI. Then A's jobs try to:

- read ``secret.key``, the SQLite store and its ``-wal``, ``bootstrap.json``, B's job directory
  and logs, B's Thrift password, other processes' ``/proc/<pid>/environ`` (the service runs with
  a canary variable), through SQL (path forms, and ``try_reflect`` calls that no text check can
  see), DistCp (also through symlinks), MapReduce (an input path nobody checks), PySpark and
  Flink programs;
- write into the data directory (next to the store, over B's log, a table in B's warehouse)
  and outside the roots of the rooted cluster;
- query B's Thrift server (with no, a guessed and a stolen password) and kill B's job through
  its Spark UI; replace their own ``stderr.log`` with a link to the key for the service to read.

Each job is refused when built (FAILED, the reason in its stderr) or runs and gets nothing:
the test reads what the job reported and what is on disk. Then no secret (the key, the SKs, the
canary, B's secret property, B's table, B's Thrift password, B's log, the store's sealed
values) may appear in any API answer of A, any file of A's job directories or any output file.

Without the box or the path checks (the code before 62141fd) the key read by SQL comes back in
the sql-result, the PySpark report holds the key, the store and the canary, B's Thrift server
answers and B's job is killed: every one of those fails an assertion here.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from support_hostile import (
    ATTACK,
    B_HOLD,
    ENDED,
    Answers,
    Latch,
    encode_spec,
    files_under,
    parse_report,
    wait_running_spark_job,
    wordcount_jar,
)

_ACCEPTANCE = Path(__file__).resolve().parent.parent / "acceptance"
if str(_ACCEPTANCE) not in sys.path:
    sys.path.insert(0, str(_ACCEPTANCE))

from mrs_acceptance import (  # noqa: E402
    RunningServer,
    marked_processes,
    start_server,
    stop_server,
)

from mrs_jobs.engines.install import installed_flink_home  # noqa: E402
from mrs_jobs.engines.java import find_java_home, find_spark_home  # noqa: E402
from mrs_jobs.engines.thrift import SECRET_FILE  # noqa: E402

pytestmark = [pytest.mark.spark, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
ENGINES_DIR = Path(os.environ.get("MRS_JOBS_TEST_ENGINES_DIR", str(REPO / ".cache" / "engines")))
B_TABLE = "b_private"
REFUSED = "[mrs-jobs] could not launch:"
OWN = "reaches the service's own files"
SQL_TYPES = {"SparkSql", "SparkScript", "HiveSql", "HiveScript"}
STORE_FILES = ("mrs-jobs.db", "mrs-jobs.db-wal", "mrs-jobs.db-shm")


@dataclass
class Job:
    """One job of A: its cluster, and what its refusal must say (None: it runs)."""

    name: str
    cluster: str
    job_type: str
    refusal: str | None
    job_id: str = ""
    submit_status: int = 0
    submit_body: str = ""
    detail: dict[str, Any] = field(default_factory=dict)
    stdout: str = ""
    stderr: str = ""
    sql: dict[str, Any] | None = None


Attempt = tuple[str, str, str, list[str], str | None]  # name, cluster, type, arguments, refusal


@dataclass
class World:
    """The server, the two projects, and what A's jobs tried and got."""

    base: Path
    outside: Path  # outside every root
    flink: bool
    tag: str = field(default_factory=lambda: "hostile-" + uuid.uuid4().hex[:12])
    content: str = field(default_factory=lambda: "PLANTED-" + uuid.uuid4().hex)
    canary: str = field(default_factory=lambda: "canary-" + uuid.uuid4().hex)
    jobs: dict[str, Job] = field(default_factory=dict)
    needles: dict[str, str] = field(default_factory=dict)  # what no answer may contain
    phases: dict[str, float] = field(default_factory=dict)
    blocked: dict[str, str] = field(default_factory=dict)  # attempt -> what stopped it
    server: RunningServer = field(init=False)
    a: Answers = field(init=False)
    b: Answers = field(init=False)
    clusters: dict[str, str] = field(init=False)  # "a" (no roots), "rooted", "b"
    key_before: tuple[bytes, int, int] = field(init=False)
    db_inode: int = field(init=False)
    b_sql: str = field(init=False)
    b_hold: str = field(init=False)
    b_log_before: tuple[bytes, int] = field(init=False)
    b_hold_detail: dict[str, Any] = field(init=False)
    b_hold_stdout: str = field(init=False)
    released_ms: int = field(init=False)

    @property
    def data(self) -> Path:
        return self.server.data_dir

    @property
    def inputs(self) -> Path:  # the rooted cluster's input root (its output root is base)
        return self.base / "in"

    @property
    def host_target(self) -> Path:  # a host path outside /tmp (private in a box)
        return Path(sys.prefix) / f"{self.tag}-host"

    @property
    def b_dir(self) -> Path:  # B's SQL job's directory
        return self.data / "jobs" / self.b_sql

    @property
    def b_sql_dir(self) -> Path:  # B's cluster's SQL server
        return self.data / "clusters" / self.clusters["b"] / "sql"

    # -- set-up ---------------------------------------------------------------------------

    def start(self, pool: ThreadPoolExecutor) -> None:
        """The server (no roots on the bootstrap cluster, a canary in its environment), A's
        rooted cluster, and project B with its AK/SK, token and cluster."""
        self.inputs.mkdir()
        (self.inputs / "attack.py").write_text(ATTACK)
        (self.base / "b_hold.py").write_text(B_HOLD)
        (self.inputs / "plain.txt").write_text(self.content + "\n")
        jar = pool.submit(wordcount_jar, self.base)  # javac, while the server starts
        env = {
            "MRS_JOBS_BOOTSTRAP_OUTPUT_ROOTS": "[]",  # the default: no roots
            "MRS_JOBS_TEST_CANARY": self.canary,
            "MRS_JOBS_KILL_GRACE_SECONDS": "2",
        }
        if self.flink:
            env["MRS_JOBS_FLINK_HOME"] = str(installed_flink_home(ENGINES_DIR))
        self.server = start_server(self.base, env)
        admin = self.server.admin
        a_project = self.server.project_id
        a_token = pool.submit(admin, "create-token", a_project)
        rooted = pool.submit(
            admin, "create-cluster", a_project, "--name", "rooted",
            "--components", "Spark,Hive,Hadoop",
            "--input-root", str(self.inputs), "--output-root", str(self.base),
        )  # fmt: skip
        b_project = admin("create-project", "tenant-b")
        b_aksk = pool.submit(admin, "create-aksk", b_project)
        b_token = pool.submit(admin, "create-token", b_project)
        b_cluster = admin("create-cluster", b_project, "--name", "b", "--components", "Spark,Hive")
        self.a = Answers(self.server.endpoint, a_project, a_token.result())
        self.b = Answers(self.server.endpoint, b_project, b_token.result())
        self.clusters = {"a": self.server.cluster_id, "rooted": rooted.result(), "b": b_cluster}
        built = jar.result()
        if built is not None:
            shutil.copy(built, self.inputs / "wc.jar")

        key = self.data / "secret.key"
        # The canary is really in the service's environment (what /proc/<pid>/environ shows).
        assert self.canary.encode() in Path(f"/proc/{self.server.proc.pid}/environ").read_bytes()
        self.needles.update(
            {
                "the service key": key.read_text().strip().rstrip("=")[:16],
                "A's SK (bootstrap.json)": self.server.boot["sk"],
                "B's SK": json.loads(b_aksk.result())["sk"],
                "the service's canary variable": self.canary,
                "B's secret job property": "bprop-" + uuid.uuid4().hex,
                "B's table row (B's warehouse, log and store)": "brow-" + uuid.uuid4().hex,
            }
        )
        st = key.stat()
        self.key_before = (key.read_bytes(), st.st_ino, st.st_mtime_ns)
        self.db_inode = (self.data / "mrs-jobs.db").stat().st_ino

    def start_b(self, latch: Latch) -> None:
        """B's SQL job (its SQL server starts) and B's PySpark job, held on ``latch``; both
        carry a secret property."""
        props = {"fs.obs.secret.key": self.needles["B's secret job property"]}
        row = self.needles["B's table row (B's warehouse, log and store)"]
        sql = f"CREATE TABLE {B_TABLE} AS SELECT '{row}' AS s; SELECT s FROM {B_TABLE}"
        cluster = self.clusters["b"]
        r = self.b.submit(cluster, "SparkSql", [sql], "b-sql", props)
        assert r.status_code == 200, r.text
        self.b_sql = r.json()["job_submit_result"]["job_id"]
        hold = [str(self.base / "b_hold.py"), str(latch.port)]
        r = self.b.submit(cluster, "SparkSubmit", hold, "b-hold", props)
        assert r.status_code == 200, r.text
        self.b_hold = r.json()["job_submit_result"]["job_id"]

    def submit(self, attempts: list[Attempt]) -> None:
        for name, cluster, job_type, args, refusal in attempts:
            job = self.jobs[name] = Job(name, cluster, job_type, refusal)
            r = self.a.submit(self.clusters[cluster], job_type, args, name.replace(".", "-"))
            job.submit_status, job.submit_body = r.status_code, r.text
            if r.status_code == 200:
                job.job_id = r.json()["job_submit_result"]["job_id"]

    def wait_for_b(self) -> tuple[str, dict[str, Any]]:
        """B's SQL job done (its server up), B's job 0 running: (its UI, the server's state).
        Also the needles only known now, and B's log as it is before A attacks it."""
        b, cluster = self.b, self.clusters["b"]
        detail = b.wait(cluster, self.b_sql, ENDED, 300)
        assert detail["job_result"] == "SUCCEEDED", (detail, b.log(cluster, self.b_sql, "stderr"))
        detail = b.wait(cluster, self.b_hold, frozenset({"RUNNING"}) | ENDED, 120)
        assert detail["job_state"] == "RUNNING", (detail, b.log(cluster, self.b_hold, "stderr"))
        ui = detail["tracking_url"]  # B's Spark UI, as B's job detail shows it
        assert ui.startswith("http://127.0.0.1:"), detail
        wait_running_spark_job(ui, 120)
        self.needles["B's Thrift password"] = (self.b_sql_dir / SECRET_FILE).read_text().strip()
        db = f"file:{self.data / 'mrs-jobs.db'}?mode=ro"
        with sqlite3.connect(db, uri=True) as conn:
            sealed = conn.execute(
                "SELECT secret_key FROM credentials WHERE project_id = ? AND secret_key != ''",
                (b.project_id,),
            ).fetchone()[0]
        self.needles["B's SK as sealed in the store"] = sealed[-24:]
        log = self.b_dir / "stdout.log"
        self.b_log_before = (log.read_bytes(), log.stat().st_mtime_ns)
        assert (
            self.needles["B's table row (B's warehouse, log and store)"].encode()
            in (self.b_log_before[0])
        )
        return ui, json.loads((self.b_sql_dir / "state.json").read_text())

    def release_b(self, latch: Latch) -> None:
        self.released_ms = int(time.time() * 1000)
        latch.release()
        cluster = self.clusters["b"]
        self.b_hold_detail = self.b.wait(cluster, self.b_hold, ENDED, 120)
        self.b_hold_stdout = self.b.log(cluster, self.b_hold, "stdout")
        marker = re.search(r"B-LOG-MARKER (\w+)", self.b_hold_stdout)
        if marker:
            self.needles["B's job log"] = marker.group(1)

    def collect(self) -> None:
        """Every answer A can get about its jobs: show, both logs, SQL results, the lists."""
        for job in self.jobs.values():
            if job.job_id:
                cluster = self.clusters[job.cluster]
                job.detail = self.a.show(cluster, job.job_id)
                job.stdout = self.a.log(cluster, job.job_id, "stdout")
                job.stderr = self.a.log(cluster, job.job_id, "stderr")
                if job.job_type in SQL_TYPES:
                    job.sql = self.a.sql_result(cluster, job.job_id)
        self.a.list(self.clusters["a"])
        self.a.list(self.clusters["rooted"])

    # -- the attempts ---------------------------------------------------------------------

    def attempts_without_b(self) -> list[Attempt]:
        """What needs nothing of B running: path forms, links, the rooted cluster, Flink."""
        data, key, inputs, tag, content = (
            self.data, self.data / "secret.key", self.inputs, self.tag, self.content
        )  # fmt: skip
        out, b_dir, b_sql_dir = self.outside, self.b_dir, self.b_sql_dir
        (inputs / "read.sql").write_text(
            f"SELECT * FROM text.`{key}`;\nSELECT * FROM csv.`{b_dir}/stdout.log`;\n"
        )
        (inputs / "write.sql").write_text(
            f"CREATE TABLE planted (a INT) LOCATION 'file://{b_sql_dir}/warehouse/{tag}';\n"
            "INSERT INTO planted VALUES (1);\n"
        )
        os.symlink(data / "bootstrap.json", inputs / "evil.sql")
        tree = inputs / "tree"  # a directory whose links point at the key and the data dir
        tree.mkdir()
        (tree / "ok.txt").write_text("ok\n")
        os.symlink(key, tree / "key")
        os.symlink(data, tree / "data")
        outside_root = "not under an allowed output root"
        attempts: list[Attempt] = [
            ("sql.read_key", "a", "SparkSql", [f"SELECT * FROM text.`file://{key}`"], OWN),
            ("sql.read_store", "a", "SparkSql",
             [f"SELECT * FROM binaryFile.`{data}/mrs-jobs.db`"], OWN),
            ("sql.write_data_dir", "a", "SparkSql",
             [f"INSERT OVERWRITE DIRECTORY 'file://{data}/{tag}-sql' SELECT '{content}'"], OWN),
            ("sql.variable", "a", "SparkSql",
             [f"SET hivevar:k=secret.key; SELECT * FROM text.`{data}/${{hivevar:k}}`"], "'${'"),
            ("hive.read_bootstrap", "a", "HiveSql",
             [f"SELECT * FROM json.`{data}/bootstrap.json`"], OWN),
            ("script.read", "a", "SparkScript", [str(inputs / "read.sql")], OWN),
            ("script.is_bootstrap_json", "a", "SparkScript", [str(inputs / "evil.sql")], OWN),
            ("script.table_in_b_warehouse", "a", "HiveScript", [str(inputs / "write.sql")], OWN),
            ("distcp.data_dir", "a", "DistCp", [str(data), str(out / f"{tag}-loot")], OWN),
            ("distcp.key_via_symlink", "a", "DistCp",
             [str(tree / "key"), str(out / f"{tag}-loot2")], OWN),
            # The rooted cluster: its output root holds the data directory.
            ("rooted.warm_up", "rooted", "SparkSql", ["SELECT 1"], None),  # its SQL server
            ("rooted.sql_read_key", "rooted", "SparkSql", [f"SELECT * FROM text.`{key}`"], OWN),
            ("rooted.sql_write_outside", "rooted", "SparkSql",
             [f"INSERT OVERWRITE DIRECTORY 'file://{out}/{tag}-sql' SELECT '{content}'"],
             outside_root),
            ("rooted.distcp_tree_with_links", "rooted", "DistCp",
             [str(tree), str(self.base / f"{tag}-dcp-out")], None),
            ("rooted.distcp_outside", "rooted", "DistCp",
             [str(inputs / "plain.txt"), str(out / f"{tag}-dcp")], outside_root),
        ]  # fmt: skip
        if (inputs / "wc.jar").exists():
            # Only the jar is checked: the input path is the program's business, so only the
            # box stands between WordCount and the key.
            attempts.append(
                ("rooted.mapreduce_reads_key", "rooted", "MapReduce",
                 [str(inputs / "wc.jar"), "WordCount",
                  f"file://{data}/{{secret.key,bootstrap.json}}", str(self.base / f"{tag}-mr-out")],
                 None)
            )  # fmt: skip
        if self.flink:
            args = ["run", "-py", str(inputs / "attack.py"), encode_spec(self.attack_spec())]
            attempts.append(("flink.python", "a", "Flink", args, None))
        return attempts

    def attack_spec(self) -> dict[str, Any]:
        """What ATTACK tries on the service's files and processes (no engine endpoint)."""
        data, b_sql_dir = self.data, self.b_sql_dir
        b_hold_dir = data / "jobs" / self.b_hold
        return {
            "data": str(data),
            "tag": self.tag,
            "content": self.content,
            "reads": {
                "key": str(data / "secret.key"),
                "store": str(data / "mrs-jobs.db"),
                "store_wal": str(data / "mrs-jobs.db-wal"),
                "bootstrap": str(data / "bootstrap.json"),
                "b_sql_stdout": str(self.b_dir / "stdout.log"),
                "b_sql_results": str(self.b_dir / "sql_results.json"),
                "b_hold_stdout": str(b_hold_dir / "stdout.log"),
                "b_hold_launch": str(b_hold_dir / "launch.json"),
                "b_password": str(b_sql_dir / SECRET_FILE),
                "b_thrift_state": str(b_sql_dir / "state.json"),
            },
            "lists": {
                "data": str(data),
                "jobs": str(data / "jobs"),
                "b_sql_dir": str(self.b_dir),
                "b_cluster": str(b_sql_dir),
                "b_warehouse": str(b_sql_dir / "warehouse"),
            },
            "writes": {
                "data_dir": str(data / f"{self.tag}-file"),
                "next_to_store": str(data / f"mrs-jobs.db-{self.tag}"),
                "b_log": str(self.b_dir / "stdout.log"),
                "b_cluster": str(b_sql_dir / self.tag),
                "host": str(self.host_target),
            },
            "appends": {"store": str(data / "mrs-jobs.db"), "key": str(data / "secret.key")},
            "mkdirs": {"jobs": str(data / "jobs" / f"{self.tag}-job")},
            "pids": {"server": self.server.proc.pid},
        }

    def attempts_on_b(self, ui: str, state: dict[str, Any]) -> list[Attempt]:
        """With B's SQL server up and B's job running: the PySpark attack, B's log, B's
        directory, and Java in the rooted cluster's SQL server."""
        data, tag = self.data, self.tag
        key, b_log = data / "secret.key", self.b_dir / "stdout.log"
        spec = self.attack_spec()
        spec.update(
            pids={
                "server": self.server.proc.pid,
                "b_hold": sorted(marked_processes(self.b_hold))[0],
                "b_thrift": state["pid"],
            },
            thrift_port=state["port"],  # what a port scan finds
            thrift_query=f"SELECT s FROM {B_TABLE}",
            b_password=str(self.b_sql_dir / SECRET_FILE),
            ui=ui,
            spark=True,
            swap_log=True,
        )
        read = "try_reflect('org.apache.spark.util.Utils', 'getPropertiesFromFile', '{}')"
        mkdir = "try_reflect('org.apache.spark.util.Utils', 'createDirectory', '{}', '{}')"
        reflect = (
            f"SELECT {read.format(key)} AS key_file, "
            f"{read.format(data / 'bootstrap.json')} AS bootstrap, "
            f"{read.format(self.b_sql_dir / SECRET_FILE)} AS b_password, "
            f"{read.format(b_log)} AS b_log, "
            "try_reflect('java.lang.System', 'getenv', 'MRS_JOBS_TEST_CANARY') AS canary, "
            "try_reflect('java.lang.System', 'getenv') AS environment, "
            f"{mkdir.format(data, tag)} AS mkdir_data, "
            f"{mkdir.format(self.outside, tag)} AS mkdir_outside"
        )
        attack = [str(self.inputs / "attack.py"), encode_spec(spec)]
        return [
            ("pyspark.attack", "a", "SparkSubmit", attack, None),
            ("distcp.overwrite_b_log", "a", "DistCp",
             ["-overwrite", str(self.inputs / "plain.txt"), str(b_log)], OWN),
            ("hive.overwrite_b_job_dir", "a", "HiveSql",
             [f"INSERT OVERWRITE LOCAL DIRECTORY '{self.b_dir}' SELECT '{self.content}'"], OWN),
            ("rooted.sql_reflect", "rooted", "SparkSql", [reflect], None),
        ]  # fmt: skip

    def summary(self) -> str:
        lines = [f"{name}: {how}" for name, how in sorted(self.blocked.items())]
        lines += [f"[{seconds:6.1f} s] {name}" for name, seconds in self.phases.items()]
        return "\n".join(lines)


def _wants(request: pytest.FixtureRequest, marker: str) -> bool:
    """Whether a selected test of this module carries ``marker`` (its engine is worth a run)."""
    return any(
        item.get_closest_marker(marker) is not None and item.module is request.module
        for item in request.session.items
    )


@pytest.fixture(scope="module")
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    if find_java_home() is None or find_spark_home() is None:
        pytest.skip("no Java or pyspark")
    started = time.monotonic()
    flink = _wants(request, "flink") and installed_flink_home(ENGINES_DIR) is not None
    w = World(tmp_path_factory.mktemp("hostile"), tmp_path_factory.mktemp("outside"), flink)
    latch = Latch()
    pool = ThreadPoolExecutor(4)
    try:
        w.start(pool)
        w.phases["server, projects, clusters"] = time.monotonic() - started
        w.start_b(latch)
        w.submit(w.attempts_without_b())
        ui, state = w.wait_for_b()
        w.phases["B's SQL server up, B's job running"] = time.monotonic() - started
        w.submit(w.attempts_on_b(ui, state))
        w.a.wait_all([(w.clusters[j.cluster], j.job_id) for j in w.jobs.values() if j.job_id], 300)
        w.phases["A's jobs ended"] = time.monotonic() - started
        w.release_b(latch)
        w.collect()
        w.phases["total"] = time.monotonic() - started
        yield w
        print(w.summary())  # which line stopped each attempt, and the time (shown with -rP)
    finally:
        pool.shutdown()
        latch.release()
        if hasattr(w, "server"):
            stop_server(w.server)
        if w.host_target.exists():  # only if the box let a job write there
            shutil.rmtree(w.host_target) if w.host_target.is_dir() else w.host_target.unlink()


# ---------------------------------------------------------------------------- judgements


def _nothing(outcome: dict[str, Any]) -> bool:
    """An attempt that got nothing: an error, or an empty answer (a covered file)."""
    return "error" in outcome or outcome.get("ok") in ("", [], {}, None)


def _report(world: World, name: str) -> dict[str, dict[str, Any]]:
    job = world.jobs[name]
    report = parse_report(job.stdout)
    if report is None:
        stderr = (world.data / "jobs" / job.job_id / "stderr.log").read_text(errors="replace")
        pytest.fail(
            f"{name} printed no report: {job.detail}\nstdout:\n{job.stdout[-2000:]}\n"
            f"stderr:\n{stderr[-4000:]}"
        )
    assert report["cwd"]["ok"] == str(world.data / "jobs" / job.job_id)  # ran where it should
    return report


def _check_files_report(world: World, report: dict[str, dict[str, Any]], name: str) -> None:
    """The file and process attempts of an ATTACK report: each got nothing."""
    own = world.jobs[name].job_id
    got = {
        k: v for k, v in report.items() if k.startswith(("read.", "write.", "append.", "mkdir."))
    }
    assert got, report
    allowed = [k for k, v in got.items() if not _nothing(v)]
    assert not allowed, {k: got[k] for k in allowed}
    for key in [k for k in report if k.startswith("list.")]:
        outcome = report[key]
        if "ok" in outcome:  # the covered data directory: no store, no other job, no cluster
            names = set(outcome["ok"])
            assert names <= {"jobs", "secret.key", *STORE_FILES, own}, (key, names)
            assert world.b_sql not in names and world.b_hold not in names, (key, names)
    for pid_key in [k for k in report if k.startswith("proc.signal0.")]:
        outcome = report[pid_key]
        assert "error" in outcome or "mrs-jobs" not in outcome["ok"], (pid_key, outcome)
    seen = report["proc.processes"]["ok"]
    for pid, cmd in seen.items():
        for foreign in ("mrs-jobs serve", "HiveThriftServer2", "b_hold.py", world.b_hold):
            assert foreign not in cmd, f"{name} sees {pid}: {cmd}"
    assert len(seen) < 40, seen  # its own few processes, not the host's
    environments = "\n".join(report["proc.environments"]["ok"].values())
    job_ids = set(re.findall(r"MRS_JOBS_JOB_ID=(\S+)", environments))
    assert job_ids <= {own}, job_ids
    assert "MRS_JOBS_DATA_DIR" not in environments  # the service's own environment
    world.blocked[f"{name}: files, store, B's directory, /proc"] = (
        "box (data dir covered, own pid namespace)"
    )


def test_service_files_and_bs_log_are_unchanged_and_nothing_was_planted(world: World) -> None:
    data = world.data
    key = data / "secret.key"
    st = key.stat()
    assert (key.read_bytes(), st.st_ino, st.st_mtime_ns) == world.key_before
    assert (data / "mrs-jobs.db").stat().st_ino == world.db_inode
    with sqlite3.connect(f"file:{data / 'mrs-jobs.db'}?mode=ro", uri=True) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    b_log = data / "jobs" / world.b_sql / "stdout.log"
    assert (b_log.read_bytes(), b_log.stat().st_mtime_ns) == world.b_log_before
    # Nothing of the attacks landed in the data directory (names or contents), outside the
    # roots, or on the host.
    own_dirs = {j.job_id for j in world.jobs.values()}
    # A job's event log kept for the history server is a hard link to the job's own file:
    # the job's output, not something planted (the same inode as a file of its directory).
    own_files = {
        (st.st_dev, st.st_ino)
        for job_id in own_dirs
        for f in (data / "jobs" / job_id).rglob("*")
        if f.is_file() and not f.is_symlink() and (st := f.stat())
    }
    planted: list[str] = []
    for root, dirs, files in os.walk(data):
        rel = Path(root).relative_to(data)
        if len(rel.parts) >= 2 and rel.parts[0] == "jobs" and rel.parts[1] in own_dirs:
            dirs[:] = []
            continue
        for name in dirs + files:
            if world.tag in name:
                planted.append(str(Path(root) / name))
        for name in files:
            path = Path(root) / name
            if name in STORE_FILES or path.is_symlink():
                continue
            st = path.stat()
            if rel.parts[-2:] == ("spark-history", "logs") and (st.st_dev, st.st_ino) in own_files:
                continue
            if world.content.encode() in path.read_bytes():
                planted.append(str(path))
    assert not planted, planted
    assert not list(world.outside.iterdir()), list(world.outside.iterdir())
    assert not world.host_target.exists()


def test_sql_path_forms_are_refused_before_they_run(world: World) -> None:
    refused = [j for j in world.jobs.values() if j.refusal and j.job_type in SQL_TYPES]
    assert len(refused) >= 9
    for job in refused:
        if job.submit_status == 400 and job.refusal in job.submit_body:
            world.blocked[job.name] = f"refused at submit: {job.submit_body[:120]}"
            continue
        assert job.submit_status == 200, job.submit_body
        assert (job.detail["job_state"], job.detail["job_result"]) == ("FINISHED", "FAILED") or (
            job.detail["job_state"] == "FAILED"
        ), (job.name, job.detail)
        assert REFUSED in job.stderr and job.refusal in job.stderr, (job.name, job.stderr)
        assert job.sql in ({}, None) or not any(job.sql.values()), (job.name, job.sql)
        world.blocked[job.name] = "SQL path check: " + job.stderr.split(REFUSED, 1)[1].strip()[:110]


def test_distcp_reads_nothing_of_the_service_and_writes_only_under_the_roots(
    world: World,
) -> None:
    for job in [j for j in world.jobs.values() if j.job_type == "DistCp" and j.refusal]:
        assert job.detail["job_result"] == "FAILED", (job.name, job.detail)
        assert REFUSED in job.stderr and job.refusal in job.stderr, (job.name, job.stderr)
        world.blocked[job.name] = "path check: " + job.stderr.split(REFUSED, 1)[1].strip()[:110]
    # A tree whose links point at the key and the data directory: the copy follows none.
    tree = world.jobs["rooted.distcp_tree_with_links"]
    assert tree.detail["job_state"] in ENDED, tree.detail
    out = world.base / f"{world.tag}-dcp-out"
    copied = sorted(str(p.relative_to(out)) for p in out.rglob("*")) if out.exists() else []
    assert not [c for c in copied if "secret.key" in c or c.endswith("key") or "data" in c], copied
    world.blocked[tree.name] = (
        f"{tree.detail['job_result']}: copied {copied}; links refused by the runner"
        + (f" ({_reason(tree)})" if tree.detail["job_result"] == "FAILED" else "")
    )


def _reason(job: Job) -> str:
    lines = [ln for ln in job.stderr.splitlines() if "link" in ln.lower() or "refus" in ln.lower()]
    return (lines[-1] if lines else job.stderr.strip().splitlines()[-1:] or [""])[0][:120]


def test_mapreduce_reads_nothing_through_an_unchecked_input_path(world: World) -> None:
    """Only the jar of a MapReduce job is checked: its input path is the program's business,
    so only the box stands between WordCount and the key (without it the key is counted)."""
    if "rooted.mapreduce_reads_key" not in world.jobs:
        pytest.skip("no javac for the WordCount jar")
    job = world.jobs["rooted.mapreduce_reads_key"]
    assert job.detail["job_state"] in ENDED, job.detail
    out = world.base / f"{world.tag}-mr-out"
    words = "".join(p.read_text() for p in out.glob("part-*")) if out.exists() else ""
    assert words == "", words
    if job.detail["job_result"] == "SUCCEEDED":
        how = "read empty files"
    else:  # the covered files are not there to match
        found = re.search(r"Input Pattern (\S+) matches 0 files", job.stderr)
        assert found and found.group(1).startswith(f"file:{world.data}/"), job.stderr[-5000:]
        how = found.group(0)
    world.blocked[job.name] = f"box: {job.detail['job_result']}, {how}, output {words!r}"


def test_sql_code_on_the_server_reads_and_writes_nothing_of_the_service(world: World) -> None:
    """try_reflect runs Java in the cluster's SQL server: no text check sees its paths, so
    only that server's box stands between it and the key, B's files and the data dir."""
    job = world.jobs["rooted.sql_reflect"]
    assert job.detail["job_result"] == "SUCCEEDED", (job.detail, job.stderr[-3000:])
    rows = [row for rows in (job.sql or {}).values() for row in rows]
    assert len(rows) == 1, job.sql
    row = {k: (None if v in (None, "NULL", "null", "") else v) for k, v in rows[0].items()}
    for column in ("key_file", "bootstrap", "b_password", "b_log"):
        assert row[column] in (None, "Map()", "{}"), (column, row[column])
    assert row["canary"] is None, row
    assert "MRS_JOBS_TEST_CANARY" not in (row["environment"] or ""), row["environment"]
    assert row["mkdir_data"] is None, row  # the covered data directory is read-only
    # mkdir_outside lands in the server's private /tmp at most: the host is checked elsewhere.
    world.blocked[job.name] = (
        f"box (SQL server's): files read as {row['key_file']!r}, mkdir in data dir -> "
        f"{row['mkdir_data']!r}, outside roots -> {row['mkdir_outside']!r} (private /tmp)"
    )


def test_pyspark_job_gets_nothing_of_the_service_or_of_b(world: World) -> None:
    report = _report(world, "pyspark.attack")
    _check_files_report(world, report, "pyspark.attack")
    # Through Spark itself: the driver JVM and a Python worker are in the same box.
    assert report["spark.session"] == {"ok": "ran"}, report["spark.session"]
    for key in ("spark.read_key", "spark.read_bootstrap", "spark.python_worker_read_key"):
        outcome = report[key]
        assert "error" in outcome or outcome["ok"] in ([], [""]), (key, outcome)
    assert "error" in report["spark.write_data_dir"], report["spark.write_data_dir"]
    # Its own stderr.log replaced by a link to the key: the service does not follow it.
    assert report["swap_log"] == {"ok": "swapped"}, report["swap_log"]
    assert world.jobs["pyspark.attack"].stderr == ""
    world.blocked["pyspark.attack: stderr.log -> key link"] = "service reads logs with O_NOFOLLOW"
    world.blocked["pyspark.attack: Spark reads/writes"] = "box"
    for key, outcome in sorted(report.items()):
        if not key.startswith("proc.environments"):
            shown = json.dumps(outcome)
            world.blocked[f"pyspark.attack report {key}"] = shown[:150]


def test_bs_thrift_server_refuses_a(world: World) -> None:
    report = _report(world, "pyspark.attack")
    assert report["thrift.tcp"] == {"ok": "connected"}, report["thrift.tcp"]  # reachable...
    for key in ("thrift.auth_none", "thrift.auth_nosasl", "thrift.auth_guess"):
        assert "error" in report[key], (key, report[key])  # ...but it wants B's password
    assert "error" in report["thrift.stolen_password"], report["thrift.stolen_password"]
    assert (
        "nothing" in report["thrift.stolen_password"]["error"]
        or "No such file" in (report["thrift.stolen_password"]["error"])
    ), report["thrift.stolen_password"]
    world.blocked["pyspark.attack: B's Thrift server"] = (
        "auth (CUSTOM, per-cluster password; the password file is covered by the box): "
        + "; ".join(
            f"{k[7:]}: {report[k]['error'][:60]}" for k in report if k.startswith("thrift.a")
        )
    )


def test_bs_spark_ui_kills_nothing(world: World) -> None:
    report = _report(world, "pyspark.attack")
    assert report["ui.page"] == {"ok": 200}, report["ui.page"]  # B's UI was reachable
    assert "ok" in report["ui.kill"], report["ui.kill"]
    detail = world.b_hold_detail
    assert (detail["job_state"], detail["job_result"]) == ("FINISHED", "SUCCEEDED"), (
        detail,
        world.b_hold_stdout[-2000:],
    )
    assert "B-RESULT 3" in world.b_hold_stdout
    # It was still running (held on the latch) when A's job, the attack, had ended.
    assert detail["finished_time"] >= world.released_ms, (detail, world.released_ms)
    world.blocked["pyspark.attack: kill B's job via its UI"] = (
        f"spark.ui.killEnabled=false: answers {sorted(set(report['ui.kill']['ok'].values()))}, "
        "B's job SUCCEEDED"
    )


@pytest.mark.flink
def test_flink_python_job_gets_nothing_of_the_service(world: World) -> None:
    if not world.flink:
        pytest.skip(f"Flink is not installed under {ENGINES_DIR} (mrs-jobs engines install flink)")
    report = _report(world, "flink.python")
    _check_files_report(world, report, "flink.python")


def test_no_secret_appears_in_any_answer_log_or_file_of_a(world: World) -> None:
    assert len(world.needles) >= 9, world.needles
    found: list[tuple[str, str]] = []

    def grep(what: str, text: bytes) -> None:
        for name, needle in world.needles.items():
            if needle.encode() in text:
                found.append((name, what))

    for what, text in world.a.seen:
        grep(f"API answer: {what}", text.encode())
    for job in world.jobs.values():
        for field_name in ("diagnostics", "properties", "arguments"):
            grep(f"{job.name} {field_name}", str(job.detail.get(field_name, "")).encode())
        if job.job_id:
            for path in files_under(world.data / "jobs" / job.job_id):
                grep(f"{job.name} file {path.name}", path.read_bytes())
    outputs = [world.base / f"{world.tag}-dcp-out", world.base / f"{world.tag}-mr-out"]
    for out in outputs:
        if out.exists():
            for path in files_under(out):
                grep(f"output {path}", path.read_bytes())
    assert not found, found
    # The greps look where secrets would be: the reports are there, and B's log had its row.
    assert any("HOSTILE-REPORT" in text for _, text in world.a.seen)
