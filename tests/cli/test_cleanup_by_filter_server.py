"""``kill`` and ``delete`` by filter as a user runs them: subprocesses against a real server.

The jobs go to a cluster without running slots, so they stay SUBMITTED (a queued job can be
killed at once). The prompt is answered on a pseudo-terminal.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from support_server import BIN, ServerProcess


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    server = ServerProcess(tmp_path_factory.mktemp("cleanup") / "data").start()
    yield server
    server.stop()


def run(
    srv: ServerProcess, *args: str, answer: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``mrs-jobs ARGS`` with the server's bootstrap as the connection; stdin is /dev/null or
    a terminal with ``answer`` typed already."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MRS_JOBS_")}
    home = Path(srv.data_dir).parent / "home"
    env.update(MRS_JOBS_DATA_DIR=str(srv.data_dir), HOME=str(home), XDG_CONFIG_HOME=str(home))
    if answer is None:
        return subprocess.run(
            [str(BIN), *args], env=env, capture_output=True, text=True,
            stdin=subprocess.DEVNULL, timeout=60,
        )  # fmt: skip
    master, slave = pty.openpty()
    try:
        os.write(master, answer.encode())
        return subprocess.run(
            [str(BIN), *args], env=env, capture_output=True, text=True, stdin=slave, timeout=60
        )
    finally:
        os.close(slave)
        os.close(master)


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    return str(proc.stdout)


def test_kill_then_delete_by_filter_against_a_server(srv: ServerProcess) -> None:
    project = srv.bootstrap["project_id"]
    cluster = ok(
        run(srv, "admin", "create-cluster", project, "--name", "idle", "--max-running", "0")
    ).strip()
    tag = f"sweep-{uuid.uuid4().hex[:6]}"
    c = ("--cluster", cluster)
    with ThreadPoolExecutor(max_workers=6) as pool:
        ids = set(
            pool.map(
                lambda i: ok(
                    run(srv, "submit", *c, "-t", "SparkSubmit", "-n", f"{tag}-{i}", "-q")
                ).strip(),
                range(6),
            )
        )
    keeper = ok(run(srv, "submit", *c, "-t", "SparkSubmit", "-n", "keeper", "-q")).strip()

    def listed(*filters: str) -> dict[str, str]:
        data = json.loads(ok(run(srv, "list", *c, "--json", "--limit", "100", *filters)))
        return {j["job_id"]: j["job_state"] for j in data["job_list"]}

    declined = run(srv, "delete", *c, "--name-contains", tag, answer="n\n")
    assert declined.returncode == 2, declined.stderr
    assert f"6 job(s) match --name-contains {tag} (6 live, killed first)" in declined.stdout
    assert "Delete these 6 job(s)?" in declined.stderr and "Nothing deleted." in declined.stderr
    bad = run(srv, "kill", *c, "--name-contains", tag, "--before", "3 days")
    assert bad.returncode == 2 and "--before" in bad.stderr
    assert listed("--name-contains", tag) == dict.fromkeys(ids, "SUBMITTED")

    killed = run(srv, "kill", *c, "--name-contains", tag, "--yes")
    assert "Kill requested for 6 job(s); 0 already ended" in ok(killed)
    assert "Killing" in killed.stderr and "6/6" in killed.stderr
    assert listed("--name-contains", tag) == dict.fromkeys(ids, "KILLED")

    dry = run(srv, "delete", *c, "--state", "KILLED", "--dry-run")
    assert "Dry run: would delete 6 job(s); nothing changed." in ok(dry)
    deleted = run(srv, "delete", *c, "--state", "KILLED", "--yes")
    assert "Deleted 6 job(s); 0 already gone; 0 failed." in ok(deleted)
    assert listed() == {keeper: "SUBMITTED"}
    nothing = run(srv, "delete", *c, "--state", "KILLED", "--yes")
    assert "No jobs match --state KILLED; nothing to delete." in ok(nothing)
