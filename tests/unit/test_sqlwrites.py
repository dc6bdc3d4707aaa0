"""Which tables SQL statements write (domain/sqlwrites.py): writes to one table take turns."""

from __future__ import annotations

from mrs_jobs.domain.sqlwrites import written_tables


def test_inserts_and_other_writes_name_their_table_in_its_database() -> None:
    got = written_tables(
        [
            "INSERT INTO t VALUES (1)",
            "insert overwrite table Sales.Q1 select * from x",
            "INSERT INTO TABLE `db`.`t2` SELECT 1",
            "MERGE INTO tgt USING src ON tgt.k = src.k WHEN MATCHED THEN DELETE",
            "UPDATE u SET a = 1",
            "DELETE FROM d WHERE a = 1",
            "TRUNCATE TABLE tr",
        ],
        database="mydb",
    )
    assert got == [
        ["mydb.t"],
        ["sales.q1"],
        ["db.t2"],
        ["mydb.tgt"],
        ["mydb.u"],
        ["mydb.d"],
        ["mydb.tr"],
    ]


def test_reads_directories_and_comments_are_not_writes() -> None:
    got = written_tables(
        [
            "SELECT * FROM t",
            "INSERT OVERWRITE DIRECTORY '/out' SELECT 1",
            "INSERT OVERWRITE LOCAL DIRECTORY '/out' SELECT 1",
            "-- INSERT INTO t VALUES (1)\nSELECT 1",
            "SELECT 'INSERT INTO t' AS s",
            "CREATE TABLE x (a int)",
        ]
    )
    assert got == [[], [], [], [], [], []]


def test_use_changes_the_database_of_later_statements() -> None:
    got = written_tables(["INSERT INTO a SELECT 1", "USE other", "INSERT INTO a SELECT 1"])
    assert got == [["default.a"], [], ["other.a"]]


def test_unreadable_text_is_not_serialised() -> None:
    assert written_tables(["INSERT INTO t VALUES ('unclosed"]) == [[]]
