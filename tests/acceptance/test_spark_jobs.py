"""Real Spark runs through the official SDK: success, failure, a jar, kill and batch delete.

Runs are kept few and overlapped (one server for the module, 2 cores): the small PySpark job
runs alone so its end-to-end time means something, then the failing script and the jar run
together, then the two long jobs (one killed, one batch-deleted) together.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from huaweicloudsdkmrs.v2 import (
    BatchDeleteJobsRequest,
    JobBatchDelete,
    ShowJobExeListNewRequest,
    ShowSqlResultWithJobRequest,
    StopJobRequest,
)
from mrs_acceptance import (
    TERMINAL,
    TIMINGS,
    RunningServer,
    expect_error,
    group_members,
    marked_processes,
    wait_until,
)

pytestmark = pytest.mark.spark

JOB_TIMEOUT_S = 90.0
TRICKY_ARG = "a b;$(echo injected) 'q' \"dq\" *"

SMALL_PY = """\
import json, sys
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("acceptance-small").getOrCreate()
total = spark.sparkContext.parallelize(range(1, 1001), 4).sum()
print("SMALL-RESULT", total)
print("ARGV", json.dumps(sys.argv[1:]))
spark.stop()
"""

BOOM = f"boom-{uuid.uuid4().hex[:8]}"  # the failing job's own words, new each run
FAILING_PY = f"""\
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("acceptance-failing").getOrCreate()
spark.sparkContext.parallelize(range(10), 2).count()
raise ValueError("{BOOM}")
"""

# Each task leaves a marker file once it runs in a Python worker, then sleeps for two minutes.
LONG_PY = """\
import os, sys, time
from pyspark.sql import SparkSession
marker_dir = sys.argv[1]
spark = SparkSession.builder.appName("acceptance-long").getOrCreate()

def task(i):
    open(os.path.join(marker_dir, f"task-{i}"), "w").close()
    time.sleep(120)
    return i

spark.sparkContext.parallelize(range(2), 2).map(task).collect()
print("LONG-DONE")
"""

SUM_JAVA = """\
import org.apache.spark.sql.SparkSession;

public class SumApp {
    public static void main(String[] args) {
        SparkSession spark = SparkSession.builder().appName("acceptance-jar").getOrCreate();
        long n = Long.parseLong(args[0]);
        long sum = spark.range(1, n + 1).selectExpr("sum(id)").first().getLong(0);
        System.out.println("JAR-RESULT " + sum);
        spark.stop();
    }
}
"""


@dataclass
class SmallRun:
    job_id: str
    detail: object
    script: Path
    submitted_after_ms: int


@dataclass
class LongJob:
    job_id: str
    markers: Path


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _assert_finished_ok(detail, started_before_ms: int) -> None:  # type: ignore[no-untyped-def]
    assert (detail.job_state, detail.job_result) == ("FINISHED", "SUCCEEDED")
    assert detail.app_id.startswith("local-"), detail.app_id
    assert detail.job_progress == 100
    for name in ("submitted_time", "started_time", "finished_time", "elapsed_time"):
        value = getattr(detail, name)
        assert isinstance(value, int) and value > 0, (name, value)
    assert detail.submitted_time >= started_before_ms
    assert detail.submitted_time <= detail.started_time <= detail.finished_time
    assert detail.elapsed_time == detail.finished_time - detail.started_time


def _wait_tasks_running(server: RunningServer, job: LongJob) -> None:
    server.wait_state(job.job_id, {"RUNNING"}, JOB_TIMEOUT_S)
    wait_until(
        f"both tasks of {job.job_id} to run",
        lambda: len(list(job.markers.iterdir())) == 2,
        JOB_TIMEOUT_S,
        0.2,
    )


def _run_tree(server: RunningServer, job_id: str) -> tuple[int, dict[int, int]]:
    """The run's group leader from the store, and every live process marked with the job id."""
    pgid = server.store_pid(job_id)
    assert pgid, f"no pid recorded for {job_id}"
    marked = marked_processes(job_id)
    assert pgid in marked, f"the recorded leader {pgid} is not a process of {job_id}: {marked}"
    assert marked[pgid] == pgid, "the shim leads its own process group"
    return pgid, marked


def _assert_tree_gone(job_id: str, pgid: int, marked: dict[int, int], timeout: float) -> None:
    def gone() -> bool:
        return not group_members(pgid) and not marked_processes(job_id)

    wait_until(
        f"every process of {job_id} (group {pgid}, marked {sorted(marked)}) to exit",
        gone,
        timeout,
    )


# -- fixtures: few runs, overlapped -----------------------------------------------------------


@pytest.fixture(scope="module")
def scripts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("scripts")
    _write(d / "small.py", SMALL_PY)
    _write(d / "failing.py", FAILING_PY)
    _write(d / "long.py", LONG_PY)
    return d


@pytest.fixture(scope="module")
def small_job(server: RunningServer, scripts: Path) -> SmallRun:
    """The small PySpark job, run alone and timed from submit to FINISHED seen via the SDK."""
    script = scripts / "small.py"
    before_ms = time.time_ns() // 1_000_000
    started = time.monotonic()
    job_id = server.submit([str(script), TRICKY_ARG], "small")
    detail = server.wait_state(job_id, TERMINAL, JOB_TIMEOUT_S)
    TIMINGS["small PySpark job, submit -> FINISHED seen by the SDK"] = time.monotonic() - started
    return SmallRun(job_id, detail, script, before_ms)


@pytest.fixture(scope="module")
def sum_jar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SumApp compiled now with javac against the Spark jars of the pyspark package."""
    import pyspark

    jars = Path(pyspark.__file__).parent / "jars"
    d = tmp_path_factory.mktemp("jar")
    src = _write(d / "SumApp.java", SUM_JAVA)
    classes = d / "classes"
    classes.mkdir()
    started = time.monotonic()
    subprocess.run(
        ["javac", "-nowarn", "-cp", f"{jars}/*", "-d", str(classes), str(src)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    TIMINGS["javac SumApp.java"] = time.monotonic() - started
    jar = d / "sum-app.jar"
    with zipfile.ZipFile(jar, "w") as zf:
        for f in classes.rglob("*.class"):
            zf.write(f, f.relative_to(classes).as_posix())
    return jar


@pytest.fixture(scope="module")
def pair_jobs(server: RunningServer, scripts: Path, sum_jar: Path) -> dict[str, str]:
    """The failing script and the jar, running side by side."""
    return {
        "failing": server.submit([str(scripts / "failing.py")], "failing"),
        "jar": server.submit(["--class", "SumApp", str(sum_jar), "100"], "jar"),
    }


@pytest.fixture(scope="module")
def long_jobs(
    server: RunningServer, scripts: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, LongJob]:
    """Two two-minute PySpark jobs, running side by side: one to kill, one to batch-delete."""
    jobs = {}
    for name in ("to-kill", "to-delete"):
        markers = tmp_path_factory.mktemp(name)
        job_id = server.submit([str(scripts / "long.py"), str(markers)], name)
        jobs[name] = LongJob(job_id, markers)
    return jobs


# -- tests ------------------------------------------------------------------------------------


def test_small_pyspark_job_succeeds(server: RunningServer, small_job: SmallRun) -> None:
    job_id, detail = small_job.job_id, small_job.detail
    _assert_finished_ok(detail, small_job.submitted_after_ms)
    assert detail.job_type == "SparkSubmit" and detail.job_name == "small"
    assert detail.user == "admin" and detail.queue == "default"
    assert detail.arguments == f"[{small_job.script}, {TRICKY_ARG}]"
    stdout = (server.job_dir(job_id) / "stdout.log").read_text()
    assert "SMALL-RESULT 500500" in stdout
    # Passed as an argv vector, never through a shell.
    assert "ARGV " + json.dumps([TRICKY_ARG]) in stdout
    # Ended jobs: kill is 0175, sql-result is 0179 for a SparkSubmit job.
    client = server.client()
    expect_error(
        lambda: client.stop_job(
            StopJobRequest(cluster_id=server.cluster_id, job_execution_id=job_id)
        ),
        400,
        "0175",
    )
    expect_error(
        lambda: client.show_sql_result_with_job(
            ShowSqlResultWithJobRequest(cluster_id=server.cluster_id, job_execution_id=job_id)
        ),
        400,
        "0179",
    )


def _history_link(server: RunningServer, app_id: str) -> Path:
    """Where an ended local job's event log is kept for its cluster's history server."""
    return server.data_dir / "clusters" / server.cluster_id / "spark-history" / "logs" / app_id


def test_an_ended_job_links_to_its_history_page(server: RunningServer, small_job: SmallRun) -> None:
    """The driver's UI died with the job; its tracking_url now leads to the cluster's Spark
    History Server (started by this request), whose page names the application."""
    detail = server.show(small_job.job_id)
    app_id = detail.app_id
    assert app_id.startswith("local-"), app_id
    assert detail.tracking_url == f"{server.endpoint}/spark-history/{server.cluster_id}/{app_id}"
    assert _history_link(server, app_id).is_file()
    started = time.monotonic()

    def page() -> httpx.Response | None:  # 503 + Retry-After while the server starts
        r = httpx.get(detail.tracking_url, follow_redirects=True, timeout=90)
        return r if r.status_code == 200 else None

    r = wait_until("the job's history page", page, timeout=180, interval=2)
    TIMINGS["history page of an ended job, first GET -> 200"] = time.monotonic() - started
    assert r.url.path == f"/history/{app_id}/jobs/"
    assert app_id in r.text and "acceptance-small" in r.text


def test_failing_pyspark_job_ends_failed(server: RunningServer, pair_jobs: dict[str, str]) -> None:
    job_id = pair_jobs["failing"]
    detail = server.wait_state(job_id, TERMINAL, JOB_TIMEOUT_S)
    assert detail.job_state in ("FINISHED", "FAILED")
    assert detail.job_result == "FAILED"
    assert detail.finished_time > 0
    assert detail.app_id.startswith("local-"), detail.app_id
    # spark-submit merges the Python driver's stderr into its stdout (PythonRunner), so the
    # traceback is in stdout.log; look in both logs.
    logs = "".join((server.job_dir(job_id) / f).read_text() for f in ("stdout.log", "stderr.log"))
    assert f"ValueError: {BOOM}" in logs
    # diagnostics say why, in the driver's own words (SDK, CLI show and wait)
    server.assert_diagnosed(job_id, "the engine exited with code 1", f"ValueError: {BOOM}")


def test_jar_with_class_succeeds(server: RunningServer, pair_jobs: dict[str, str]) -> None:
    job_id = pair_jobs["jar"]
    before_ms = server.show(job_id).submitted_time
    detail = server.wait_state(job_id, TERMINAL, JOB_TIMEOUT_S)
    _assert_finished_ok(detail, before_ms)
    assert "JAR-RESULT 5050" in (server.job_dir(job_id) / "stdout.log").read_text()


def test_kill_a_running_pyspark_job(server: RunningServer, long_jobs: dict[str, LongJob]) -> None:
    job = long_jobs["to-kill"]
    _wait_tasks_running(server, job)
    pgid, marked = _run_tree(server, job.job_id)
    assert len(marked) >= 3, f"expected shim, JVM and Python workers: {marked}"

    client = server.client()
    request = StopJobRequest(cluster_id=server.cluster_id, job_execution_id=job.job_id)
    killed_at = time.monotonic()
    client.stop_job(request)
    detail = server.wait_state(job.job_id, {"KILLED"}, 30)
    TIMINGS["kill of a running PySpark job, stop_job -> KILLED"] = time.monotonic() - killed_at
    assert detail.job_result == "KILLED"
    assert detail.finished_time >= detail.started_time > 0
    _assert_tree_gone(job.job_id, pgid, marked, timeout=5)
    client.stop_job(request)  # killing a KILLED job again: 202, nothing happens
    assert server.show(job.job_id).job_state == "KILLED"


def test_batch_delete_finished_and_running_jobs(
    server: RunningServer, small_job: SmallRun, long_jobs: dict[str, LongJob]
) -> None:
    finished_id = small_job.job_id
    finished_app = server.show(finished_id).app_id
    job = long_jobs["to-delete"]
    _wait_tasks_running(server, job)
    pgid, marked = _run_tree(server, job.job_id)
    client = server.client()

    def delete(ids: list[str]) -> None:
        client.batch_delete_jobs(
            BatchDeleteJobsRequest(cluster_id=server.cluster_id, body=JobBatchDelete(ids))
        )

    # All or nothing: an unknown id refuses the whole list.
    missing = str(uuid.uuid4())
    expect_error(lambda: delete([finished_id, job.job_id, missing]), 400, "0176")
    assert server.show(finished_id).job_state == "FINISHED"
    assert server.show(job.job_id).job_state == "RUNNING"
    assert marked_processes(job.job_id)

    delete([finished_id, job.job_id, job.job_id])  # repeated ids count once
    deleted_at = time.monotonic()
    for job_id in (finished_id, job.job_id):
        expect_error(lambda j=job_id: server.show(j), 400, "0176")
        expect_error(
            lambda j=job_id: client.stop_job(
                StopJobRequest(cluster_id=server.cluster_id, job_execution_id=j)
            ),
            400,
            "0176",
        )
        resp = client.show_job_exe_list_new(
            ShowJobExeListNewRequest(cluster_id=server.cluster_id, job_id=job_id)
        )
        assert (resp.total_record, resp.job_list) == (0, [])

    _assert_tree_gone(job.job_id, pgid, marked, timeout=10)
    TIMINGS["batch delete of a running PySpark job -> processes gone"] = (
        time.monotonic() - deleted_at
    )
    wait_until(
        "the deleted jobs' directories to be removed",
        lambda: not server.job_dir(job.job_id).exists()
        and not server.job_dir(finished_id).exists(),
        timeout=15,
    )
    # the finished job's event log went too: the one kept for the history server as well
    assert not _history_link(server, finished_app).exists()


def test_a_missing_app_file_is_named_in_diagnostics(server: RunningServer, tmp_path: Path) -> None:
    """Accepted at submit (a job may be queued behind the one that writes it), refused at
    launch with the file named: not only in a log."""
    missing = tmp_path / f"nope-{uuid.uuid4().hex[:6]}.py"
    job_id = server.submit([str(missing)], name="missing")
    assert server.wait_state(job_id, TERMINAL, JOB_TIMEOUT_S).job_result == "FAILED"
    server.assert_diagnosed(job_id, f"not found: {missing}")
