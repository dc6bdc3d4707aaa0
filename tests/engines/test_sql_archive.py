"""The SQL execution API's archive: the runner writes a result set as CSV in batches and keeps
the capped rows (runners/sqlarchive.py); the engine says where, and refuses what it may not
write (engines/sql.py). The real server and S3 are in tests/acceptance/test_sdk_sql_execution.py.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from mrs_jobs.domain.sqlexecution import ARCHIVE_PROPERTY
from mrs_jobs.engines import sql as sql_engine
from mrs_jobs.engines.base import ClusterSpec, EngineRefused, JobSpec
from mrs_jobs.engines.runners import sql as runner
from mrs_jobs.engines.runners import sqlarchive


class Cursor:
    def __init__(self, names: list[str], rows: list[tuple]) -> None:
        self.description = [(n, "STRING_TYPE") for n in names]
        self.rows = list(rows)
        self.fetches = 0

    def fetchmany(self, n: int) -> list[tuple]:
        self.fetches += 1
        out, self.rows = self.rows[:n], self.rows[n:]
        return out


def test_every_row_is_written_and_the_cap_kept(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sqlarchive, "BATCH", 7)
    rows = [(i, None if i % 2 else f"v,{i}") for i in range(30)]
    cursor = Cursor(["t.id", "s"], rows)
    target = tmp_path / "out" / "x.csv"
    spec = {"location": str(target), "local": str(target)}
    kept, written = sqlarchive.archive_result(cursor, spec, 5, tmp_path, runner.cell_text)
    assert written and kept == rows[:5] and cursor.fetches == 6  # 5 batches of 7, one empty
    with open(target, newline="", encoding="utf-8") as f:
        lines = list(csv.reader(f))
    assert lines[0] == ["id", "s"] and len(lines) == 31
    assert lines[1] == ["0", "v,0"] and lines[2] == ["1", ""]  # NULL: an empty field


def test_a_statement_without_a_result_set_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "x.csv"
    spec = {"location": str(target), "local": str(target)}
    kept, written = sqlarchive.archive_result(Cursor(["Result"], []), spec, 5, tmp_path, str)
    assert (kept, written) == ([], False) and not target.exists()


def test_an_unwritable_target_is_an_archive_failure(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    target = tmp_path / "file" / "x.csv"  # its parent is a file
    spec = {"location": "/somewhere/x.csv", "local": str(target)}
    with pytest.raises(sqlarchive.ArchiveFailed, match="cannot write the result to /somewhere"):
        sqlarchive.archive_result(Cursor(["a"], [(1,)]), spec, 5, tmp_path, str)


def _job(path: str) -> JobSpec:
    return JobSpec("j-1", "SparkSql", "sql-execution", [], {ARCHIVE_PROPERTY: path})


def test_the_engine_places_a_local_archive_under_the_output_roots(tmp_path: Path) -> None:
    cluster = ClusterSpec("c", output_roots=(str(tmp_path),))
    spec, secrets = sql_engine._archive(_job(str(tmp_path / "a")), cluster, ["SELECT 1"])
    assert spec == {"location": f"{tmp_path}/a/j-1.csv", "local": str(tmp_path / "a" / "j-1.csv")}
    assert secrets == []
    with pytest.raises(EngineRefused, match="not under an allowed output root"):
        sql_engine._archive(_job("/etc"), cluster, ["SELECT 1"])
    with pytest.raises(EngineRefused, match="one statement"):
        sql_engine._archive(_job(str(tmp_path)), cluster, ["SELECT 1", "SELECT 2"])
    assert sql_engine._archive(JobSpec("j", "SparkSql", "n", [], {}), cluster, ["SELECT 1"]) == (
        None,
        [],
    )


def test_the_engine_hands_an_object_store_its_cluster_keys(tmp_path: Path) -> None:
    store: dict[str, Any] = {
        "fs.obs.endpoint": "http://127.0.0.1:9",
        "fs.obs.access.key": "AK-1",
        "fs.obs.secret.key": "SK-secret-1",
    }
    cluster = ClusterSpec("c", extra=store)
    spec, secrets = sql_engine._archive(_job("obs://bkt/res/"), cluster, ["SELECT 1"])
    assert spec is not None and spec["location"] == "obs://bkt/res/j-1.csv"
    assert spec["creds"]["secret_key"] == "SK-secret-1"  # type: ignore[index]
    assert "SK-secret-1" in secrets and "AK-1" in secrets
