"""Which engine runs which job type, and the ClusterSpec a cluster record maps to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from mrs_jobs.domain.clusterconfig import settings_of
from mrs_jobs.engines.base import ClusterSpec, EngineAdapter, call_hook
from mrs_jobs.engines.distcp import DistCpEngine
from mrs_jobs.engines.flink import FlinkEngine
from mrs_jobs.engines.mapreduce import MapReduceEngine
from mrs_jobs.engines.spark import SparkSubmitEngine
from mrs_jobs.engines.spark_history import HistoryServers
from mrs_jobs.engines.sql import SqlEngine
from mrs_jobs.engines.thrift import ThriftServers
from mrs_jobs.runtime.box import BoxPolicy
from mrs_jobs.settings import Settings, installation_id

__all__ = ["EngineRegistry", "cluster_spec", "service_paths"]


class EngineRegistry:
    def __init__(
        self, engines: list[EngineAdapter], *, history: HistoryServers | None = None
    ) -> None:
        self.history = history  # the clusters' Spark history servers (the API redirects there)
        self._by_type: dict[str, EngineAdapter] = {}
        for engine in engines:
            for job_type in engine.job_types:
                self._by_type[job_type] = engine

    @classmethod
    def from_settings(
        cls, settings: Settings, box: BoxPolicy | None = None, endpoint: str | None = None
    ) -> EngineRegistry:
        """The engines of this installation; ``box`` boxes the long-lived services they start
        (each cluster's SQL and history servers), as the supervisor boxes jobs. ``endpoint``:
        the address of the HTTP server in this process (``serve``), the base of the history
        links of ended local Spark jobs; without it (``supervise``) they keep their driver's
        URL, since no server here could answer the link."""
        history = HistoryServers(
            settings.data_dir / "clusters",
            installation_id(settings),
            base_url=endpoint,
            idle_seconds=settings.spark_history_idle_seconds,
            java_home=settings.java_home,
            spark_home=settings.spark_home,
            box=box,
        )
        servers = ThriftServers(
            settings.data_dir / "clusters",
            installation_id(settings),
            java_home=settings.java_home,
            spark_home=settings.spark_home,
            pyspark_python=settings.pyspark_python,
            box=box,
        )
        return cls(
            [
                SparkSubmitEngine(
                    java_home=settings.java_home,
                    spark_home=settings.spark_home,
                    pyspark_python=settings.pyspark_python,
                    history=history,
                ),
                SqlEngine(servers, row_cap=settings.sql_result_row_cap),
                MapReduceEngine(java_home=settings.java_home, spark_home=settings.spark_home),
                DistCpEngine(),
                FlinkEngine(
                    flink_home=settings.flink_home,
                    java_home=settings.java_home,
                    data_dir=settings.data_dir,
                ),
            ],
            history=history,
        )

    @property
    def engines(self) -> list[EngineAdapter]:
        return list({id(e): e for e in self._by_type.values()}.values())

    @property
    def job_types(self) -> frozenset[str]:
        """Types that can run now: an engine that can say it is not installed is asked."""
        return frozenset(
            t for t, e in self._by_type.items() if call_hook(e.available, default=False)
        )

    def for_type(self, job_type: str) -> EngineAdapter | None:
        return self._by_type.get(job_type)


def service_paths(settings: Settings) -> tuple[str, ...]:
    """The service's own files, which no job may name: the data directory, the key files and
    a SQLite database (with its -wal, -shm and -journal files) wherever they are."""
    paths: list[Path] = [settings.data_dir]
    if settings.secret_key_file is not None:
        paths.append(settings.secret_key_file)
    paths += [Path(p.strip()) for p in settings.old_secret_key_files.split(",") if p.strip()]
    try:
        url = make_url(settings.effective_database_url)
    except ArgumentError:
        url = None
    if url is not None and url.get_backend_name() == "sqlite":
        name = (url.database or "").removeprefix("file:")  # also SQLite's file: URI form
        if name and name != ":memory:":
            db = Path(name)
            paths += [db, *(db.with_name(db.name + s) for s in ("-wal", "-shm", "-journal"))]
    out: list[str] = []
    for p in paths:
        text = str(p.expanduser().absolute())
        if text not in out:
            out.append(text)
    return tuple(out)


def cluster_spec(
    cluster_id: str, kind: str, config: dict[str, Any], settings: Settings
) -> ClusterSpec:
    return ClusterSpec(
        cluster_id=cluster_id,
        kind=kind,
        spark_master=str(config.get("spark_master") or f"local[{settings.local_parallelism}]"),
        input_roots=tuple(config.get("input_roots") or ()),
        output_roots=tuple(config.get("output_roots") or ()),
        forbidden=service_paths(settings),
        java_home=config.get("java_home") or settings.java_home,
        spark_home=config.get("spark_home") or settings.spark_home,
        pyspark_python=config.get("pyspark_python") or settings.pyspark_python,
        settings=settings_of(kind, config),
    )
