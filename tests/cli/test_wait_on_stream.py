"""``mrs-jobs wait`` against a real server with the event stream: it returns within a second
of the job's end and the server's access log shows no polling of the job, only the long-polls
of the stream (PostgreSQL: an API-only server and ``mrs-jobs supervise`` with the fake engine,
as two processes)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import SigV4Auth
from support_server import BIN, ServerProcess
from test_supervise import Supervise

from mrs_jobs.store import Store
from mrs_jobs.store import jobs as job_store

pytestmark = pytest.mark.postgres

SHOW = "/v2/{project_id}/clusters/{cluster_id}/job-executions/{job_execution_id}"
EVENTS = "/v2/{project_id}/clusters/{cluster_id}/job-events"


@pytest.fixture
def served(store: Store, tmp_path: Path) -> Iterator[ServerProcess]:
    api = ServerProcess(
        tmp_path / "api",
        MRS_JOBS_DATABASE_URL=store.url,
        MRS_JOBS_RUN_SUPERVISOR="false",
        MRS_JOBS_LOG_FORMAT="json",
        MRS_JOBS_ACCESS_LOG="true",
    ).start()
    sup = Supervise(tmp_path / "sup", store.url).start()
    try:
        yield api
    finally:
        sup.stop()
        api.stop()


def _access(server: ServerProcess, offset: int) -> list[dict[str, object]]:
    lines = []
    for raw in server.log.read_bytes()[offset:].decode(errors="replace").splitlines():
        if raw.startswith("{"):
            line = json.loads(raw)
            if line.get("event") == "http.request":
                lines.append(line)
    return lines


@pytest.mark.parametrize("store", ["postgres"], indirect=True)
def test_wait_returns_within_a_second_of_the_end_without_polling_the_job(
    served: ServerProcess, store: Store
) -> None:
    boot = served.bootstrap
    base = f"{served.endpoint}/v2/{boot['project_id']}/clusters/{boot['cluster_id']}"
    auth = SigV4Auth(boot["ak"], boot["sk"], boot["project_id"])
    with httpx.Client(base_url=base, auth=auth, timeout=10) as http:
        body = {"job_type": "SparkSubmit", "job_name": "w", "arguments": ["--sleep", "4"]}
        r = http.post("/job-executions", json=body)
        assert r.status_code == 200, r.text
        job_id = r.json()["job_submit_result"]["job_id"]
        offset = served.log.stat().st_size
        env = {k: v for k, v in os.environ.items() if not k.startswith("MRS_JOBS_")}
        env.update(MRS_JOBS_DATA_DIR=str(served.data_dir), HOME=str(served.data_dir.parent))
        done = subprocess.run(
            [str(BIN), "wait", job_id], env=env, capture_output=True, text=True, timeout=60
        )
        ended_at = time.time()
    assert done.returncode == 0, done.stderr
    with store.read() as conn:
        job = job_store.get_job(conn, job_id)
    assert job is not None
    assert (job.state.value, job.result.value) == ("FINISHED", "SUCCEEDED")
    lag = ended_at - job.finished_ms / 1000
    assert 0 < lag < 1.0, lag
    assert f"{job_id} FINISHED SUCCEEDED" in done.stdout
    time.sleep(0.5)  # the server writes a request's access line once it has answered
    access = _access(served, offset)
    shows = [a for a in access if a["route"] == SHOW]
    polls = [a for a in access if a["route"] == EVENTS]
    # The wait reads the job when it begins and once it ended; the 4 s between are
    # long-polls (the first takes the cursor).
    assert len(shows) == 2, shows
    assert 2 <= len(polls) <= 4, polls
