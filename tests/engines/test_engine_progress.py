"""Each engine's progress is a count of its own work (Spark: test_spark_events.py); what the
supervisor stores of it is 0-99 while the job runs (supervisor/observe.py running_progress)."""

from __future__ import annotations

from mrs_jobs.engines.distcp import progress_from
from mrs_jobs.engines.flink_rest import progress_of_job
from mrs_jobs.engines.hadoop import parse_hadoop_log
from mrs_jobs.runtime.jobdir import SqlProgress
from mrs_jobs.supervisor.observe import running_progress

# What the Hadoop client prints for a job run by the local runner (one line a second).
HADOOP = """\
26/11/29 21:39:21 INFO Job: Running job: job_local1668870876_0001
26/11/29 21:39:22 INFO Job:  map 0% reduce 0%
26/11/29 21:39:25 INFO Job:  map 60% reduce 0%
26/11/29 21:39:27 INFO Job:  map 100% reduce 0%
26/11/29 21:39:29 INFO Job:  map 100% reduce 50%
"""


def test_mapreduce_is_map_and_reduce_progress() -> None:
    lines = HADOOP.splitlines(keepends=True)
    seen = [parse_hadoop_log("".join(lines[: n + 1]))[1] for n in range(len(lines))]
    assert seen == [None, 0.0, 30.0, 50.0, 75.0]
    # a second job of the same program: its own progress is not known yet, so nothing is said
    # (the stored value stays; it is never lowered to the new job's 0 %)
    second = HADOOP + "INFO Job: Running job: job_local1668870876_0002\n"
    assert parse_hadoop_log(second)[:2] == ("job_local1668870876_0002", None)


def test_flink_is_finished_subtasks_over_all() -> None:
    detail = {
        "vertices": [
            {"parallelism": 4, "tasks": {"FINISHED": 4, "RUNNING": 0}},
            {"parallelism": 4, "tasks": {"FINISHED": 1, "RUNNING": 3}},
        ]
    }
    assert progress_of_job(detail) == 62.5


def test_distcp_is_bytes_copied_then_files() -> None:
    assert progress_from({"bytes_total": 400, "bytes_done": 100, "files_total": 2}) == 25.0
    assert progress_from({"files_total": 8, "files_done": 2}) == 25.0  # empty files only
    assert progress_from({"phase": "listing"}) == 0.0


def test_sql_is_statements_done() -> None:
    assert SqlProgress(done=1, total=4).percent == 25.0
    assert running_progress(SqlProgress(done=4, total=4).percent) == 99.0  # 100: succeeded only
