"""A cluster's SQL server whose engine died is not handed to a job, even while its shim, which
outlives the engine by a moment, is still alive (found by the crash harness: a job claimed
0.3 s after the server's JVM was killed got the dead port and waited 180 s for it)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mrs_jobs.engines.thrift import SECRET_FILE, ThriftServers
from mrs_jobs.runtime import jobdir
from mrs_jobs.runtime.process import read_start_ticks


@pytest.fixture
def shim() -> Iterator[subprocess.Popen[bytes]]:
    """A live process standing for the server's shim."""
    proc = subprocess.Popen(["sleep", "60"])
    yield proc
    proc.kill()
    proc.wait()


def _server(tmp_path: Path, shim: subprocess.Popen[bytes]) -> ThriftServers:
    servers = ThriftServers(tmp_path / "clusters", "installation")
    directory = servers.directory("c1")
    directory.mkdir(parents=True)
    (directory / SECRET_FILE).write_text("a-password")
    state = {
        "pid": shim.pid,
        "start_ticks": read_start_ticks(shim.pid),
        "port": 41234,
        "ui_port": 41235,
        "auth": "custom",
    }
    (directory / "state.json").write_text(json.dumps(state))
    return servers


def test_a_server_whose_shim_runs_is_handed_out(tmp_path: Path, shim) -> None:  # type: ignore[no-untyped-def]
    servers = _server(tmp_path, shim)
    endpoint = servers.running("c1")
    assert endpoint is not None and endpoint.port == 41234


def test_a_server_whose_engine_exited_is_not(tmp_path: Path, shim) -> None:  # type: ignore[no-untyped-def]
    servers = _server(tmp_path, shim)
    exit_record = {"returncode": None, "signal": 9, "finished_ms": 1}
    (servers.directory("c1") / jobdir.EXIT).write_text(json.dumps(exit_record))
    assert servers.running("c1") is None  # ensure() starts a new one instead
    assert "c1" not in servers.known_clusters()
