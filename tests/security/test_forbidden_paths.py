"""No job names the service's own files (data directory, key files, database), whatever its
cluster's roots: every engine refuses them in build(), before anything runs (issue 13's second
line, behind the job's box).

The clusters come from ``cluster_spec()`` with real Settings, as the supervisor builds them, so
the forbidden list is the one a running service uses.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from support_flink import make_fake_flink

from mrs_jobs.engines.base import ClusterSpec, EngineRefused, JobSpec
from mrs_jobs.engines.distcp import DistCpEngine
from mrs_jobs.engines.flink import FlinkEngine
from mrs_jobs.engines.java import find_java_home, find_spark_home
from mrs_jobs.engines.mapreduce import MapReduceEngine
from mrs_jobs.engines.registry import cluster_spec, service_paths
from mrs_jobs.engines.spark import SparkSubmitEngine
from mrs_jobs.engines.sql import SqlEngine
from mrs_jobs.engines.thrift import ThriftServers
from mrs_jobs.settings import Settings

REFUSED = "reaches the service's own files"
needs_java = pytest.mark.skipif(find_java_home(None) is None, reason="no Java")
needs_spark = pytest.mark.skipif(
    find_java_home(None) is None or find_spark_home(None) is None, reason="no Java/Spark"
)


class Service:
    """A data directory laid out as the service keeps it, and a place outside it."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.data = tmp / "data"
        self.other_job = self.data / "jobs" / "other-job"
        self.other_job.mkdir(parents=True)
        (self.data / "secret.key").write_text("c2VhbGluZy1rZXk=")
        (self.data / "mrs-jobs.db").write_bytes(b"SQLite format 3\x00")
        (self.data / "bootstrap.json").write_text("{}")
        (self.other_job / "stderr.log").write_text("another project's log\n")
        (self.other_job / "app.py").write_text("print('theirs')\n")
        with zipfile.ZipFile(self.other_job / "job.jar", "w") as z:
            z.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nMain-Class: M\n")
        self.outside = tmp / "user"
        self.outside.mkdir()
        (self.outside / "app.py").write_text("print('mine')\n")
        self.settings = Settings(data_dir=self.data, database_url=None)

    def cluster(self, config: dict | None = None) -> ClusterSpec:
        return cluster_spec("c1", "local", config or {}, self.settings)

    def clusters(self) -> list[ClusterSpec]:
        """Unrooted (any path) and rooted at the directory that holds the data dir."""
        return [
            self.cluster(),
            self.cluster({"input_roots": [str(self.tmp)], "output_roots": [str(self.tmp)]}),
        ]

    def workdir(self, name: str = "this-job") -> Path:
        return self.data / "jobs" / name


@pytest.fixture
def svc(tmp_path: Path) -> Service:
    return Service(tmp_path)


def _job(job_type: str, arguments: list[str]) -> JobSpec:
    return JobSpec("this-job", job_type, "t", arguments, {})


def test_the_forbidden_list_comes_from_the_settings(tmp_path: Path) -> None:
    data = tmp_path / "data"
    keys = tmp_path / "keys"
    settings = Settings(
        data_dir=data,
        secret_key_file=keys / "now.key",
        old_secret_key_files=f"{keys}/old1.key, {keys}/old2.key",
        database_url=f"sqlite:///{tmp_path}/db/store.db",
    )
    paths = service_paths(settings)
    assert paths == (
        str(data),
        str(keys / "now.key"),
        str(keys / "old1.key"),
        str(keys / "old2.key"),
        str(tmp_path / "db" / "store.db"),
        str(tmp_path / "db" / "store.db-wal"),
        str(tmp_path / "db" / "store.db-shm"),
        str(tmp_path / "db" / "store.db-journal"),
    )
    assert cluster_spec("c", "local", {}, settings).forbidden == paths
    pg = Settings(data_dir=data, database_url="postgresql+psycopg://u@h/db")
    assert service_paths(pg) == (str(data),)


@needs_spark
def test_spark_submit(svc: Service) -> None:
    engine = SparkSubmitEngine()
    app = str(svc.outside / "app.py")
    for cluster in svc.clusters():
        for args in (
            [str(svc.other_job / "app.py")],
            [f"file://{svc.other_job}/app.py"],
            ["--files", f"{svc.data}/secret.key", app],
            ["--files", f"{svc.outside / 'app.py'},{svc.data}/secret.key#k", app],
            ["--py-files", f"{svc.data}/mrs-jobs.db", app],
            ["--archives", str(svc.data), app],
            ["--properties-file", f"{svc.data}/bootstrap.json", app],
            ["--files", str(svc.tmp), app],  # a directory holding the data dir
            ["--jars", f"{svc.tmp}/*/secret.key", app],  # a glob that reaches it
        ):
            with pytest.raises(EngineRefused, match=REFUSED):
                engine.build(_job("SparkSubmit", args), cluster, svc.workdir())
    # The key itself as the application: refused too (it is not a .py or .jar file either).
    with pytest.raises(EngineRefused):
        engine.build(_job("SparkSubmit", [f"{svc.data}/secret.key"]), svc.cluster(), svc.workdir())


@needs_spark
def test_spark_submit_may_still_read_its_own_directory(svc: Service) -> None:
    own = svc.workdir()
    own.mkdir(parents=True)
    (own / "extra.txt").write_text("mine\n")
    argv = (
        SparkSubmitEngine()
        .build(
            _job("SparkSubmit", ["--files", str(own / "extra.txt"), str(svc.outside / "app.py")]),
            svc.cluster(),
            own,
        )
        .argv
    )
    assert str((own / "extra.txt").resolve()) in argv


def test_distcp(svc: Service) -> None:
    engine = DistCpEngine()
    loot = str(svc.outside / "loot")
    for cluster in svc.clusters():
        for args in (
            [str(svc.data), loot],
            [f"file://{svc.data}/secret.key", loot],
            [f"{svc.data}/mrs-jobs.db", f"{svc.data}/bootstrap.json", loot],
            [str(svc.tmp), "obs://bucket/loot"],  # holds the data dir
            ["-overwrite", str(svc.outside / "app.py"), f"{svc.other_job}/stderr.log"],
            ["-update", str(svc.outside), str(svc.data / "jobs")],
        ):
            with pytest.raises(EngineRefused, match=REFUSED):
                engine.build(_job("DistCp", args), cluster, svc.workdir())


def test_mapreduce(svc: Service) -> None:
    java = svc.tmp / "jdk"
    (java / "bin").mkdir(parents=True)
    (java / "bin" / "java").write_text("#!/bin/sh\n")
    config = {"java_home": str(java), "spark_home": str(svc.tmp / "spark")}
    for cluster in (
        svc.cluster(config),
        svc.cluster({**config, "input_roots": [str(svc.tmp)]}),
    ):
        for jar in (str(svc.other_job / "job.jar"), f"file://{svc.other_job}/job.jar"):
            with pytest.raises(EngineRefused, match=REFUSED):
                MapReduceEngine().build(_job("MapReduce", [jar, "M"]), cluster, svc.workdir())


@needs_java
def test_flink(svc: Service) -> None:
    engine = FlinkEngine(flink_home=str(make_fake_flink(svc.tmp / "flink")))
    mine = svc.outside / "app.jar"
    mine.write_bytes(b"PK\x03\x04")
    for cluster in svc.clusters():
        for args in (
            ["run", str(svc.other_job / "job.jar")],
            ["run", "-C", f"file://{svc.data}/secret.key", str(mine)],
            ["run", "-py", str(svc.other_job / "app.py")],
            ["run", "-pyfs", f"{svc.data}/secret.key", "-py", str(svc.outside / "app.py")],
        ):
            with pytest.raises(EngineRefused, match=REFUSED):
                engine.build(_job("Flink", args), cluster, svc.workdir())


@pytest.mark.parametrize("job_type", ["SparkSql", "HiveSql"])
def test_sql(svc: Service, job_type: str) -> None:
    engine = SqlEngine(ThriftServers(svc.data / "clusters", "marker"))
    for base in svc.clusters():
        cluster = ClusterSpec(
            base.cluster_id,
            input_roots=base.input_roots,
            output_roots=base.output_roots,
            forbidden=base.forbidden,
            extra={"sql_thrift_endpoint": "127.0.0.1:1"},  # never asked: refused before
        )
        for sql in (
            f"SELECT * FROM text.`file:///{str(svc.data).lstrip('/')}/secret.key`",
            f"SELECT * FROM text.`{svc.data}/secret.key`",
            f"SELECT * FROM binaryFile.`{svc.data}/mrs-jobs.db`",
            f"SELECT * FROM text.`{svc.other_job}/stderr.log`",
            f"INSERT OVERWRITE DIRECTORY 'file://{svc.data}/x' SELECT 1",
            f"INSERT OVERWRITE LOCAL DIRECTORY '{svc.tmp}' SELECT 1",
            f"CREATE TABLE t (a INT) LOCATION '{svc.data}/clusters'",
            f"ADD FILE {svc.data}/bootstrap.json",
            f"LOAD DATA LOCAL INPATH '{svc.data}/secret.key' INTO TABLE t",
        ):
            with pytest.raises(EngineRefused, match=REFUSED):
                engine.build(_job(job_type, [sql]), cluster, svc.workdir())
