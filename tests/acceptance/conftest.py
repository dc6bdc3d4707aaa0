"""Each acceptance module gets its own real server; timings are printed at the end of the run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from mrs_acceptance import TIMINGS, RunningServer, start_server, stop_server


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    srv = start_server(tmp_path_factory.mktemp("server"))
    TIMINGS[f"server start -> /health answering ({request.module.__name__})"] = srv.startup_s
    try:
        yield srv
    finally:
        stop_server(srv)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not TIMINGS:
        return
    terminalreporter.section("mrs-jobs acceptance timings")
    for name, seconds in TIMINGS.items():
        terminalreporter.write_line(f"{name}: {seconds:.2f} s")
