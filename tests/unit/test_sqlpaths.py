"""domain/sqlpaths.py: which files SQL statements read or write, and what cannot be checked."""

from __future__ import annotations

import pytest

from mrs_jobs.domain.sqlpaths import SqlPath, UncheckableSql, local_path, statement_paths
from mrs_jobs.domain.sqlsplit import split_statements


def found(*statements: str) -> list[tuple[int, str | None, bool]]:
    """(statement, local path, written) of every path found."""
    return [(p.statement, p.local, p.write) for p in statement_paths(list(statements))]


def refused(*statements: str) -> UncheckableSql:
    with pytest.raises(UncheckableSql) as err:
        statement_paths(list(statements))
    return err.value


R, W = False, True


# --------------------------------------------------------------------- path-based sources


@pytest.mark.parametrize(
    "fmt", ["text", "csv", "json", "parquet", "orc", "avro", "binaryFile", "delta", "TEXT"]
)
def test_every_file_format_is_a_read(fmt: str) -> None:
    assert found(f"SELECT * FROM {fmt}.`/data/x`") == [(0, "/data/x", R)]


@pytest.mark.parametrize(
    "sql",
    [
        "select * from text.`/data/x`",
        "SeLeCt * FrOm TeXt.`/data/x`",
        "SELECT * FROM `text`.`/data/x`",
        "SELECT * FROM text . `/data/x`",
        "SELECT * FROM text/* c */.`/data/x`",
        "SELECT * FROM text.\n  `/data/x`",
        'SELECT * FROM text."/data/x"',  # double-quoted identifiers (ANSI mode)
        "SELECT * FROM `org.apache.spark.sql.parquet`.`/data/x`",  # a class name
        "SELECT * FROM mydb.`/data/x`",  # looks like a path whatever the qualifier
        "SELECT * FROM text.`file:///data/x`",
        "SELECT * FROM text.`file:/data/x`",
        "SELECT * FROM text.`file://localhost/data/x`",
        "SELECT * FROM text.`FILE:///data/x`",
        "SELECT * FROM parquet.`/data/x` t JOIN orc.`/data/y` u ON t.a = u.a",
    ],
)
def test_path_sources_in_every_spelling(sql: str) -> None:
    paths = [p.local for p in statement_paths([sql])]
    assert paths and paths[0] == "/data/x" and all(not p.write for p in statement_paths([sql]))


def test_backticked_table_names_are_not_paths() -> None:
    assert found("SELECT `db`.`t`.`c`, t.`a/b` FROM `db`.`t` JOIN `my db`.`x y` ON 1=1") == []
    assert found("SELECT * FROM db.t WHERE t.`col.with.dots` = 1") == []
    assert found("SELECT json.payload, text.value FROM events json, lines text") == []
    assert found("SELECT 1.5, a.b.c FROM x") == []


def test_a_format_with_a_relative_name_is_refused() -> None:
    err = refused("SELECT * FROM text.`derby.log`")
    assert err.statement == 0 and "not an absolute local path" in str(err)
    assert "not an absolute" in str(refused("SELECT * FROM json.metastore_db"))
    assert "not an absolute" in str(refused("SELECT * FROM t, csv.x"))
    assert "not an absolute" in str(refused("SELECT * FROM text.`~/x`"))
    assert "not an absolute" in str(refused("SELECT * FROM text.`file:x`"))


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO parquet.`/out/x` SELECT 1",
        "INSERT OVERWRITE parquet.`/out/x` SELECT 1",
        "INSERT OVERWRITE TABLE parquet.`/out/x` SELECT 1",
        "MERGE INTO delta.`/out/x` t USING src s ON t.a = s.a WHEN MATCHED THEN DELETE",
        "UPDATE delta.`/out/x` SET a = 1",
        "DELETE FROM delta.`/out/x` WHERE a = 1",
        "TRUNCATE TABLE delta.`/out/x`",
        "CREATE TABLE delta.`/out/x` (a INT)",
        "CREATE TABLE IF NOT EXISTS delta.`/out/x` (a INT)",
        "CREATE OR REPLACE TABLE delta.`/out/x` AS SELECT 1",
        "ALTER TABLE delta.`/out/x` ADD COLUMNS (b INT)",
        "DROP TABLE delta.`/out/x`",
        "CONVERT TO DELTA parquet.`/out/x`",
        "VACUUM delta.`/out/x`",
    ],
)
def test_path_sources_as_targets_are_writes(sql: str) -> None:
    assert found(sql)[0] == (0, "/out/x", W)


def test_reads_next_to_a_write() -> None:
    assert found("INSERT OVERWRITE DIRECTORY '/out' SELECT * FROM csv.`/in/a.csv`") == [
        (0, "/out", W),
        (0, "/in/a.csv", R),
    ]
    assert found("CREATE TABLE t AS SELECT * FROM json.`/in/x`") == [(0, "/in/x", R)]
    assert found("MERGE INTO t USING parquet.`/in/x` s ON t.a = s.a WHEN MATCHED THEN DELETE") == [
        (0, "/in/x", R)
    ]


def test_identifier_clause() -> None:
    assert found("SELECT * FROM IDENTIFIER('text.`/data/x`')") == [(0, "/data/x", R)]
    assert found("INSERT INTO IDENTIFIER('parquet.`/out`') SELECT 1") == [(0, "/out", W)]
    assert found("SELECT * FROM IDENTIFIER('db.t')") == []
    assert "not an absolute" in str(refused("SELECT * FROM IDENTIFIER('csv.x')"))
    for sql in (
        "SELECT * FROM IDENTIFIER('te' || 'xt.`/data/x`')",
        "SELECT * FROM IDENTIFIER(v)",
        "SELECT * FROM IDENTIFIER(:name)",
    ):
        assert "IDENTIFIER" in str(refused(sql))


# ------------------------------------------------------------------------- keyword forms


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("INSERT OVERWRITE DIRECTORY '/out/d' SELECT 1", [(0, "/out/d", W)]),
        ("INSERT OVERWRITE LOCAL DIRECTORY '/out/d' SELECT 1", [(0, "/out/d", W)]),
        ('insert overwrite local directory "/out/d" select 1', [(0, "/out/d", W)]),
        ("INSERT OVERWRITE DIRECTORY 'file:///out/d' USING csv SELECT 1", [(0, "/out/d", W)]),
        (
            "INSERT OVERWRITE DIRECTORY USING parquet OPTIONS (path '/out/d') SELECT 1",
            [(0, "/out/d", W)],
        ),
        ("CREATE TABLE t (a INT) LOCATION '/out/t'", [(0, "/out/t", W)]),
        ("CREATE EXTERNAL TABLE t (a INT) STORED AS TEXTFILE LOCATION '/in/t'", [(0, "/in/t", W)]),
        ("CREATE DATABASE d LOCATION '/out/d'", [(0, "/out/d", W)]),
        ("ALTER TABLE t SET LOCATION '/out/t2'", [(0, "/out/t2", W)]),
        ("ALTER TABLE t ADD PARTITION (p=1) LOCATION '/out/p1'", [(0, "/out/p1", W)]),
        ("CREATE TABLE t USING csv OPTIONS (path '/out/t')", [(0, "/out/t", W)]),
        ("CREATE TABLE t USING csv OPTIONS ('path' = '/out/t', header 'true')", [(0, "/out/t", W)]),
        ('CREATE TABLE t USING csv OPTIONS (PATH = "/out/t")', [(0, "/out/t", W)]),
        (
            'CREATE TABLE t USING csv OPTIONS (paths \'["/out/a", "/out/b"]\')',
            [(0, "/out/a", W), (0, "/out/b", W)],
        ),
        (
            "CREATE TABLE t ROW FORMAT SERDE 'x' WITH SERDEPROPERTIES "
            "('avro.schema.url'='file:///in/s.avsc')",
            [(0, "/in/s.avsc", R)],
        ),
        ("ALTER TABLE t SET SERDEPROPERTIES ('path' = '/out/p')", [(0, "/out/p", W)]),
        ("LOAD DATA LOCAL INPATH '/in/f.txt' INTO TABLE t", [(0, "/in/f.txt", R)]),
        ("LOAD DATA INPATH '/in/f.txt' OVERWRITE INTO TABLE t", [(0, "/in/f.txt", W)]),
        ("CREATE FUNCTION f AS 'com.x.F' USING JAR '/in/f.jar'", [(0, "/in/f.jar", R)]),
        (
            "CREATE TEMPORARY FUNCTION f AS 'com.x.F' USING JAR '/in/f.jar', FILE '/in/g.txt'",
            [(0, "/in/f.jar", R), (0, "/in/g.txt", R)],
        ),
        ("SET spark.sql.streaming.checkpointLocation=/out/ck", [(0, "/out/ck", W)]),
        ("SET x = file:///out/ck", [(0, "/out/ck", W)]),
    ],
)
def test_keyword_forms(sql: str, expected: list) -> None:
    assert found(sql) == expected


@pytest.mark.parametrize(
    ("sql", "paths"),
    [
        ("ADD JAR /in/a.jar", ["/in/a.jar"]),
        ("add jars /in/a.jar '/in/b.jar'", ["/in/a.jar", "/in/b.jar"]),
        ('ADD FILE "/in/f.txt"', ["/in/f.txt"]),
        ("ADD FILES /in/a /in/b", ["/in/a", "/in/b"]),
        ("ADD ARCHIVE /in/a.zip", ["/in/a.zip"]),
        ("ADD ARCHIVES /in/a.zip\n/in/b.tgz", ["/in/a.zip", "/in/b.tgz"]),
        ("-- first the jar\nADD JAR /in/a.jar", ["/in/a.jar"]),
        ("ADD JAR ivy://org.x:y:1.0", [None]),
        ("ADD JAR hdfs://nn/jars/a.jar", [None]),
    ],
)
def test_add_resources_are_reads(sql: str, paths: list) -> None:
    assert [(p.local, p.write) for p in statement_paths([sql])] == [(x, R) for x in paths]


def test_add_resource_text_after_the_path_is_a_path_too() -> None:
    # Spark splits the raw rest, comments included: "--" and "comment" would be paths.
    assert "not an absolute" in str(refused("ADD JAR /in/a.jar -- comment"))
    assert "not an absolute" in str(refused("ADD FILE /* x */ /data/secret.key"))


def test_non_local_schemes_are_left_to_the_engine() -> None:
    sql = (
        "INSERT OVERWRITE DIRECTORY 'hdfs://nn:8020/out' SELECT * FROM parquet.`s3a://b/k` "
        "UNION ALL SELECT * FROM parquet.`obs://b/k`"
    )
    assert [(p.text, p.local) for p in statement_paths([sql])] == [
        ("hdfs://nn:8020/out", None),
        ("s3a://b/k", None),
        ("obs://b/k", None),
    ]


def test_temporary_views_read_unless_the_job_writes_tables() -> None:
    view = "CREATE TEMPORARY VIEW v USING csv OPTIONS (path '/in/x.csv', header 'true')"
    assert found(view, "SELECT count(*) FROM v") == [(0, "/in/x.csv", R)]
    assert found(view.replace("TEMPORARY", "OR REPLACE TEMP"), "SELECT 1") == [(0, "/in/x.csv", R)]
    # A file-source view can be inserted into: once the job writes tables, it is a write.
    assert found(view, "INSERT INTO v SELECT 1") == [(0, "/in/x.csv", W)]
    assert found(view, "EXECUTE IMMEDIATE 'insert into v select 1'") == [(0, "/in/x.csv", W)]
    # A global temporary view outlives the job's session: always a write.
    assert found(view.replace("TEMPORARY", "GLOBAL TEMPORARY"), "SELECT 1") == [(0, "/in/x.csv", W)]


# ------------------------------------------------------------------- lexing and hiding


def test_paths_in_comments_and_strings_are_not_read_by_spark() -> None:
    assert found("SELECT 'LOCATION is a word', \"text\" -- a comment\nFROM t") == []
    assert found("SELECT 1 /* plain comment */") == []


@pytest.mark.parametrize(
    "sql",
    [
        # Spark nests block comments: the first */ does not end this one.
        "SELECT * FROM t /* /* */ ' */ , text.`/data/x` -- '",
        # A -- comment continued by a trailing backslash ends a line later.
        "SELECT 1 -- note \\\n' , 2\nFROM text.`/data/x` -- '",
        # A raw string has no escapes: r'\\' ends at its second quote.
        "SELECT r'\\', * FROM text.`/data/x` WHERE 'x' = 'x'",
        # Doubled quotes inside a string.
        "SELECT 'it''s', * FROM text.`/data/x` WHERE 'a' = 'a'",
        # Escaped quotes inside a string.
        "SELECT 'it\\'s', * FROM text.`/data/x`",
        # A hint is code, not a comment.
        "SELECT /*+ REPARTITION(2) */ * FROM text.`/data/x`",
        # Backticks with doubled backticks.
        "SELECT `a``b`, * FROM text.`/data/x`",
    ],
)
def test_lexing_follows_spark(sql: str) -> None:
    assert "/data/x" in [p.local for p in statement_paths([sql])]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1 -- then SELECT * FROM text.`/data/x`",
        "SELECT 1 /* LOCATION '/data' */",
        "SELECT 'parquet.`/data/x`'",
        "SELECT \"INSERT OVERWRITE DIRECTORY '/data'\"",
        "SELECT 1 /* EXECUTE IMMEDIATE */",
    ],
)
def test_path_forms_hidden_in_comments_or_strings_are_refused(sql: str) -> None:
    assert "inside a comment or a quoted string" in str(refused(sql))


def test_comments_hiding_a_path_from_the_splitter() -> None:
    # The split keeps comments in the statement Spark receives; the path after the comment
    # is code and is found in its statement.
    text = "SELECT 1; -- harmless\nSELECT * FROM TEXT.`file:///data/k`; SELECT 2"
    assert found(*split_statements(text)) == [(1, "/data/k", R)]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM text.`/data/${x}`",
        "SELECT '${env:MRS_JOBS_SECRET_KEY}'",
        "${q}",
        "-- ${x}\nSELECT 1",
    ],
)
def test_spark_substitution_is_refused(sql: str) -> None:
    assert "'${'" in str(refused(sql))


@pytest.mark.parametrize(
    ("sql", "needle"),
    [
        ("EXECUTE IMMEDIATE 'SELECT * FROM text.`' || '/data/x`'", "EXECUTE IMMEDIATE"),
        ("EXECUTE IMMEDIATE stmt", "EXECUTE IMMEDIATE"),
        ("SELECT * FROM text.`/da\\ta`", "backslash"),  # literal in a backtick: refused too
        ("LOCATION '/da\\ta'", "escapes"),
        ("CREATE TABLE t LOCATION '/da''ta'", "escapes"),
        ("CREATE TABLE t LOCATION '/da' 'ta'", "followed by another string"),
        ("CREATE TABLE t LOCATION 'C:/x'", "unsupported URL scheme"),
        ("CREATE TABLE t LOCATION 'jar:file:/x!/y'", "unsupported URL scheme"),
        ("CREATE TABLE t LOCATION '/a%2e%2e/x'", "percent"),
        ("CREATE TABLE t LOCATION '//host/x'", "not an absolute"),
        ("CREATE TABLE t LOCATION 'relative/x'", "not an absolute"),
        ("CREATE TABLE t LOCATION ''", "empty"),
        ("CREATE TABLE t LOCATION '/x\ny'", "control"),
        ("CREATE TABLE t USING csv OPTIONS (paths '/x')", "JSON list"),
        ("SELECT 'unclosed", "unclosed"),
        ("SELECT 1 /* unclosed", "unclosed"),
    ],
)
def test_what_cannot_be_checked_is_refused(sql: str, needle: str) -> None:
    assert needle in str(refused(sql))


def test_execute_immediate_of_a_literal_is_checked_as_a_statement() -> None:
    assert found("EXECUTE IMMEDIATE 'SELECT * FROM text.`/data/x`'") == [(0, "/data/x", R)]
    assert found("EXECUTE IMMEDIATE 'SELECT ?' USING 1") == []
    nested = "EXECUTE IMMEDIATE \"EXECUTE IMMEDIATE 'SELECT * FROM text.`/data/x`'\""
    assert found(nested) == [(0, "/data/x", R)]
    doubled = "EXECUTE IMMEDIATE \"EXECUTE IMMEDIATE 'INSERT OVERWRITE DIRECTORY ''/o'' SELECT 1'\""
    assert "EXECUTE IMMEDIATE" in str(refused(doubled))


def test_refusals_name_the_statement() -> None:
    err = refused("SELECT 1", "SELECT 2", "SELECT * FROM text.`rel`")
    assert err.statement == 2 and str(err).startswith("statement 2: ")


def test_results_keep_the_text_as_written() -> None:
    assert statement_paths(["SELECT * FROM text.`file:///data/x`"]) == [
        SqlPath(0, "file:///data/x", "/data/x", False)
    ]


@pytest.mark.parametrize(
    ("text", "local"),
    [
        ("/a/b", "/a/b"),
        ("file:/a/b", "/a/b"),
        ("file:///a/b", "/a/b"),
        ("file://anyhost/a/b", "/a/b"),  # the host is ignored: the local path is checked
        ("local:/a/b", "/a/b"),
        ("/a/../b", "/a/../b"),  # normalised and resolved by the engine
        ("/a/*/b", "/a/*/b"),  # globs: the engine checks the fixed prefix
        ("hdfs://nn/a", None),
        ("s3a://bucket/a", None),
        ("obs://bucket/a", None),
    ],
)
def test_local_path(text: str, local: str | None) -> None:
    assert local_path(text) == local


def test_set_statements_are_code_too() -> None:
    # A SET may assign a session variable from a query (SQL scripting): its text is scanned.
    assert found("SET VAR v = (SELECT max(value) FROM text.`/data/x`)") == [(0, "/data/x", R)]
    assert found("SET x = (SELECT * FROM text.`/data/x`)") == [(0, "/data/x", R)]
    assert found("SET spark.sql.shuffle.partitions=4") == []
    assert "is not a name" in str(refused("SELECT * FROM IDENTIFIER('a b')"))
    assert "is not a name" in str(refused("SELECT * FROM IDENTIFIER('a..b')"))
