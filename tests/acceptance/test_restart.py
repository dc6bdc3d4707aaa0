"""Kill -9 the real server with jobs queued, running and pending deletion; restart it.

Every job must be accounted for afterwards, running engines re-attached (not relaunched), the
deleted job purged and its engine dead, and no engine process left without a record.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import httpx
import pytest
from support import SigV4Auth
from support_server import BIN, ServerProcess
from support_supervisor import marked_pids

pytestmark = pytest.mark.spark

LONG_JOB = """
import time
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("long").getOrCreate()
print("started", flush=True)
time.sleep(600)
"""


def _wait(cond, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def test_kill9_restart_accounts_for_every_job(tmp_path) -> None:
    script = tmp_path / "long.py"
    script.write_text(LONG_JOB)
    srv = ServerProcess(tmp_path / "data").start()
    try:
        boot = srv.bootstrap
        env = {**os.environ, "MRS_JOBS_DATA_DIR": str(srv.data_dir)}
        cluster = subprocess.run(
            [str(BIN), "admin", "create-cluster", boot["project_id"], "--max-running", "2"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout.strip()
        base = f"{srv.endpoint}/v2/{boot['project_id']}/clusters/{cluster}/job-executions"
        client = httpx.Client(
            auth=SigV4Auth(boot["ak"], boot["sk"], boot["project_id"]), timeout=30
        )

        def submit(name: str) -> str:
            r = client.post(
                base, json={"job_type": "SparkSubmit", "job_name": name, "arguments": [str(script)]}
            )
            assert r.status_code == 200, r.text
            return r.json()["job_submit_result"]["job_id"]

        def show(job_id: str) -> httpx.Response:
            return client.get(f"{base}/{job_id}")

        def state(job_id: str) -> str:
            return show(job_id).json()["job_detail"]["job_state"]

        keep, doomed, q1, q2 = (submit(n) for n in ("keep", "doomed", "q1", "q2"))
        _wait(lambda: state(keep) == "RUNNING" and state(doomed) == "RUNNING", 120, "running")
        assert state(q1) == state(q2) == "SUBMITTED"
        keep_pids = set(marked_pids(keep))
        assert keep_pids

        r = client.post(f"{base}/batch-delete", json={"job_id_list": [doomed]})
        assert r.status_code == 202
        srv.stop(signal.SIGKILL)  # crash right after the delete was accepted
        assert set(marked_pids(keep)) == keep_pids  # engines outlive the service

        srv.start()
        base = f"{srv.endpoint}/v2/{boot['project_id']}/clusters/{cluster}/job-executions"
        client = httpx.Client(
            auth=SigV4Auth(boot["ak"], boot["sk"], boot["project_id"]), timeout=30
        )
        r = show(doomed)
        assert r.status_code == 400 and r.json()["error_code"] == "0176"
        _wait(lambda: marked_pids(doomed) == [], 30, "the deleted job's engine to die")
        assert not (srv.data_dir / "jobs" / doomed).exists() or _purged_soon(srv, doomed)
        # re-attached, not relaunched: same processes, still RUNNING
        assert state(keep) == "RUNNING"
        assert set(marked_pids(keep)) == keep_pids
        # the queued ones are still there (one may have taken the freed slot)
        assert {state(q1), state(q2)} <= {"SUBMITTED", "ACCEPTED", "RUNNING"}

        for job_id in (keep, q1, q2):
            assert client.post(f"{base}/{job_id}/kill").status_code == 202
        _wait(lambda: all(state(j) == "KILLED" for j in (keep, q1, q2)), 60, "KILLED")
        _wait(lambda: not any(marked_pids(j) for j in (keep, q1, q2)), 30, "no processes")
        listed = client.get(base, params={"limit": 100}).json()
        assert listed["total_record"] == 3
        assert {j["job_id"] for j in listed["job_list"]} == {keep, q1, q2}
    finally:
        srv.stop(signal.SIGKILL)
        for pid in (
            (p for j in os.listdir(srv.data_dir / "jobs") for p in marked_pids(j))
            if (srv.data_dir / "jobs").exists()
            else ()
        ):
            os.kill(pid, signal.SIGKILL)


def _purged_soon(srv: ServerProcess, job_id: str) -> bool:
    _wait(lambda: not (srv.data_dir / "jobs" / job_id).exists(), 20, "job dir purge")
    return True
