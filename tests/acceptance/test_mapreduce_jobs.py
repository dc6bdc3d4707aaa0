"""MapReduce through the official SDK: WordCount in Hadoop's local runner, a broken run, a kill."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from huaweicloudsdkmrs.v2 import StopJobRequest
from mrs_acceptance import marked_processes, wait_until
from support_jobs import build_wordcount_jar

from mrs_jobs.engines.java import find_java_home, find_spark_home
from mrs_jobs.engines.mapreduce import hadoop_jars

pytestmark = pytest.mark.spark
DONE = frozenset({"FINISHED", "FAILED", "KILLED"})


@pytest.fixture(scope="module")
def wc_jar(tmp_path_factory) -> Path:
    javac = Path(find_java_home() or "/usr") / "bin" / "javac"
    if not javac.exists() or shutil.which(str(javac)) is None:
        pytest.skip("no javac")
    jars = hadoop_jars(Path(find_spark_home()) / "jars")
    return build_wordcount_jar(
        tmp_path_factory.mktemp("wc"), str(javac), str(jars["hadoop-client-api"])
    )


def test_wordcount_runs_and_counts(server, wc_jar, tmp_path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.txt").write_text("to be or not to be\n")
    (src / "b.txt").write_text("be quick\n")
    out = tmp_path / "out"
    job_id = server.submit(
        [str(wc_jar), "WordCount", str(src), str(out)], name="wc", job_type="MapReduce"
    )
    detail = server.wait_state(job_id, DONE, 120)
    assert (detail.job_state, detail.job_result) == ("FINISHED", "SUCCEEDED")
    assert detail.app_id.startswith("job_local") and detail.job_progress == 100
    counts = dict(line.split("\t") for line in (out / "part-r-00000").read_text().splitlines())
    assert counts == {"be": "3", "not": "1", "or": "1", "quick": "1", "to": "2"}


def test_broken_wordcount_fails_with_cause_in_log(server, wc_jar, tmp_path) -> None:
    job_id = server.submit(
        [str(wc_jar), "WordCount", str(tmp_path / "missing"), str(tmp_path / "out2")],
        name="wcbad",
        job_type="MapReduce",
    )
    detail = server.wait_state(job_id, DONE, 120)
    assert detail.job_result == "FAILED"
    log = (server.job_dir(job_id) / "stderr.log").read_text()
    assert "Input path does not exist" in log
    server.assert_diagnosed(job_id, f"Input path does not exist: file:{tmp_path / 'missing'}")


def test_kill_a_slow_mapreduce_job(server, wc_jar, tmp_path) -> None:
    src = tmp_path / "slow"
    src.mkdir()
    (src / "a.txt").write_text("x\n" * 200)
    job_id = server.submit(
        [str(wc_jar), "WordCount", str(src), str(tmp_path / "o3")],
        name="wcslow",
        job_type="MapReduce",
        properties={"wc.sleep.ms": "1000"},
    )
    server.wait_state(job_id, {"RUNNING"}, 60)
    server.client().stop_job(StopJobRequest(cluster_id=server.cluster_id, job_execution_id=job_id))
    assert server.wait_state(job_id, {"KILLED"}, 30).job_result == "KILLED"
    wait_until("the MapReduce JVM to be gone", lambda: not marked_processes(job_id), 10)
