"""Which engine runs which job type, and the ClusterSpec a cluster record maps to."""

from __future__ import annotations

from typing import Any

from mrs_jobs.engines.base import ClusterSpec, Engine
from mrs_jobs.engines.distcp import DistCpEngine
from mrs_jobs.engines.flink import FlinkEngine
from mrs_jobs.engines.mapreduce import MapReduceEngine
from mrs_jobs.engines.spark import SparkSubmitEngine
from mrs_jobs.engines.sql import SqlEngine
from mrs_jobs.engines.thrift import ThriftServers
from mrs_jobs.settings import Settings, installation_id

__all__ = ["EngineRegistry", "cluster_spec"]


class EngineRegistry:
    def __init__(self, engines: list[Engine]) -> None:
        self._by_type: dict[str, Engine] = {}
        for engine in engines:
            for job_type in engine.job_types:
                self._by_type[job_type] = engine

    @classmethod
    def from_settings(cls, settings: Settings) -> EngineRegistry:
        servers = ThriftServers(
            settings.data_dir / "clusters",
            installation_id(settings),
            java_home=settings.java_home,
            spark_home=settings.spark_home,
            pyspark_python=settings.pyspark_python,
        )
        return cls(
            [
                SparkSubmitEngine(
                    java_home=settings.java_home,
                    spark_home=settings.spark_home,
                    pyspark_python=settings.pyspark_python,
                ),
                SqlEngine(servers, row_cap=settings.sql_result_row_cap),
                MapReduceEngine(java_home=settings.java_home, spark_home=settings.spark_home),
                DistCpEngine(),
                FlinkEngine(
                    flink_home=settings.flink_home,
                    java_home=settings.java_home,
                    data_dir=settings.data_dir,
                ),
            ]
        )

    @property
    def engines(self) -> list[Engine]:
        return list({id(e): e for e in self._by_type.values()}.values())

    @property
    def job_types(self) -> frozenset[str]:
        """Types that can run now: an engine that can say it is not installed is asked."""
        return frozenset(
            t for t, e in self._by_type.items() if getattr(e, "available", lambda: True)()
        )

    def for_type(self, job_type: str) -> Engine | None:
        return self._by_type.get(job_type)


def cluster_spec(
    cluster_id: str, kind: str, config: dict[str, Any], settings: Settings
) -> ClusterSpec:
    return ClusterSpec(
        cluster_id=cluster_id,
        kind=kind,
        spark_master=str(config.get("spark_master") or f"local[{settings.local_parallelism}]"),
        input_roots=tuple(config.get("input_roots") or ()),
        java_home=config.get("java_home") or settings.java_home,
        spark_home=config.get("spark_home") or settings.spark_home,
        pyspark_python=config.get("pyspark_python") or settings.pyspark_python,
        extra={k: str(v) for k, v in config.items() if not isinstance(v, list | dict)},
    )
