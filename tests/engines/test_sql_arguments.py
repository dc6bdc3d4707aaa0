"""SQL job arguments: spark-sql/hive option pairs, then the SQL text or one .sql file."""

from __future__ import annotations

import pytest

from mrs_jobs.engines.base import EngineRefused
from mrs_jobs.engines.sql import parse_sql_arguments


def test_options_then_text() -> None:
    args = ["--conf", "a=b", "--hiveconf=c=d", "--hivevar", "x=1", "-d", "y=2", "--database", "db"]
    settings, variables, database, text, path = parse_sql_arguments([*args, "select", "1"], False)
    assert settings == [("a", "b"), ("c", "d")] and variables == {"x": "1", "y": "2"}
    assert (database, text, path) == ("db", "select 1", None)


def test_script_file() -> None:
    assert parse_sql_arguments(["/q.sql"], True)[4] == "/q.sql"
    assert parse_sql_arguments(["-f", "/q.sql"], True)[4] == "/q.sql"
    assert parse_sql_arguments(["-e", "select 1"], False)[3] == "select 1"


@pytest.mark.parametrize(
    ("args", "script", "needle"),
    [
        (["--conf"], False, "needs a value"),
        (["--conf", "nokey", "select 1"], False, "needs key=value"),
        (["--hivevar", "bad key=1", "select 1"], False, "needs key=value"),
        (["-z", "select 1"], False, "unknown option -z"),
        (["--database", "a b", "select 1"], False, "plain database name"),
        (["/a.sql", "/b.sql"], True, "exactly one .sql file"),
    ],
)
def test_refused(args: list[str], script: bool, needle: str) -> None:
    with pytest.raises(EngineRefused, match=needle):
        parse_sql_arguments(args, script)


def test_session_properties_apply_spark_and_hive_keys_but_never_a_secret() -> None:
    from mrs_jobs.engines.sql import _session_properties

    settings = [("spark.sql.shuffle.partitions", "4")]
    notes = _session_properties(
        {
            "spark.executor.memory": "1g",
            "hive.exec.dynamic.partition": "true",
            "fs.obs.secret.key": "s3cr3t",
            "spark.hadoop.fs.s3a.secret.key": "s3cr3t",
            "mrs.job.timeout": "60",
        },
        settings,
    )
    assert settings == [
        ("spark.sql.shuffle.partitions", "4"),
        ("spark.executor.memory", "1g"),
        ("hive.exec.dynamic.partition", "true"),
    ]
    assert notes == [
        "secret property spark.hadoop.fs.s3a.secret.key not applied to the SQL session"
    ]
