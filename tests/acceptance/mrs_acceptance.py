"""Acceptance helpers: the real ``mrs-jobs serve`` as a subprocess, driven by the official SDK.

``start_server`` runs the server on a fresh data dir and a free port (``conftest.py`` gives
each test module its own, module-scoped). The SDK writes ``~/.huaweicloud/application_id``
when it is imported, so it is imported here under a throwaway HOME, restored right after (the
SDK reads HOME for that file at import only).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

_SDK_HOME = tempfile.mkdtemp(prefix="mrs-jobs-sdk-home-")
atexit.register(shutil.rmtree, _SDK_HOME, ignore_errors=True)


@contextlib.contextmanager
def under_sdk_home() -> Iterator[None]:
    """Import the SDK inside this: it writes ~/.huaweicloud on import, so HOME is a throwaway
    directory meanwhile (restored after; the SDK reads HOME for that file at import only)."""
    saved = os.environ.get("HOME")
    os.environ["HOME"] = _SDK_HOME
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("HOME", None)
        else:
            os.environ["HOME"] = saved


with under_sdk_home():
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
    from huaweicloudsdkmrs.v2 import (
        CreateExecuteJobRequest,
        JobExecution,
        JobQueryBean,
        MrsClient,
        ShowSingleJobExeRequest,
    )

__all__ = [
    "TERMINAL",
    "under_sdk_home",
    "RunningServer",
    "SDK_HOME",
    "TIMINGS",
    "client_for",
    "expect_error",
    "group_members",
    "marked_processes",
    "start_server",
    "stop_server",
    "wait_until",
]

SDK_HOME = Path(_SDK_HOME)
TERMINAL = frozenset({"FINISHED", "FAILED", "KILLED"})
BIN = Path(sys.executable).parent
MRS_JOBS = BIN / "mrs-jobs"
STARTUP_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0

# Figures printed at the end of the run (see pytest_terminal_summary).
TIMINGS: dict[str, float] = {}


def client_for(endpoint: str, ak: str, sk: str, project_id: str) -> MrsClient:
    """The official SDK client, configured as CONTRACT.md section 11 says."""
    return (
        MrsClient.new_builder()
        .with_credentials(BasicCredentials(ak, sk, project_id))
        .with_endpoints([endpoint])
        .build()
    )


def expect_error(call: Callable[[], Any], status: int, code: str) -> ClientRequestException:
    """Run an SDK call that must fail with this HTTP status and MRS error_code."""
    with pytest.raises(ClientRequestException) as info:
        call()
    exc = info.value
    assert (exc.status_code, exc.error_code) == (status, code), (
        f"expected {status} {code}, got {exc.status_code} {exc.error_code}: {exc.error_msg}"
    )
    assert exc.error_msg, "error_msg must not be empty"
    assert exc.request_id, "X-Request-Id must be set on errors"
    return exc


def wait_until(what: str, probe: Callable[[], Any], timeout: float, interval: float = 0.1) -> Any:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, pgid) of a process, or None once it is gone."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()
    return fields[0].decode(), int(fields[2])


def _live(pid: int) -> bool:
    st = _stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def marked_processes(job_id: str) -> dict[int, int]:
    """Live pids whose environment carries ``MRS_JOBS_JOB_ID=<job_id>``, mapped to their pgid.

    Every process of a run inherits the marker, including ones that left the run's process
    group (PySpark's worker daemon calls setpgid), so this finds what a group kill might miss.
    """
    wanted = f"MRS_JOBS_JOB_ID={job_id}".encode()
    found: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            env = Path(f"/proc/{name}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if wanted in env:
            st = _stat(int(name))
            if st is not None and st[0] not in ("Z", "X"):
                found[int(name)] = st[1]
    return found


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) pids in process group ``pgid``."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None and st[1] == pgid and st[0] not in ("Z", "X"):
                out.append(int(name))
    return out


@dataclass
class RunningServer:
    """One ``mrs-jobs serve`` subprocess and what it wrote on start."""

    proc: subprocess.Popen[bytes]
    data_dir: Path
    home: Path
    stdout_path: Path
    stderr_path: Path
    boot: dict[str, str]
    startup_s: float
    submitted: set[str] = field(default_factory=set)
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return self.boot["endpoint"]

    @property
    def project_id(self) -> str:
        return self.boot["project_id"]

    @property
    def cluster_id(self) -> str:
        return self.boot["cluster_id"]

    @property
    def bootstrap_path(self) -> Path:
        return self.data_dir / "bootstrap.json"

    def client(self, ak: str | None = None, sk: str | None = None) -> MrsClient:
        return client_for(
            self.endpoint, ak or self.boot["ak"], sk or self.boot["sk"], self.project_id
        )

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def env(self) -> dict[str, str]:
        """The environment of the server and of admin commands on its store."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("MRS_JOBS_")}
        env.update(
            HOME=str(self.home),
            MRS_JOBS_DATA_DIR=str(self.data_dir),
            MRS_JOBS_HOST="127.0.0.1",
            MRS_JOBS_PORT="0",
            MRS_JOBS_POLL_INTERVAL="0.1",
            MRS_JOBS_KILL_GRACE_SECONDS="3",
        )
        roots = os.environ.get("MRS_JOBS_BOOTSTRAP_OUTPUT_ROOTS")  # tests/conftest.py
        if roots:
            env["MRS_JOBS_BOOTSTRAP_OUTPUT_ROOTS"] = roots
        env.update(self.extra_env)
        return env

    def admin(self, *args: str) -> str:
        """Run ``mrs-jobs admin ...`` against this server's store; return its stdout."""
        done = subprocess.run(
            [str(MRS_JOBS), "admin", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, f"admin {args} failed: {done.stderr}"
        return done.stdout.strip()

    def job_dir(self, job_id: str) -> Path:
        return self.data_dir / "jobs" / job_id

    def store_pid(self, job_id: str) -> int | None:
        """The run's process-group leader (the shim) as recorded in the store."""
        with sqlite3.connect(self.data_dir / "mrs-jobs.db", timeout=10) as conn:
            row = conn.execute("SELECT pid FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return None if row is None else row[0]

    # -- SDK shortcuts -----------------------------------------------------------------------
    def submit(
        self,
        arguments: list[str],
        name: str = "acceptance",
        *,
        client: MrsClient | None = None,
        cluster_id: str | None = None,
        properties: dict[str, str] | None = None,
        job_type: str = "SparkSubmit",
    ) -> str:
        resp = (client or self.client()).create_execute_job(
            CreateExecuteJobRequest(
                cluster_id=cluster_id or self.cluster_id,
                body=JobExecution(
                    job_type=job_type,
                    job_name=name,
                    arguments=arguments,
                    properties=properties,
                ),
            )
        )
        assert resp.job_submit_result.state == "COMPLETE"
        job_id = resp.job_submit_result.job_id
        self.submitted.add(job_id)
        return job_id

    def show(self, job_id: str, cluster_id: str | None = None) -> JobQueryBean:
        resp = self.client().show_single_job_exe(
            ShowSingleJobExeRequest(
                cluster_id=cluster_id or self.cluster_id, job_execution_id=job_id
            )
        )
        return resp.job_detail

    def wait_state(
        self,
        job_id: str,
        states: frozenset[str] | set[str],
        timeout: float,
        cluster_id: str | None = None,
    ) -> JobQueryBean:
        def probe() -> JobQueryBean | None:
            detail = self.show(job_id, cluster_id)
            if detail.job_state in states:
                return detail
            if detail.job_state in TERMINAL:
                pytest.fail(
                    f"job {job_id} ended {detail.job_state}/{detail.job_result} while waiting "
                    f"for {sorted(states)}; stderr.log:\n{self._tail(job_id)}"
                )
            return None

        return wait_until(f"job {job_id} to reach {sorted(states)}", probe, timeout, 0.2)

    def diagnostics(self, job_id: str) -> str:
        """The job's ``diagnostics`` (ours) as the official SDK receives it: its models keep
        MRS's fields only, its response keeps the whole answer."""
        resp = self.client().show_single_job_exe(
            ShowSingleJobExeRequest(cluster_id=self.cluster_id, job_execution_id=job_id)
        )
        return str(resp.to_json_object()["job_detail"]["diagnostics"])

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``mrs-jobs ARGS`` as a user on this machine runs it (connection from the data dir)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("MRS_JOBS_")}
        env.update(HOME=str(self.home), MRS_JOBS_DATA_DIR=str(self.data_dir), COLUMNS="240")
        return subprocess.run(
            [str(MRS_JOBS), *args], env=env, capture_output=True, text=True, timeout=60
        )

    def assert_diagnosed(self, job_id: str, *words: str) -> str:
        """The ended job's diagnostics hold ``words`` through the SDK, ``show`` and ``wait``
        (which exits 3 or 4 and prints them); returns the diagnostics."""
        found = self.diagnostics(job_id)
        for word in words:
            assert word in found, (word, found, self._tail(job_id))
        shown = self.cli("show", job_id)
        assert shown.returncode == 0, shown.stderr
        assert "Diagnostics" in shown.stdout and all(w in shown.stdout for w in words), shown
        waited = self.cli("wait", job_id)
        assert waited.returncode in (3, 4), waited
        assert all(w in waited.stderr for w in words), waited.stderr
        return found

    def _tail(self, job_id: str) -> str:
        try:
            return (self.job_dir(job_id) / "stderr.log").read_text(errors="replace")[-3000:]
        except OSError:
            return "(no stderr.log)"


def start_server(base: Path, extra_env: dict[str, str] | None = None) -> RunningServer:
    data_dir, home = base / "data", base / "home"
    home.mkdir(parents=True)
    stdout_path, stderr_path = base / "server.stdout", base / "server.stderr"
    server = RunningServer(
        proc=None,  # type: ignore[arg-type]
        data_dir=data_dir,
        home=home,
        stdout_path=stdout_path,
        stderr_path=stderr_path,
        boot={},
        startup_s=0.0,
        extra_env=dict(extra_env or {}),
    )
    with open(stdout_path, "wb") as out, open(stderr_path, "wb") as err:
        started = time.monotonic()
        server.proc = subprocess.Popen(
            [str(MRS_JOBS), "serve"],
            env=server.env(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
    try:
        boot_file = data_dir / "bootstrap.json"
        deadline = started + STARTUP_TIMEOUT_S
        while True:
            if server.proc.poll() is not None:
                raise RuntimeError(
                    f"mrs-jobs serve exited with {server.proc.returncode}:\n{server.stderr()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"mrs-jobs serve did not come up:\n{server.stderr()}")
            if not server.boot and boot_file.exists():
                server.boot = json.loads(boot_file.read_text())
            if server.boot:
                try:
                    r = httpx.get(f"{server.endpoint}/health", timeout=1.0)
                    if r.status_code == 200:
                        break
                except httpx.TransportError:
                    pass
            time.sleep(0.02)
        server.startup_s = time.monotonic() - started
    except BaseException:
        stop_server(server)
        raise
    return server


def stop_server(server: RunningServer) -> int | None:
    """SIGTERM, then SIGKILL if it does not exit; also kill any engine run left behind."""
    proc = server.proc
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    # Engine runs outlive the service by design (re-attached on restart): a test that failed
    # half-way must not leave a two-minute Spark job behind.
    job_ids = set(server.submitted)
    jobs_dir = server.data_dir / "jobs"
    if jobs_dir.is_dir():
        job_ids.update(p.name for p in jobs_dir.iterdir())
    for job_id in job_ids:
        for pgid in set(marked_processes(job_id).values()):
            try:
                os.killpg(pgid, signal.SIGKILL)
            except OSError:
                pass
    return proc.returncode
