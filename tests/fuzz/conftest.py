"""Fixtures of the fuzz suites: the API tests' ``api`` fixture, and a summary of the cases run."""

from __future__ import annotations

from typing import Any

from api.conftest import api  # noqa: F401 - the API tests' fixture, used here too
from fuzz_support import FUZZ_CODES, FUZZ_STATS


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FUZZ_STATS:
        return
    total = sum(sum(c.values()) for c in FUZZ_STATS.values())
    terminalreporter.write_sep("-", f"schemathesis: {total} cases")
    for (db, op, mode), statuses in sorted(FUZZ_STATS.items()):
        shown = ", ".join(f"{s}x{n}" for s, n in sorted(statuses.items()))
        terminalreporter.write_line(f"{db:8} {mode:8} {op:55} {sum(statuses.values()):4}  {shown}")
    for db, codes in sorted(FUZZ_CODES.items()):
        shown = ", ".join(f"{c}x{n}" for c, n in sorted(codes.items()))
        terminalreporter.write_line(f"{db:8} error codes: {shown}")
