"""The SQL job process's statement loop (runners/sql.py run_statements), on a fake cursor:
what it records for each statement, and for the first one that fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support_sql import PARSE_ERROR, run_fake

from mrs_jobs.engines.runners import sql as runner


def test_a_failed_statement_is_recorded_at_its_index_and_the_rest_do_not_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, results, ran = run_fake(monkeypatch, tmp_path, ["SELECT 1", "SELEC 2", "SELECT 3"])
    assert code == 1
    assert results == {
        "0": [{"1": "1"}],
        "1": [{"result": "failed", "message": PARSE_ERROR}],
    }
    assert ran == ["SELECT 1", "SELEC 2"]
    progress = json.loads((tmp_path / "progress.json").read_text())
    assert progress == {"done": 1, "total": 3}


def test_statements_that_all_succeed_have_no_failed_record(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, results, _ = run_fake(monkeypatch, tmp_path, ["SELECT 1", "SELECT 2"])
    assert code == 0
    assert results == {"0": [{"1": "1"}], "1": [{"2": "2"}]}


def test_the_first_statement_failing_is_recorded_alone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, results, ran = run_fake(
        monkeypatch, tmp_path, ["DROP TABLE nope", "SELECT 2"], error="no such table"
    )
    assert code == 1
    assert results == {"0": [{"result": "failed", "message": "no such table"}]}
    assert ran == ["DROP TABLE nope"]


def test_the_message_masks_secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    error = "bad option 'fs.s3a.secret.key'='S3cr3tValue42' for user mrs/srv-Passw0rd-9"
    _, results, _ = run_fake(
        monkeypatch,
        tmp_path,
        ["CREATE TABLE x"],
        error=error,
        password="srv-Passw0rd-9",
        mask=["S3cr3tValue42", "S3cr3t"],
    )
    message = results["0"][0]["message"]
    assert "S3cr3t" not in message and "Passw0rd" not in message
    assert message == "bad option 'fs.s3a.secret.key'='******' for user mrs/******"


def test_the_message_is_capped_at_4_kb(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    error = "Syntax error " + "é" * 5000  # multi-byte: the cut keeps whole characters
    _, results, _ = run_fake(monkeypatch, tmp_path, ["SELEC 1"], error=error)
    message = results["0"][0]["message"]
    assert len(message.encode("utf-8")) <= 4096
    assert message.startswith("Syntax error é") and message.endswith("[...]")
    assert runner.failed_record("short") == [{"result": "failed", "message": "short"}]


def test_the_message_keeps_the_error_and_drops_java_stack_frames(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    error = (
        "org.apache.hive.service.cli.HiveSQLException: Error running query: "
        "[PARSE_SYNTAX_ERROR] org.apache.spark.sql.catalyst.parser.ParseException: \n"
        "[PARSE_SYNTAX_ERROR] Syntax error at or near 'SELEC'. SQLSTATE: 42601 (line 1, pos 0)\n"
        "\n== SQL ==\nSELEC 2\n^^^\n\n"
        "\tat org.apache.spark.sql.hive.thriftserver.HiveThriftServerErrors$.runningQueryError"
        "(HiveThriftServerErrors.scala:43)\n"
        "\tat java.base/java.lang.Thread.run(Thread.java:840)\n"
        "Caused by: java.lang.IllegalStateException: inner\n"
        "\t... 12 more\n"
    )
    _, results, _ = run_fake(monkeypatch, tmp_path, ["SELEC 2"], error=error)
    message = results["0"][0]["message"]
    assert message.startswith("org.apache.hive.service.cli.HiveSQLException: Error running")
    assert "== SQL ==\nSELEC 2\n^^^" in message and "Caused by: java.lang." in message
    assert "\tat " not in message and "more" not in message
