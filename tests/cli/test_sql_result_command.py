"""``mrs-jobs sql-result`` on answers of the API (a mock transport): every statement's rows,
a failed statement's index and error, and the exit code (3 when a statement failed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from mrs_jobs.cli import client
from mrs_jobs.cli.main import app

BOOT = {
    "endpoint": "http://127.0.0.1:1111",
    "project_id": "p1",
    "cluster_id": "c1",
    "ak": "AK1",
    "sk": "SK1",
}
PARSE_ERROR = "[PARSE_SYNTAX_ERROR] Syntax error at or near 'SELEC'. SQLSTATE: 42601"


@pytest.fixture
def answer(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """The ``sql_results`` the service answers with (set by each test)."""
    (tmp_path / "bootstrap.json").write_text(json.dumps(BOOT))
    for name in ("MRS_JOBS_ENDPOINT", "MRS_JOBS_TOKEN", "MRS_JOBS_PROFILE", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MRS_JOBS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    results: dict[str, Any] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path.endswith("/job-executions/j1/sql-result")
        return httpx.Response(202, json={"sql_results": results})

    class Mocked(client.ApiClient):
        def __init__(self, conn: Any, timeout: float = 30.0, transport: Any = None) -> None:
            super().__init__(conn, timeout, httpx.MockTransport(handler))

    monkeypatch.setattr(client, "ApiClient", Mocked)
    return results


def sql_result(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, ["sql-result", "j1", *args])


def test_a_failed_statement_is_printed_with_its_error_and_exits_3(answer: dict) -> None:
    answer.update({"0": [{"1": "1"}], "1": [{"result": "failed", "message": PARSE_ERROR}]})
    done = sql_result()
    assert done.exit_code == 3, done.output
    assert "Statement 0" in done.stdout and "1 row" in done.stdout  # the rows still shown
    assert "Statement 1: failed" in done.stdout and PARSE_ERROR in done.stdout
    assert "Statement 2" not in done.stdout
    assert "statement 1 failed" in done.stderr
    as_json = sql_result("--json")
    assert as_json.exit_code == 3
    assert json.loads(as_json.stdout) == {"sql_results": answer}


def test_statements_that_succeeded_exit_0(answer: dict) -> None:
    answer.update({"0": [{"result": "succeed"}], "1": [{"n": "7"}]})
    done = sql_result()
    assert done.exit_code == 0, done.output
    assert "Statement 0: succeed" in done.stdout and "Statement 1" in done.stdout
    assert "failed" not in done.output
    assert sql_result("--json").exit_code == 0
