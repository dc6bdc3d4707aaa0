"""Secret property values are never shown (issue 8; contract section 3).

A real server (JSON logs, access log on) runs jobs whose properties hold secrets, among them a
DistCp with object-store keys against an endpoint nobody listens on (it fails). Then every API
answer, the console, /metrics, /openapi.json, the server log, every file under the data dir
(except the store itself, which keeps the values for the run, and the key file), the
job_events and audit rows, and ``ps -eo args`` sampled the whole time are searched for the
secret values: none may appear.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from support import SigV4Auth

HERE = Path(__file__).resolve().parent
ENDED = {"FINISHED", "FAILED", "KILLED"}


def _secret(tag: str) -> str:
    return f"S3cr3t{tag}{uuid.uuid4().hex}"


SECRETS = {
    "fs.obs.secret.key": _secret("ObsSk"),
    "fs.obs.access.key": _secret("ObsAk"),
    "db.password": _secret("Pw"),
    "my.token": _secret("Tok"),
    "spark.hadoop.fs.s3a.access.key": _secret("S3Ak"),
    "spark.hadoop.fs.s3a.secret.key": _secret("S3Sk"),
}


class PsSampler(threading.Thread):
    """Every process's command line, sampled until stopped."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: set[str] = set()
        self.count = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
            self.samples.update(out.splitlines())
            self.count += 1
            time.sleep(0.02)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)


@pytest.fixture
def server(tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    log = tmp_path / "server.log"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MRS_JOBS_")},
        "MRS_JOBS_DATA_DIR": str(data),
        "MRS_JOBS_PORT": "0",
        "MRS_JOBS_POLL_INTERVAL": "0.05",
        "MRS_JOBS_KILL_GRACE_SECONDS": "1",
        "MRS_JOBS_LOG_FORMAT": "json",
        "MRS_JOBS_ACCESS_LOG": "true",
        "MRS_JOBS_LOG_LEVEL": "DEBUG",
        "HOME": str(tmp_path),
    }
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "serve_secrets.py")],
        env=env,
        stdout=open(log, "ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    endpoint = None
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and endpoint is None:
            assert proc.poll() is None, log.read_text()[-3000:]
            text = log.read_text(errors="replace")
            for marker in ("mrs-jobs is running at", "http://127.0.0.1:"):
                if marker in text:
                    cand = (
                        text.split(marker, 1)[1].split()[0]
                        if marker.startswith("mrs")
                        else "http://127.0.0.1:" + text.split(marker, 1)[1].split("/")[0].split()[0]
                    )
                    cand = cand.rstrip("\",'")
                    try:
                        if httpx.get(cand + "/health", timeout=1).status_code == 200:
                            endpoint = cand
                            break
                    except (httpx.HTTPError, httpx.InvalidURL):  # not listening yet
                        pass
            time.sleep(0.1)
        assert endpoint, log.read_text()[-3000:]
        boot = json.loads((data / "bootstrap.json").read_text())
        yield endpoint, boot, data, log
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _wait_ended(client: httpx.Client, base: str, job_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.get(f"{base}/{job_id}")
        assert r.status_code == 202, r.text
        job = r.json()["job_detail"]
        if job["job_state"] in ENDED:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not end: {job}")


def _leaks(text: str) -> list[str]:
    return [k for k, v in SECRETS.items() if v in text]


def test_secret_values_appear_nowhere(server, tmp_path: Path) -> None:
    endpoint, boot, data, log = server
    pid, cid = boot["project_id"], boot["cluster_id"]
    ak, sk = boot["ak"], boot["sk"]
    base = f"/v2/{pid}/clusters/{cid}/job-executions"
    client = httpx.Client(base_url=endpoint, auth=SigV4Auth(ak, sk, pid), timeout=30)
    seen: list[tuple[str, str]] = []  # (what, text) of everything the service showed

    def keep(what: str, r: httpx.Response) -> httpx.Response:
        seen.append((what, r.text))
        seen.append((what + " headers", json.dumps(dict(r.headers))))
        return r

    ps = PsSampler()
    ps.start()
    try:
        props = dict(SECRETS)
        props["spark.executor.memory"] = "1g"
        fake_ok = keep(
            "submit",
            client.post(
                base,
                json={
                    "job_type": "SparkSubmit",
                    "job_name": "with-secrets",
                    "arguments": ["fake", "--sleep", "1", "--print", "hello"],
                    "properties": props,
                },
            ),
        ).json()["job_submit_result"]["job_id"]
        fake_kill = keep(
            "submit",
            client.post(
                base,
                json={
                    "job_type": "SparkSubmit",
                    "job_name": "killed",
                    "arguments": ["fake", "--sleep", "30"],
                    "properties": props,
                },
            ),
        ).json()["job_submit_result"]["job_id"]
        obs = {
            "fs.obs.access.key": SECRETS["fs.obs.access.key"],
            "fs.obs.secret.key": SECRETS["fs.obs.secret.key"],
            "fs.obs.endpoint": "http://127.0.0.1:9",
            "db.password": SECRETS["db.password"],
        }
        distcp = keep(
            "submit distcp",
            client.post(
                base,
                json={
                    "job_type": "DistCp",
                    "job_name": "distcp-secrets",
                    # obs -> obs: the copy process starts (and fails to connect); a local target
                    # would be refused at build (this cluster has no output roots)
                    "arguments": ["obs://no-bucket/src/", "obs://no-bucket/dst/"],
                    "properties": obs,
                },
            ),
        )
        assert distcp.status_code == 200, distcp.text
        distcp_id = distcp.json()["job_submit_result"]["job_id"]

        # Errors whose request carried secrets.
        for body in (
            {"job_type": "Nope", "job_name": "x", "arguments": [], "properties": props},
            {"job_type": "SparkSubmit", "job_name": "x" * 200, "properties": props},
            {"job_type": "SparkSubmit", "job_name": "x", "properties": {**props, "bad": 1}},
            {"job_type": "SparkSubmit", "job_name": "x", "properties": [SECRETS["my.token"]]},
        ):
            r = keep("submit error", client.post(base, json=body))
            assert r.status_code == 400, r.text

        # Let the fake job run, then kill the long one while it runs.
        time.sleep(1.0)
        keep("kill", client.post(f"{base}/{fake_kill}/kill"))
        jobs = {j: _wait_ended(client, base, j) for j in (fake_ok, fake_kill, distcp_id)}
        assert jobs[distcp_id]["job_result"] == "FAILED", jobs[distcp_id]
        assert jobs[fake_kill]["job_result"] == "KILLED", jobs[fake_kill]
        time.sleep(0.5)  # let the supervisor finish its bookkeeping (secret files removed)

        for job_id in jobs:
            r = keep("show", client.get(f"{base}/{job_id}"))
            assert "******" in r.json()["job_detail"]["properties"]
            for kind in ("stdout", "stderr"):
                keep("log", client.get(f"{base}/{job_id}/log", params={"type": kind}))
            keep("sql-result", client.get(f"{base}/{job_id}/sql-result"))
        keep("list", client.get(base))
        keep("list", client.get(base, params={"job_name": "with-secrets"}))
        keep("clusters", client.get(f"/v1.1/{pid}/cluster_infos"))
        keep("cluster", client.get(f"/v1.1/{pid}/cluster_infos/{cid}"))
        for path in ("/metrics", "/openapi.json", "/health", "/ready", "/console/"):
            keep(path, httpx.get(endpoint + path))
        for name in ("index.html", "console.js", "console.css", "favicon.svg"):
            keep(name, httpx.get(f"{endpoint}/console/{name}"))

        # Secret files of ended jobs are gone.
        for job_id in jobs:
            for workdir in data.rglob(job_id):
                if workdir.is_dir():
                    for name in ("launch.json", "distcp.json", "sql.json"):
                        assert not (workdir / name).exists(), workdir / name

        # Batch delete: an audit row.
        keep("batch delete", client.post(f"{base}/batch-delete", json={"job_id_list": [fake_ok]}))
    finally:
        ps.stop()

    for what, text in seen:
        assert not _leaks(text), (what, _leaks(text), text[:500])
    assert ps.count > 10
    # The engine processes were really seen running.
    assert any("runners.distcp" in line for line in ps.samples)
    assert any("fake_engine.py" in line for line in ps.samples)
    leaked = [line for line in ps.samples if _leaks(line)]
    assert not leaked, leaked

    server_log = log.read_text(errors="replace")
    assert "with-secrets" in server_log or "http.request" in server_log  # the log is real
    assert not _leaks(server_log), _leaks(server_log)

    store_files = {"mrs-jobs.db", "mrs-jobs.db-wal", "mrs-jobs.db-shm", "secret.key"}
    checked = 0
    for path in data.rglob("*"):
        if path.is_file() and path.name not in store_files:
            assert not _leaks(path.read_text(errors="replace")), path
            checked += 1
    assert checked > 0
    db = data / "mrs-jobs.db"
    with sqlite3.connect(db) as conn:
        for table in ("job_events", "audit"):
            rows = conn.execute(f"SELECT * FROM {table}").fetchall()  # noqa: S608
            assert rows, table
            assert not _leaks(repr(rows)), (table, _leaks(repr(rows)))
        # The values are kept for the run (contract section 3) -- the one place they live.
        props_rows = conn.execute("SELECT properties FROM jobs").fetchall()
        assert props_rows
