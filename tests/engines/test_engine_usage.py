"""Each engine's ``usage`` hook: what the shim measured where the job's work ran in its own
processes, Usage() (unknown) where it ran elsewhere and the engine's API tells nothing."""

from __future__ import annotations

from pathlib import Path

from mrs_jobs.engines.base import JobSpec, LaunchSpec, Usage
from mrs_jobs.engines.flink import FlinkEngine
from mrs_jobs.engines.spark import SparkSubmitEngine
from mrs_jobs.engines.sql import SqlEngine
from mrs_jobs.runtime import jobdir

LOCAL = Usage(cpu_seconds=4.5, peak_memory_mb=600)


def _spark(tmp_path: Path, kind: str) -> Usage:
    jobdir.write_engine_record(tmp_path, "spark", kind=kind)
    job = JobSpec("j-1", "SparkSubmit", "pi", ["/x.py"], {})
    launch = LaunchSpec(argv=["spark-submit"], env={}, cwd=str(tmp_path))
    return SparkSubmitEngine().usage(job, tmp_path, launch, None, None, LOCAL)


def test_spark_on_a_local_master_keeps_the_measured_processes(tmp_path: Path) -> None:
    assert _spark(tmp_path, "local") == LOCAL


def test_spark_on_standalone_or_kubernetes_is_unknown(tmp_path: Path) -> None:
    for kind in ("spark-standalone", "k8s"):
        workdir = tmp_path / kind
        workdir.mkdir()
        assert _spark(workdir, kind) == Usage()


def test_flink_local_is_measured_remote_is_unknown(tmp_path: Path) -> None:
    job = JobSpec("j-2", "Flink", "wc", [], {})
    local = LaunchSpec(argv=["flink", "run", "-t", "local"], env={}, cwd=str(tmp_path))
    assert FlinkEngine().usage(job, tmp_path, local, None, None, LOCAL) == LOCAL
    remote = LaunchSpec(
        argv=["flink", "run", "-t", "remote", "-m", "jm.example:8081"], env={}, cwd=str(tmp_path)
    )
    assert FlinkEngine().usage(job, tmp_path, remote, None, None, LOCAL) == Usage()


def test_sql_jobs_are_unknown(tmp_path: Path) -> None:
    engine = SqlEngine.__new__(SqlEngine)  # no servers needed to answer this
    job = JobSpec("j-3", "SparkSql", "q", [], {})
    launch = LaunchSpec(argv=["python"], env={}, cwd=str(tmp_path))
    assert engine.usage(job, tmp_path, launch, None, None, LOCAL) == Usage()
