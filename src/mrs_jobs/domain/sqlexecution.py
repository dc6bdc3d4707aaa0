"""MRS's SQL execution API (``/v2/.../sql-execution``): the request's rules and its statuses.

MRS runs ``presto`` SQL only; here ``spark`` and ``hive`` run on the cluster's Spark Thrift
Server as a one-statement SparkSql/HiveSql run (services/sql_execution.py), and ``presto`` on
the cluster's Presto/Trino coordinator when it has one (engines/presto.py), else it is
refused. One statement, no ``;`` between statements (MRS's rule, judged by the splitter the
SQL jobs use). The status is MRS's (Presto's query states), read from the run's job state:
MRS has no CANCELLED, so a cancelled statement is FAILED with the cancel as its message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mrs_jobs.domain.jobtypes import JobType
from mrs_jobs.domain.sqlsplit import split_statements
from mrs_jobs.domain.states import JobResult, JobState
from mrs_jobs.errors import InvalidParameter

__all__ = [
    "ARCHIVE_PROPERTY",
    "ENGINE_PROPERTY",
    "PRESTO",
    "SQL_CONTENT_CAP",
    "SQL_TYPES",
    "SqlRequest",
    "archive_location",
    "content_of",
    "status_of",
    "validate_sql_request",
]

#: sql_type -> the job type that runs it here (presto: none of its own; the service runs it
#: as a SparkSql run marked with :data:`ENGINE_PROPERTY` when the cluster has a coordinator).
SQL_TYPES: dict[str, JobType | None] = {
    "spark": JobType.SPARK_SQL,
    "hive": JobType.HIVE_SQL,
    "presto": None,
}
PRESTO = "presto"
SQL_CONTENT_CAP = 64 * 1024  # characters of sql_content
#: The run's property naming where a result set is archived as CSV (engines/sql.py).
ARCHIVE_PROPERTY = "mrs.sql.archive_path"
#: The run's property naming the engine of a ``presto`` execution (engines/presto.py).
ENGINE_PROPERTY = "mrs.sql.engine"
_DATABASE_RE = re.compile(r"^[A-Za-z0-9_]{1,128}$")
_ARCHIVE_CAP = 1024
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class SqlRequest:
    """A checked request: the type as MRS spells it, the one statement, the database."""

    sql_type: str
    statement: str
    database: str
    archive_path: str | None


def validate_sql_request(
    sql_type: str, sql_content: str, database: str | None, archive_path: str | None
) -> SqlRequest:
    """The request's own rules (the cluster's are the service's); InvalidParameter names the
    field and what it must be."""
    kind = sql_type.strip().lower()
    if kind not in SQL_TYPES:
        raise InvalidParameter(
            f"sql_type must be one of {', '.join(sorted(SQL_TYPES))}; got {sql_type[:32]!r}."
        )
    if len(sql_content) > SQL_CONTENT_CAP:
        raise InvalidParameter(f"sql_content is over {SQL_CONTENT_CAP} characters.")
    if "\x00" in sql_content:
        raise InvalidParameter("sql_content holds a NUL character.")
    statements = split_statements(sql_content)
    if not statements:
        raise InvalidParameter("sql_content holds no SQL statement.")
    if len(statements) > 1:
        raise InvalidParameter(
            "sql_content must be a single SQL statement without ';' (MRS runs one statement "
            f"per request); it holds {len(statements)}."
        )
    db = "default" if database is None or database == "" else database
    if not _DATABASE_RE.match(db):
        raise InvalidParameter("database must be 1-128 letters, digits or underscores.")
    path = archive_path or None
    if path is not None and (len(path) > _ARCHIVE_CAP or _CONTROL_RE.search(path)):
        raise InvalidParameter(
            f"archive_path must be at most {_ARCHIVE_CAP} characters without control characters."
        )
    return SqlRequest(kind, statements[0].strip(), db, path)


def archive_location(archive_path: str, sql_id: str) -> str:
    """Where an execution's result set is archived: ``<archive_path>/<sql_id>.csv``."""
    return f"{archive_path.rstrip('/')}/{sql_id}.csv"


def status_of(state: JobState, result: JobResult) -> str:
    """MRS's status of an execution whose run is in ``state``/``result``."""
    if state in (JobState.NEW, JobState.NEW_SAVING, JobState.SUBMITTED):
        return "QUEUED"
    if state == JobState.ACCEPTED:
        return "STARTING"  # claimed: the runner is connecting (the Thrift server may start)
    if state == JobState.RUNNING:
        return "RUNNING"
    if state == JobState.FINISHED and result == JobResult.SUCCEEDED:
        return "FINISHED"
    return "FAILED"


def content_of(rows: list[dict[str, str]]) -> tuple[list[list[str]], str | None]:
    """(content, failure) of a statement's stored rows: each row's values in column order;
    a statement without a result set has none; a failed one gives its message."""
    if len(rows) == 1 and rows[0].get("result") == "failed" and "message" in rows[0]:
        return [], rows[0]["message"]
    if rows == [{"result": "succeed"}]:
        return [], None
    return [list(row.values()) for row in rows], None
