"""The README's walkthrough, run as written against a real server.

The blocks marked ``<!-- readme-test: NAME -->`` in README.md are extracted verbatim and run
the way a new user runs them: from the clone's root, with the service's data directory at the
default ``~/.mrs-jobs`` (``HOME`` points at a scratch home whose ``.mrs-jobs`` is the server's
data directory) and no ``MRS_JOBS_*`` variable set. A block that raises, a command that fails
under ``bash -e``, or output other than the README promises fails the test.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mrs_acceptance import RunningServer, expect_error, start_server, stop_server

pytestmark = pytest.mark.spark

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
_BLOCK_RE = re.compile(r"<!-- readme-test: (\w+) -->\n```(\w+)\n(.*?)\n```", re.S)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server on a new user's defaults: its first cluster has no input or output roots (the
    suite's servers get the test temp root as one, which would refuse ``/tmp/pi.py``)."""
    saved = os.environ.pop("MRS_JOBS_BOOTSTRAP_OUTPUT_ROOTS", None)
    try:
        srv = start_server(tmp_path_factory.mktemp("readme"))
    finally:
        if saved is not None:
            os.environ["MRS_JOBS_BOOTSTRAP_OUTPUT_ROOTS"] = saved
    try:
        yield srv
    finally:
        stop_server(srv)


def readme_blocks() -> dict[str, str]:
    return {name: body for name, _lang, body in _BLOCK_RE.findall(README.read_text())}


def _user_env(server: RunningServer) -> dict[str, str]:
    """A new user's shell: their own HOME holding ~/.mrs-jobs, no MRS_JOBS_* settings."""
    default = server.home / ".mrs-jobs"
    if not default.exists():
        default.symlink_to(server.data_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MRS_JOBS_")}
    env["HOME"] = str(server.home)
    # `.venv/bin/...` in the README is this test run's venv, wherever the clone is.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _run(argv: list[str], server: RunningServer, stdin: str) -> str:
    done = subprocess.run(
        argv,
        input=stdin,
        cwd=ROOT,
        env=_user_env(server),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_readme_marks_its_walkthrough_blocks() -> None:
    assert set(readme_blocks()) == {"sdk", "curl", "sql"}


def test_the_sdk_example_runs_to_the_end(server: RunningServer) -> None:
    out = _run([sys.executable, "-"], server, readme_blocks()["sdk"])
    lines = out.splitlines()
    pi = next(line.split() for line in lines if line.startswith("pi "))
    assert pi[1:3] == ["FINISHED", "SUCCEEDED"], out
    assert pi[3].startswith("local-"), out
    assert "pi-stopped KILLED" in lines, out
    deleted = next(line.split() for line in lines if line.startswith("deleted "))
    assert len(deleted) == 3, out
    for job_id in deleted[1:]:
        expect_error(lambda j=job_id: server.show(j), 400, "0176")  # gone after the batch delete


def test_the_curl_walkthrough_and_the_sql_example_run_as_written(server: RunningServer) -> None:
    blocks = readme_blocks()
    script = "set -euo pipefail\n" + blocks["curl"] + "\n" + blocks["sql"] + "\n"
    out = _run(["bash", "-s"], server, script)
    assert '{"job_state":"FINISHED","job_result":"SUCCEEDED"}' in out, out
    assert "sum = 499500" in out, out
    sql = json.loads(out.strip().splitlines()[-1])
    assert sql["sql_results"]["2"] == [{"s": "3"}], out
