"""`mrs-jobs serve --workers 2` (MRS_JOBS_WORKERS=2): two API processes on one socket, the
supervisor in the parent. Both processes answer, a job submitted to either runs to its end
without waiting for the supervisor's poll, a killed API process is replaced, SIGTERM stops
everything, and `kill -9` of the parent leaves no API process behind. The real server
(tests/crash/serve_fake.py: jobs of tests/fake_engine.py) on SQLite and on a PostgreSQL schema.
"""

from __future__ import annotations

import http.client
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import support_server
from support import SigV4Auth
from support_db import pg_schema_url
from support_server import ServerProcess

pytestmark = pytest.mark.timeout(120)

SERVE_FAKE = Path(__file__).resolve().parent.parent / "crash" / "serve_fake.py"
TERMINAL = {"FINISHED", "FAILED", "KILLED"}
POLL_S = 10.0  # the supervisor's poll: a job picked up sooner was woken by the API process


def _wait(cond: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"not reached in {timeout} s: {what}")


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _api_processes(parent: int) -> set[int]:
    """The parent's live API processes (spawned by multiprocessing; not its resource tracker)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and b"spawn_main" in cmd and _alive(int(entry.name)):
            found.add(int(entry.name))
    return found


def _owner_of_connection(server_port: int, client_port: int, pids: set[int]) -> int | None:
    """Which of ``pids`` holds the server side of the loopback connection from client_port."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == (
            client_port
        ):
            inode = fields[9]
    if inode is None:
        return None
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if fd.readlink().name == f"socket:[{inode}]":
                    return pid
            except OSError:
                continue
    return None


def _serving_pids(endpoint: str, workers: set[int], attempts: int = 200) -> set[int]:
    """Open connections (kept open) until every API process has answered one of them."""
    host, port = endpoint.split("//", 1)[1].rsplit(":", 1)
    seen: set[int] = set()
    conns = []
    try:
        for _ in range(attempts):
            conn = http.client.HTTPConnection(host, int(port), timeout=10)
            conns.append(conn)
            conn.request("GET", "/health")
            assert conn.getresponse().read() == b'{"status":"ok"}'
            owner = _owner_of_connection(int(port), conn.sock.getsockname()[1], workers)
            if owner is not None:
                seen.add(owner)
            if seen == workers:
                break
    finally:
        for conn in conns:
            conn.close()
    return seen


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    if request.param == "sqlite":
        yield {}
        return
    with pg_schema_url("t_workers_") as url:
        yield {"MRS_JOBS_DATABASE_URL": url}


@pytest.fixture
def fake_serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wrapper = tmp_path / "serve-fake"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} {SERVE_FAKE}\n")
    wrapper.chmod(0o755)
    monkeypatch.setattr(support_server, "BIN", wrapper)


def _start(tmp_path: Path, env: dict[str, str]) -> ServerProcess:
    return ServerProcess(
        tmp_path / "data", MRS_JOBS_WORKERS="2", MRS_JOBS_POLL_INTERVAL=str(POLL_S), **env
    ).start()


def _submit_and_wait(server: ServerProcess) -> tuple[dict, float]:  # type: ignore[type-arg]
    boot = server.bootstrap
    auth = SigV4Auth(boot["ak"], boot["sk"], boot["project_id"])
    base = f"{server.endpoint}/v2/{boot['project_id']}/clusters/{boot['cluster_id']}"
    body = {
        "job_type": "SparkSubmit",
        "job_name": "workers",
        "arguments": ["fake", "--sleep", "0.2"],
    }
    started = time.monotonic()
    r = httpx.post(f"{base}/job-executions", json=body, auth=auth, timeout=10)
    assert r.status_code == 200, r.text
    job_id = r.json()["job_submit_result"]["job_id"]
    detail: dict = {}  # type: ignore[type-arg]

    def ended() -> bool:
        nonlocal detail
        got = httpx.get(f"{base}/job-executions/{job_id}", auth=auth, timeout=10)
        detail = got.json().get("job_detail", {})
        return detail.get("job_state") in TERMINAL

    _wait(ended, 30, "the job ended")
    return detail, time.monotonic() - started


def test_two_api_processes_serve_run_jobs_restart_and_stop(
    tmp_path: Path, store_env: dict[str, str], fake_serve: None
) -> None:
    server = _start(tmp_path, store_env)
    try:
        assert server.proc is not None
        parent = server.proc.pid
        _wait(lambda: len(_api_processes(parent)) == 2, 30, "two API processes")
        workers = _api_processes(parent)
        _wait(lambda: server.log.read_text().count("server.worker_started") == 2, 30, "started")
        assert _serving_pids(server.endpoint, workers) == workers

        # A job submitted to an API process is launched at once (the supervisor in the parent
        # is woken through the pipe), not at the supervisor's next poll, and runs to its end.
        detail, took = _submit_and_wait(server)
        assert (detail["job_state"], detail["job_result"]) == ("FINISHED", "SUCCEEDED"), detail
        assert took < POLL_S - 2, f"{took:.1f} s: the submit did not wake the supervisor"
        assert httpx.get(server.endpoint + "/ready", timeout=5).json()["supervisor"] == "ok"

        # A killed API process is replaced; the service keeps answering meanwhile.
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        _wait(lambda: len(_api_processes(parent) - workers) == 1, 30, "a replacement")
        assert httpx.get(server.endpoint + "/health", timeout=5).status_code == 200
        assert "server.worker_exited" in server.log.read_text()
        workers = _api_processes(parent)
        assert len(workers) == 2 and victim not in workers

        # SIGTERM to the parent: the API processes stop, then the supervisor, exit code 0.
        assert server.stop(signal.SIGTERM, timeout=40) == 0
        assert not any(_alive(p) for p in workers)
        assert "server.stopped signal=TERM" in server.log.read_text()
    finally:
        server.stop(signal.SIGKILL)


def test_kill_9_of_the_parent_ends_the_api_processes(tmp_path: Path, fake_serve: None) -> None:
    server = _start(tmp_path, {})
    try:
        assert server.proc is not None
        parent = server.proc.pid
        _wait(lambda: len(_api_processes(parent)) == 2, 30, "two API processes")
        workers = _api_processes(parent)
        assert server.stop(signal.SIGKILL) == -signal.SIGKILL
        _wait(lambda: not any(_alive(p) for p in workers), 5, "no API process left")
        with pytest.raises(httpx.HTTPError):
            httpx.get(server.endpoint + "/health", timeout=2)
    finally:
        server.stop(signal.SIGKILL)
