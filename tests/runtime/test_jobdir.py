"""The job directory's files (runtime/jobdir.py): the private writer, typed records, and the
secret files each engine declares being dropped when its job ends."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from mrs_jobs.engines.distcp import DistCpEngine
from mrs_jobs.engines.flink import FlinkEngine
from mrs_jobs.engines.mapreduce import MapReduceEngine
from mrs_jobs.engines.spark import SparkSubmitEngine
from mrs_jobs.engines.sql import SqlEngine
from mrs_jobs.engines.thrift import ThriftServers
from mrs_jobs.runtime import jobdir
from mrs_jobs.runtime.launch import LaunchSpec
from mrs_jobs.supervisor.jobfiles import drop_secret_files


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_private_file_is_0600_whatever_the_umask_or_an_older_file(tmp_path: Path) -> None:
    path = tmp_path / "secret.json"
    path.write_text("old")
    path.chmod(0o644)
    old = os.umask(0)
    try:
        jobdir.write_private(path, "new")
    finally:
        os.umask(old)
    assert path.read_text() == "new"
    assert _mode(path) == 0o600


def test_private_writer_replaces_a_symlink_and_never_writes_through_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep")
    link = tmp_path / "job" / "distcp.json"
    link.parent.mkdir()
    link.symlink_to(victim)
    jobdir.write_private(link, b"secret")
    assert victim.read_text() == "keep"
    assert not link.is_symlink() and link.read_bytes() == b"secret"
    assert _mode(link) == 0o600


def test_readers_refuse_symlinks_and_garbage(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.json"
    target.write_text(json.dumps({"engine": "x"}))
    (tmp_path / jobdir.ENGINE_RECORD).symlink_to(target)
    assert jobdir.read_engine_record(tmp_path) == {}
    (tmp_path / jobdir.ENGINE_RECORD).unlink()
    (tmp_path / jobdir.ENGINE_RECORD).write_text("{not json")
    assert jobdir.read_engine_record(tmp_path) == {}
    (tmp_path / jobdir.LAUNCH).write_text(json.dumps({"argv": ["x"]}))  # no env, no cwd
    assert jobdir.read_launch(tmp_path) is None
    (tmp_path / jobdir.PROGRESS).write_text(json.dumps({"done": "many"}))
    assert jobdir.read_sql_progress(tmp_path) is None


def test_records_round_trip(tmp_path: Path) -> None:
    jobdir.write_engine_record(tmp_path, "spark-submit", kind="yarn", ui_port=4040)
    assert jobdir.read_engine_record(tmp_path) == {
        "engine": "spark-submit",
        "kind": "yarn",
        "ui_port": 4040,
    }
    assert _mode(tmp_path / jobdir.ENGINE_RECORD) == 0o600
    launch = LaunchSpec(["/bin/true", "a b"], {"K": "v"}, str(tmp_path), ["note"], True)
    record = {"argv": launch.argv, "env": launch.env, "cwd": launch.cwd}
    record |= {"notes": launch.notes, "detached": launch.detached}
    jobdir.write_private(tmp_path / jobdir.LAUNCH, json.dumps(record))
    assert jobdir.read_launch(tmp_path) == launch
    jobdir.write_json_atomic(tmp_path / jobdir.PROGRESS, {"done": 1, "total": 4})
    progress = jobdir.read_sql_progress(tmp_path)
    assert progress == jobdir.SqlProgress(1, 4) and progress.percent == 25.0
    rows = {"0": [{"a": "1"}]}
    jobdir.write_json_atomic(tmp_path / jobdir.SQL_RESULTS, rows)
    assert jobdir.read_sql_results(tmp_path) == rows


def _engines(tmp_path: Path) -> list:
    servers = ThriftServers(tmp_path / "clusters", "test")
    return [
        SparkSubmitEngine(),
        SqlEngine(servers),
        MapReduceEngine(),
        DistCpEngine(),
        FlinkEngine(data_dir=tmp_path),
    ]


@pytest.mark.parametrize("index", range(5))
def test_each_engines_secret_files_are_dropped_and_logs_stay(tmp_path: Path, index: int) -> None:
    engine = _engines(tmp_path)[index]
    workdir = tmp_path / "job"
    workdir.mkdir()
    keep = [jobdir.STDOUT, jobdir.STDERR, jobdir.SQL_RESULTS, jobdir.ENGINE_RECORD]
    for name in [jobdir.LAUNCH, *engine.secret_files, *keep]:
        (workdir / name).write_text("x")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f").write_text("x")
    for name in engine.secret_files[:1]:
        (workdir / name).unlink()
        (workdir / name).symlink_to(outside)  # removed, never followed
    drop_secret_files(workdir, engine)
    for name in [jobdir.LAUNCH, *engine.secret_files]:
        assert not os.path.lexists(workdir / name), name
    assert all((workdir / name).exists() for name in keep)
    assert (outside / "f").exists()


def test_declared_secret_files() -> None:
    assert SparkSubmitEngine.secret_files == ("conf", "inputs")
    assert MapReduceEngine.secret_files == ("conf", "hadoop-tmp")
    assert DistCpEngine.secret_files == (jobdir.DISTCP_CONFIG,)
    assert SqlEngine.secret_files == (jobdir.SQL_SPEC,)


def test_drop_removes_secret_directories(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir(mode=0o700)
    (tmp_path / "conf" / "core-site.xml").write_text("<secret/>")
    drop_secret_files(tmp_path, MapReduceEngine())
    assert not (tmp_path / "conf").exists()
