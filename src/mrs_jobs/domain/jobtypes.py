"""MRS job types and the engine component each needs."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["COMPONENT_ERRORS", "SQL_JOB_TYPES", "JobType", "component_of"]


class JobType(StrEnum):
    MAPREDUCE = "MapReduce"
    SPARK_SUBMIT = "SparkSubmit"
    HIVE_SCRIPT = "HiveScript"
    HIVE_SQL = "HiveSql"
    DISTCP = "DistCp"
    SPARK_SCRIPT = "SparkScript"
    SPARK_SQL = "SparkSql"
    FLINK = "Flink"
    #: Older MRS's type for a Spark Python program: run as SparkSubmit of a .py application,
    #: echoed as submitted (MRS's list reference: it is listed under ``SparkSubmit`` there).
    SPARK_PYTHON = "SparkPython"


SQL_JOB_TYPES: frozenset[JobType] = frozenset(
    {JobType.SPARK_SQL, JobType.SPARK_SCRIPT, JobType.HIVE_SQL, JobType.HIVE_SCRIPT}
)

_COMPONENT: dict[JobType, str] = {
    JobType.SPARK_SUBMIT: "Spark",
    JobType.SPARK_PYTHON: "Spark",
    JobType.SPARK_SQL: "Spark",
    JobType.SPARK_SCRIPT: "Spark",
    JobType.HIVE_SQL: "Hive",
    JobType.HIVE_SCRIPT: "Hive",
    JobType.FLINK: "Flink",
    JobType.MAPREDUCE: "Hadoop",
    JobType.DISTCP: "Hadoop",
}

#: component -> MRS error code when the cluster lacks it.
COMPONENT_ERRORS: dict[str, str] = {"Spark": "0057", "Hive": "0168", "Flink": "0169"}


def component_of(job_type: JobType) -> str:
    return _COMPONENT[job_type]
