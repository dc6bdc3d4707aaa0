"""Real engines survive a restart of the service, both ways (SIGTERM then start, kill -9 then
start), and end with their right answer; a killed or deleted job leaves no process.

Each way restarts the server once, with every case running at the same time (2 cores: one
restart per way, not one per job):

- a PySpark job whose two tasks are busy in Python workers (PySpark's worker daemon puts them
  in a process group of their own: the old reconciliation killed them),
- a PySpark driver that started ``setsid`` children (one keeps the job marker, one has an empty
  environment and a token in its argv) and keeps computing,
- a MapReduce job mid-map (Hadoop's local runner),
- an SQL job mid-query (its client, and the cluster's Thrift server that runs the query),
- a PySpark job with ``setsid`` children that is killed (SIGTERM way) or batch-deleted (kill -9
  way) by the restarted service: none of its processes may be left.

The busy tasks, the driver's loop and the mapper wait for a release file the test writes after
the restart, so the restart lands mid-work however long the engines took to start. Every check
of what is alive is a scan of /proc (the job's marker in the environment, a token in argv,
start times to tell a survivor from a new process), never by process names.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from huaweicloudsdkmrs.v2 import (
    BatchDeleteJobsRequest,
    JobBatchDelete,
    ShowSqlResultWithJobRequest,
    StopJobRequest,
)
from mrs_acceptance import (
    MRS_JOBS,
    STARTUP_TIMEOUT_S,
    STOP_TIMEOUT_S,
    TERMINAL,
    TIMINGS,
    RunningServer,
    expect_error,
    stop_server,
    wait_until,
)
from support_jobs import make_jar

from mrs_jobs.engines.java import find_java_home, find_spark_home
from mrs_jobs.engines.mapreduce import hadoop_jars

pytestmark = [pytest.mark.spark, pytest.mark.timeout(480)]

START_TIMEOUT_S = 240.0  # four engines and a Thrift server starting at once on 2 cores
END_TIMEOUT_S = 90.0
SQL_SLEEP_MS = 25_000  # the query's length: it must outlast the restart

BUSY_PY = """\
import os, sys, time
from pyspark.sql import SparkSession
work = sys.argv[1]
spark = SparkSession.builder.appName("survive-busy").getOrCreate()

def task(i):
    open(os.path.join(work, f"task-{i}"), "w").close()
    deadline = time.monotonic() + 240
    while not os.path.exists(os.path.join(work, "release")) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1)
    return i + 100

print("BUSY-SUM", spark.sparkContext.parallelize(range(2), 2).map(task).sum(), flush=True)
spark.stop()
"""

SETSID_PY = """\
import os, shutil, subprocess, sys, time
from pyspark.sql import SparkSession
work, token = sys.argv[1], sys.argv[2]
spark = SparkSession.builder.appName("survive-setsid").getOrCreate()
setsid = shutil.which("setsid") or "/usr/bin/setsid"
marked = subprocess.Popen([setsid, "sleep", "600"])
unmarked = subprocess.Popen(
    [setsid, sys.executable, "-c", "import time; time.sleep(600)", token], env={}
)
open(os.path.join(work, "children"), "w").close()
started, deadline, total = time.monotonic(), time.monotonic() + 240, None
while time.monotonic() < deadline:
    total = spark.range(0, 2_000_000).selectExpr("sum(id)").first()[0]
    if os.path.exists(os.path.join(work, "release")) and time.monotonic() - started > 15:
        break
    time.sleep(0.3)
codes = (marked.poll(), unmarked.poll())
print("SETSID-CHILDREN", "alive" if codes == (None, None) else f"ended {codes}", flush=True)
print("SETSID-SUM", total, flush=True)
spark.stop()
sys.exit(0 if codes == (None, None) else 3)
"""

GATED_COUNT_JAVA = """\
import java.io.File;
import java.io.IOException;
import java.util.StringTokenizer;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.io.IntWritable;
import org.apache.hadoop.io.LongWritable;
import org.apache.hadoop.io.Text;
import org.apache.hadoop.mapreduce.Job;
import org.apache.hadoop.mapreduce.Mapper;
import org.apache.hadoop.mapreduce.Reducer;
import org.apache.hadoop.mapreduce.lib.input.FileInputFormat;
import org.apache.hadoop.mapreduce.lib.output.FileOutputFormat;

public class GatedCount {
  public static class GatedMapper extends Mapper<LongWritable, Text, Text, IntWritable> {
    private static final IntWritable ONE = new IntWritable(1);
    private final Text word = new Text();
    private File release;
    protected void setup(Context c) throws IOException {
      new File(c.getConfiguration().get("gate.started")).createNewFile();
      release = new File(c.getConfiguration().get("gate.release"));
    }
    public void map(LongWritable key, Text value, Context context)
        throws IOException, InterruptedException {
      long deadline = System.currentTimeMillis() + 240000;
      do { Thread.sleep(100); }
      while (!release.exists() && System.currentTimeMillis() < deadline);
      StringTokenizer itr = new StringTokenizer(value.toString());
      while (itr.hasMoreTokens()) { word.set(itr.nextToken()); context.write(word, ONE); }
    }
  }
  public static class SumReducer extends Reducer<Text, IntWritable, Text, IntWritable> {
    public void reduce(Text key, Iterable<IntWritable> values, Context context)
        throws IOException, InterruptedException {
      int sum = 0;
      for (IntWritable v : values) sum += v.get();
      context.write(key, new IntWritable(sum));
    }
  }
  public static void main(String[] args) throws Exception {
    Configuration conf = new Configuration();
    conf.set("gate.started", args[2]);
    conf.set("gate.release", args[3]);
    Job job = Job.getInstance(conf, "gated count");
    job.setJarByClass(GatedCount.class);
    job.setMapperClass(GatedMapper.class);
    job.setReducerClass(SumReducer.class);
    job.setOutputKeyClass(Text.class);
    job.setOutputValueClass(IntWritable.class);
    FileInputFormat.addInputPath(job, new Path(args[0]));
    FileOutputFormat.setOutputPath(job, new Path(args[1]));
    System.exit(job.waitForCompletion(true) ? 0 : 1);
  }
}
"""

MR_INPUT = "alpha beta\nbeta gamma gamma\n" * 10
MR_COUNTS = {"alpha": "10", "beta": "20", "gamma": "20"}

SQL = (
    f"SELECT reflect('java.lang.Thread', 'sleep', cast({SQL_SLEEP_MS} as bigint)) AS slept;"
    " SELECT sum(id) AS total FROM range(1, 1001)"
)


# -- /proc ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Proc:
    pid: int
    ticks: int  # start time: a survivor keeps it, a new process with a recycled pid does not
    argv: tuple[bytes, ...]
    env: frozenset[bytes]


def _scan() -> list[Proc]:
    """Every live (non-zombie) process whose environment this user may read."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{name}/stat").read_bytes()
            env = Path(f"/proc/{name}/environ").read_bytes().split(b"\0")
            argv = Path(f"/proc/{name}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if fields[0] in (b"Z", b"X"):
            continue
        out.append(Proc(int(name), int(fields[19]), tuple(argv), frozenset(env)))
    return out


def _of_job(job_id: str, procs: list[Proc] | None = None) -> dict[int, int]:
    """pid -> start ticks of the processes carrying the job's marker."""
    marker = f"MRS_JOBS_JOB_ID={job_id}".encode()
    return {p.pid: p.ticks for p in procs or _scan() if marker in p.env}


def _with_token(token: str, procs: list[Proc] | None = None) -> dict[int, int]:
    """The marker-less ``setsid`` child: ``python -c <code> <token>`` (the driver's own argv
    names the token too, so the ``-c`` form is what identifies the child)."""
    wanted = token.encode()
    return {
        p.pid: p.ticks for p in procs or _scan() if p.argv[1:2] == (b"-c",) and wanted in p.argv
    }


def _sql_server(cluster_id: str, procs: list[Proc] | None = None) -> dict[int, int]:
    """The cluster's Thrift server processes (marked as a service, not as a job)."""
    suffix = f":{cluster_id}".encode()
    return {
        p.pid: p.ticks
        for p in procs or _scan()
        if any(e.startswith(b"MRS_JOBS_SERVICE=") and e.endswith(suffix) for e in p.env)
    }


def _stable(first: dict[int, int], second: dict[int, int]) -> dict[int, int]:
    """The processes present (same pid, same start) in both scans."""
    return {pid: ticks for pid, ticks in first.items() if second.get(pid) == ticks}


def _nothing_left(job_id: str, token: str | None) -> bool:
    procs = _scan()
    return not _of_job(job_id, procs) and not (token and _with_token(token, procs))


# -- the server -------------------------------------------------------------------------------


def _restart(server: RunningServer, how: str) -> float:
    """Stop the server (SIGTERM and wait, or SIGKILL) and start it on the same data dir.

    Returns once the new server answers /health; it reconciles before it prints its endpoint.
    """
    started = time.monotonic()
    if how == "sigterm":
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(STOP_TIMEOUT_S)
    else:
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(10)
    offset = server.stdout_path.stat().st_size
    with open(server.stdout_path, "ab") as out, open(server.stderr_path, "ab") as err:
        server.proc = subprocess.Popen(
            [str(MRS_JOBS), "serve"],
            env=server.env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )

    def up() -> str | None:
        assert server.proc.poll() is None, f"the server exited:\n{server.stderr()[-3000:]}"
        text = server.stdout_path.read_bytes()[offset:].decode(errors="replace")
        marker = "mrs-jobs is running at"
        if marker not in text:
            return None
        endpoint = text.split(marker, 1)[1].split()[0]
        try:
            ok = httpx.get(f"{endpoint}/health", timeout=1.0).status_code == 200
        except httpx.TransportError:
            ok = False
        return endpoint if ok else None

    server.boot["endpoint"] = wait_until("the restarted server", up, STARTUP_TIMEOUT_S, 0.05)
    return time.monotonic() - started


# -- the jobs ---------------------------------------------------------------------------------


@dataclass
class Case:
    job_id: str
    work: Path  # under the test temp root: the cluster's output root, so the job may write
    token: str | None = None

    def release(self) -> None:
        (self.work / "release").touch()


@pytest.fixture(scope="module", autouse=True)
def _no_sql_server_left(server: RunningServer) -> Iterator[None]:
    """A server stopped with a live SQL job (a failed test) leaves the cluster's Thrift server
    running, by design: end it with the module."""
    yield
    stop_server(server)
    for pid in _sql_server(server.cluster_id):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


@pytest.fixture(scope="module")
def programs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The two PySpark scripts and the gated MapReduce jar (compiled with javac now)."""
    d = tmp_path_factory.mktemp("programs")
    (d / "busy.py").write_text(BUSY_PY)
    (d / "setsid.py").write_text(SETSID_PY)
    javac = Path(find_java_home() or "/usr") / "bin" / "javac"
    if not javac.exists():
        pytest.skip("no javac")
    api = hadoop_jars(Path(find_spark_home()) / "jars")["hadoop-client-api"]
    src, classes = d / "src", d / "classes"
    src.mkdir()
    (src / "GatedCount.java").write_text(GATED_COUNT_JAVA)
    subprocess.run(
        [str(javac), "-nowarn", "-d", str(classes), "-cp", str(api), str(src / "GatedCount.java")],
        check=True,
        capture_output=True,
        timeout=120,
    )
    make_jar(
        d / "gated.jar",
        {str(p.relative_to(classes)): p.read_bytes() for p in classes.rglob("*.class")},
    )
    return d


def _submit_all(server: RunningServer, programs: Path, root: Path, how: str) -> dict[str, Case]:
    cases: dict[str, Case] = {}

    def work(name: str) -> Path:
        path = root / name
        path.mkdir()
        return path

    w = work("busy")
    cases["busy"] = Case(server.submit([str(programs / "busy.py"), str(w)], "busy"), w)
    for name in ("setsid", "doomed"):
        w, token = work(name), f"survive-{how}-{name}-{os.urandom(6).hex()}"
        job_id = server.submit([str(programs / "setsid.py"), str(w), token], name)
        cases[name] = Case(job_id, w, token)
    w = work("mapreduce")
    (w / "in").mkdir()
    (w / "in" / "words.txt").write_text(MR_INPUT)
    args = [str(w / p) for p in ("in", "out", "started", "release")]
    job_id = server.submit(
        [str(programs / "gated.jar"), "GatedCount", *args], "mapreduce", job_type="MapReduce"
    )
    cases["mapreduce"] = Case(job_id, w)
    # Starts the cluster's Thrift server (cold: ~10-20 s) while the others start; the slow
    # query itself is submitted once they are all mid-work, so that it is mid-query then.
    cases["warm-up"] = Case(server.submit(["SELECT 1"], "warm-up", job_type="SparkSql"), root)
    return cases


def _mid_work(server: RunningServer, cases: dict[str, Case]) -> list[str]:
    """The cases not yet where the restart must find them (tasks busy, children up, map
    running), or not RUNNING as far as the service knows."""
    procs = _scan()
    ready = {
        "busy": all((cases["busy"].work / f"task-{i}").exists() for i in range(2)),
        "setsid": (cases["setsid"].work / "children").exists()
        and bool(_with_token(cases["setsid"].token or "", procs)),
        "doomed": (cases["doomed"].work / "children").exists()
        and bool(_with_token(cases["doomed"].token or "", procs)),
        "mapreduce": (cases["mapreduce"].work / "started").exists(),
    }
    return [
        n
        for n, ok in ready.items()
        if not ok or server.show(cases[n].job_id).job_state != "RUNNING"
    ]


def _mid_query(server: RunningServer, case: Case) -> bool:
    log = server.job_dir(case.job_id) / "stderr.log"
    return log.exists() and "statement 0:" in log.read_text(errors="replace")


def _wait_for(what: str, missing: Callable[[], list[str]], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while left := missing():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}: not yet {left}")
        time.sleep(0.5)


def _sql_done(server: RunningServer, case: Case) -> bool:
    return "statement 0 done" in (server.job_dir(case.job_id) / "stderr.log").read_text()


def _results(server: RunningServer, job_id: str) -> dict:
    resp = server.client().show_sql_result_with_job(
        ShowSqlResultWithJobRequest(cluster_id=server.cluster_id, job_execution_id=job_id)
    )
    return resp.to_json_object()["sql_results"]


# -- the test ---------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_running_jobs_survive_a_restart_and_end_right(
    server: RunningServer,
    programs: Path,
    tmp_path_factory: pytest.TempPathFactory,
    how: str,
) -> None:
    submitted = time.monotonic()
    cases = _submit_all(server, programs, tmp_path_factory.mktemp(f"survive-{how}"), how)
    try:
        _wait_for("every case mid-work", lambda: _mid_work(server, cases), START_TIMEOUT_S)
        TIMINGS[f"{how}: submit -> busy, setsid, doomed, MapReduce jobs mid-work"] = (
            time.monotonic() - submitted
        )
        warm_up = cases.pop("warm-up")
        sql_at = time.monotonic()
        cases["sql"] = Case(server.submit([SQL], "sql", job_type="SparkSql"), warm_up.work)
        wait_until("the query to run", lambda: _mid_query(server, cases["sql"]), 60, 0.2)
        server.wait_state(cases["sql"].job_id, {"RUNNING"}, 30)
        TIMINGS[f"{how}: SQL submit -> mid-query"] = time.monotonic() - sql_at
        warm = server.wait_state(warm_up.job_id, TERMINAL, 30)
        assert warm.job_result == "SUCCEEDED"

        procs = _scan()
        before = {name: _of_job(c.job_id, procs) for name, c in cases.items()}
        tokens = {name: _with_token(c.token, procs) for name, c in cases.items() if c.token}
        # The server's own processes, not a helper it runs for a moment (Hadoop's group
        # lookup starts `bash -c id` as a session opens): those seen in two scans apart.
        time.sleep(1.0)
        sql_server = _stable(_sql_server(server.cluster_id, procs), _sql_server(server.cluster_id))
        assert sql_server, "no Thrift server process found for the cluster"
        assert len(before["busy"]) >= 6, before["busy"]  # shim, box, JVM, driver, 2 workers
        assert not _sql_done(server, cases["sql"]), "the query ended before the restart"

        TIMINGS[f"{how}: restart -> /health answering"] = _restart(server, how)
        time.sleep(1.0)  # the new supervisor's first passes
        assert not _sql_done(server, cases["sql"]), "the restart did not land mid-query"

        # Every process of every live job survived, the same process (same start time).
        procs = _scan()
        for name, case in cases.items():
            after = _of_job(case.job_id, procs)
            lost = {p for p, t in before[name].items() if after.get(p) != t}
            assert not lost, f"{name}: processes {sorted(lost)} did not survive the restart"
            if case.token:
                assert tokens[name].items() <= _with_token(case.token, procs).items(), name
        assert sql_server.items() <= _sql_server(server.cluster_id, procs).items()
        for case in cases.values():
            assert server.show(case.job_id).job_state == "RUNNING"

        # A re-attached job is killed (or deleted) whole: setsid children and all.
        doomed = cases["doomed"]
        ended_at = time.monotonic()
        if how == "sigterm":
            server.client().stop_job(
                StopJobRequest(cluster_id=server.cluster_id, job_execution_id=doomed.job_id)
            )
            assert server.wait_state(doomed.job_id, {"KILLED"}, 30).job_result == "KILLED"
        else:
            server.client().batch_delete_jobs(
                BatchDeleteJobsRequest(
                    cluster_id=server.cluster_id, body=JobBatchDelete([doomed.job_id])
                )
            )
            expect_error(lambda: server.show(doomed.job_id), 400, "0176")
        wait_until(
            f"no process of the {'killed' if how == 'sigterm' else 'deleted'} job",
            lambda: _nothing_left(doomed.job_id, doomed.token),
            20,
        )
        TIMINGS[f"{how}: {'kill' if how == 'sigterm' else 'batch delete'} -> no process"] = (
            time.monotonic() - ended_at
        )

        released = time.monotonic()
        for name in ("busy", "setsid", "mapreduce"):
            cases[name].release()
        details = {
            name: server.wait_state(cases[name].job_id, TERMINAL, END_TIMEOUT_S)
            for name in ("busy", "setsid", "mapreduce", "sql")
        }
        TIMINGS[f"{how}: release -> all four FINISHED"] = time.monotonic() - released
    finally:
        for case in cases.values():
            case.release()

    for name, detail in details.items():
        assert (detail.job_state, detail.job_result) == ("FINISHED", "SUCCEEDED"), (
            name,
            detail.job_state,
            detail.job_result,
            server._tail(cases[name].job_id),
        )

    def stdout(name: str) -> str:
        return (server.job_dir(cases[name].job_id) / "stdout.log").read_text(errors="replace")

    assert "BUSY-SUM 201" in stdout("busy")
    assert "SETSID-CHILDREN alive" in stdout("setsid")  # they survived the restart too
    assert f"SETSID-SUM {sum(range(2_000_000))}" in stdout("setsid")
    out = cases["mapreduce"].work / "out" / "part-r-00000"
    assert dict(line.split("\t") for line in out.read_text().splitlines()) == MR_COUNTS
    assert _results(server, cases["sql"].job_id) == {
        "0": [{"slept": "null"}],
        "1": [{"total": "500500"}],
    }

    # The setsid children ended with their job (the box), whatever their session or env.
    setsid = cases["setsid"]
    wait_until(
        "no process of the setsid job", lambda: _nothing_left(setsid.job_id, setsid.token), 15
    )
    log = server.stderr()
    for name in ("busy", "setsid", "mapreduce", "sql"):
        assert f"supervisor.orphan_killed job_id={cases[name].job_id}" not in log, name
