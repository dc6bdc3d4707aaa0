"""Progress moves between 0 and 100 while a longer Spark job runs (read through the SDK), and
tells the truth: the share of a job's tasks done, never lower than before, kept when killed."""

from __future__ import annotations

import time

import pytest
from huaweicloudsdkmrs.v2 import StopJobRequest
from mrs_acceptance import TERMINAL, RunningServer

pytestmark = pytest.mark.spark

SCRIPT = """
import time
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("progress").getOrCreate()
def slow(x):
    time.sleep(1.5)
    return x
print("total", spark.sparkContext.parallelize(range(12), 12).map(slow).sum())
"""


def test_progress_moves_while_running(server, tmp_path) -> None:
    script = tmp_path / "progress.py"
    script.write_text(SCRIPT)
    job_id = server.submit([str(script)], name="progress")
    seen: list[float] = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        detail = server.show(job_id)
        seen.append(detail.job_progress)
        if detail.job_state in ("FINISHED", "FAILED", "KILLED"):
            break
        time.sleep(0.3)
    assert detail.job_result == "SUCCEEDED", detail
    assert seen[-1] == 100
    between = [p for p in seen if 0 < p < 100]
    assert between, seen
    assert between == sorted(between)  # never goes backwards


# As most applications do, a small job first (reading a schema, say) and some work on the
# driver; then 400 equal tasks, one at a time whatever local[N] is (they take turns on a lock).
# Each marks its end with a byte in a file of the job's directory: the real share done.
TASKS_SCRIPT = """
import fcntl, os, time
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("progress-400").getOrCreate()
here = os.getcwd()
lock, marks = os.path.join(here, "tasks.lock"), os.path.join(here, "tasks-done")
def step(x):
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        time.sleep(0.05)
        with open(marks, "ab") as f:
            f.write(b".")
    return x
sc = spark.sparkContext
print("first", sc.parallelize([1], 1).count())
time.sleep(3)
print("count", sc.parallelize(range(400), 400).map(step).count())
"""
TASKS = 400


def _real_share(server: RunningServer, job_id: str) -> float:
    try:
        return 100.0 * (server.job_dir(job_id) / "tasks-done").stat().st_size / TASKS
    except FileNotFoundError:
        return 0.0


def test_progress_is_the_share_of_tasks_done_and_kept_when_killed(
    server: RunningServer, tmp_path
) -> None:
    script = tmp_path / "tasks400.py"
    script.write_text(TASKS_SCRIPT)
    job_id = server.submit([str(script)], name="progress-400")
    samples: list[tuple[float, float]] = []  # (real share, progress shown) while running
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        real = _real_share(server, job_id)
        detail = server.show(job_id)
        assert detail.job_state not in TERMINAL, (detail, samples[-5:])
        if detail.job_state == "RUNNING":
            samples.append((real, detail.job_progress))
        if real >= 85:
            break
        time.sleep(0.2)
    shown = [p for _, p in samples]
    assert shown == sorted(shown), samples  # never goes down
    for target in (25, 50, 75):
        real, progress = next((r, p) for r, p in samples if r >= target)
        assert abs(progress - real) <= 10, (target, real, progress, samples)

    server.client().stop_job(StopJobRequest(cluster_id=server.cluster_id, job_execution_id=job_id))
    before_kill = shown[-1]
    while True:
        detail = server.show(job_id)
        if detail.job_state in TERMINAL:
            break
        shown.append(detail.job_progress)
        assert time.monotonic() < deadline + 30, detail
        time.sleep(0.1)
    assert (detail.job_state, detail.job_result) == ("KILLED", "KILLED")
    # the last value of its run, true to the tasks done (not 99, nor 0, nor 100)
    final, real = detail.job_progress, _real_share(server, job_id)
    assert max(shown) <= final and before_kill >= 60, (final, samples[-5:], shown[-5:])
    assert abs(final - real) <= 10 and final < 99, (final, real)
