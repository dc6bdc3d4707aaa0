"""`mrs-jobs serve` first run, the single-writer lock, and the admin commands."""

from __future__ import annotations

import os
import stat
import subprocess

import httpx
import pytest
from support_server import BIN, ServerProcess


@pytest.fixture
def server(tmp_path):
    srv = ServerProcess(tmp_path / "data").start()
    yield srv
    srv.stop()


def _admin(data_dir, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MRS_JOBS_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [str(BIN), "admin", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_first_run_writes_private_bootstrap_and_prints_snippet(server) -> None:
    path = server.data_dir / "bootstrap.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    boot = server.bootstrap
    assert set(boot) == {"endpoint", "project_id", "cluster_id", "ak", "sk"}
    assert boot["endpoint"] == server.endpoint
    out = server.log.read_text()
    assert "BasicCredentials" in out and boot["cluster_id"] in out
    assert boot["sk"] not in out  # the SK stays in the 0600 file


def test_second_server_on_same_sqlite_store_is_refused(server) -> None:
    env = {**server.env}
    proc = subprocess.run([str(BIN), "serve"], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "SQLite allows one server" in (proc.stderr + proc.stdout)
    assert httpx.get(server.endpoint + "/health").status_code == 200  # first one unharmed


def test_restart_keeps_identity(server) -> None:
    first = server.bootstrap
    server.stop()
    server.start()
    assert server.bootstrap["project_id"] == first["project_id"]
    assert server.bootstrap["sk"] == first["sk"]


def test_admin_token_and_project_isolation(server) -> None:
    boot = server.bootstrap
    token = _admin(
        server.data_dir, "create-token", boot["project_id"], "--ttl", "600", "--user", "bob"
    ).stdout.strip()
    assert token.startswith("mrsj_")
    base = f"{server.endpoint}/v2/{boot['project_id']}/clusters/{boot['cluster_id']}"
    r = httpx.get(
        f"{base}/job-executions",
        headers={"X-Auth-Token": token, "Content-Type": "application/json"},
    )
    assert r.status_code == 202 and r.json() == {"total_record": 0, "job_list": []}
    r = httpx.get(f"{base}/job-executions", headers={"X-Auth-Token": token + "x"})
    assert r.status_code == 401 and r.json()["error_code"] == "APIGW.0301"

    other = _admin(server.data_dir, "create-project", "team-b").stdout.strip()
    cluster = _admin(server.data_dir, "create-cluster", other, "--max-running", "1").stdout
    cluster = cluster.strip()
    other_token = _admin(server.data_dir, "create-token", other).stdout.strip()
    # team-b's token on the default project's path: 403; on its own cluster: fine.
    r = httpx.get(f"{base}/job-executions", headers={"X-Auth-Token": other_token})
    assert r.status_code == 403 and r.json()["error_code"] == "12000052"
    r = httpx.get(
        f"{server.endpoint}/v2/{other}/clusters/{cluster}/job-executions",
        headers={"X-Auth-Token": other_token},
    )
    assert r.status_code == 202
    # the default project's cluster is unknown to team-b
    r = httpx.get(
        f"{server.endpoint}/v2/{other}/clusters/{boot['cluster_id']}/job-executions",
        headers={"X-Auth-Token": other_token},
    )
    assert r.status_code == 400 and r.json()["error_code"] == "12000003"


def test_admin_errors_are_clear(tmp_path) -> None:
    r = _admin(tmp_path / "d", "create-aksk", "nosuchproject")
    assert r.returncode == 2 and "does not exist" in r.stderr
    r = _admin(tmp_path / "d", "create-project", "x", "--project-id", "bad id!")
    assert r.returncode == 2 and "project_id" in r.stderr
