"""The SQL job process's statement loop on a fake cursor (no Thrift server): what
``runners/sql.py`` leaves in a job directory for a list of statements."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mrs_jobs.engines.runners import sql as runner

__all__ = ["PARSE_ERROR", "FakeCursor", "run_fake"]

PARSE_ERROR = (
    "Error running query: [PARSE_SYNTAX_ERROR] Syntax error at or near 'SELEC'. SQLSTATE: 42601"
)


class FakeCursor:
    """Answers ``SELECT <n>`` with one row; anything else fails with ``error``."""

    def __init__(self, error: str) -> None:
        self.error = error
        self.ran: list[str] = []
        self.description: list[tuple] | None = None
        self._rows: list[tuple] = []

    def run(self, stmt: str) -> None:
        self.ran.append(stmt)
        words = stmt.split()
        if words[0] != "SELECT":
            raise RuntimeError(self.error)
        self.description = [(words[1], "INT_TYPE")]
        self._rows = [(int(words[1]),)]

    def fetchmany(self, n: int) -> list[tuple]:
        return self._rows[:n]


def run_fake(
    monkeypatch: pytest.MonkeyPatch,
    workdir: Path,
    statements: list[str],
    error: str = PARSE_ERROR,
    **spec: Any,
) -> tuple[int, dict[str, Any], list[str]]:
    """(exit code, the ``sql_results.json`` written, the statements that ran)."""
    monkeypatch.setattr(runner, "_run", lambda cursor, stmt: cursor.run(stmt))
    cursor = FakeCursor(error)
    code = runner.run_statements(cursor, {"statements": statements, **spec}, workdir)
    results = json.loads((workdir / "sql_results.json").read_text())
    return code, results, cursor.ran
