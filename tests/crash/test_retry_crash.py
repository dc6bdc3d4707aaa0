"""(ours) Retries survive ``kill -9`` of the real ``mrs-jobs serve`` between attempts: nothing is
lost, no attempt runs twice, and the service fails no job on its own.

Jobs that fail twice then succeed (tests/fake_engine.py ``--count-file``: a line appended at
each start to a file of the test's directory, an output root; ``--fail-times 2``) run with
``mrs.job.retries`` 3 and a backoff; the service is SIGKILLed while one of them waits in the
queue for its second attempt and again while one waits for its third, and restarted each time
on the same data directory. The engine's runs (shims) outlive the service, as in production;
the restarted one adopts them.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import httpx
import pytest
import support_server
from support import SigV4Auth
from support_server import ServerProcess
from support_supervisor import marked_pids

pytestmark = [pytest.mark.crash, pytest.mark.timeout(120)]

SERVE_FAKE = Path(__file__).resolve().parent / "serve_fake.py"
TERMINAL = {"FINISHED", "FAILED", "KILLED"}
RETRIED = ["fake", "--fail-times", "2", "--sleep", "1", "--count-file"]  # + the file
PROPS = {"mrs.job.retries": "3", "mrs.job.retry.delay": "2"}


class Client:
    """Signed calls to the server's job API; every 5xx is kept (there must be none)."""

    def __init__(self, server: ServerProcess) -> None:
        boot = server.bootstrap
        self.server = server
        self.auth = SigV4Auth(boot["ak"], boot["sk"], boot["project_id"])
        self.path = f"/v2/{boot['project_id']}/clusters/{boot['cluster_id']}/job-executions"
        self.errors: list[str] = []

    def call(self, method: str, tail: str = "", **kw: object) -> dict | None:  # type: ignore[type-arg]
        try:
            r = httpx.request(
                method, self.server.endpoint + self.path + tail, auth=self.auth, timeout=10, **kw
            )  # type: ignore[arg-type]
        except httpx.HTTPError:
            return None  # the server is down (killed on purpose)
        if r.status_code >= 500:
            self.errors.append(f"{r.status_code} {r.text[:200]}")
        return r.json() if r.status_code < 300 else None

    def submit(self, arguments: list[str], properties: dict[str, str]) -> str:
        body = {"job_type": "SparkSubmit", "job_name": "retry-crash", "arguments": arguments}
        answer = self.call("POST", json={**body, "properties": properties})
        assert answer is not None, self.errors
        return str(answer["job_submit_result"]["job_id"])

    def show(self, job_id: str) -> dict:  # type: ignore[type-arg]
        answer = self.call("GET", f"/{job_id}")
        return answer["job_detail"] if answer else {}

    def events(self, job_id: str) -> list[dict]:  # type: ignore[type-arg]
        answer = self.call("GET", f"/{job_id}/events")
        return answer["job_events"] if answer else []


def _wait(cond, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"not reached in {timeout} s: {what}")


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """``serve`` with the fake engine (tests/crash/serve_fake.py) behind ServerProcess."""
    wrapper = tmp_path / "serve-fake"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} {SERVE_FAKE}\n")
    wrapper.chmod(0o755)
    monkeypatch.setattr(support_server, "BIN", wrapper)
    srv = ServerProcess(tmp_path / "data").start()
    yield srv
    srv.stop()


def test_kill_9_between_attempts_loses_nothing_and_runs_no_attempt_twice(server) -> None:  # type: ignore[no-untyped-def]
    api = Client(server)
    count = server.data_dir.parent / "starts"
    retried = [api.submit([*RETRIED, str(count)], PROPS) for _ in range(3)]
    plain = api.submit(["fake", "--sleep", "0.5"], {})
    jobs = [*retried, plain]
    for attempt in (2, 3):  # SIGKILL while a job waits in the queue for this attempt
        _wait(
            lambda a=attempt: any(
                (d := api.show(j)).get("job_state") == "SUBMITTED" and d.get("attempt") == a
                for j in retried
            ),
            30,
            f"a job queued for attempt {attempt}",
        )
        assert server.stop(signal.SIGKILL) == -signal.SIGKILL
        server.start()
    _wait(lambda: all(api.show(j).get("job_state") in TERMINAL for j in jobs), 45, "all ended")

    shown = {j: api.show(j) for j in jobs}
    ended_badly = {
        j: (d["job_state"], d["job_result"], d["diagnostics"])
        for j, d in shown.items()
        if (d["job_state"], d["job_result"]) != ("FINISHED", "SUCCEEDED")
    }
    assert ended_badly == {}, "jobs the service failed on its own"
    assert shown[plain]["attempt"] == 1
    starts = count.read_text().splitlines()
    for job_id in retried:
        assert shown[job_id]["attempt"] == 3
        assert starts.count(job_id) == 3, "each attempt ran exactly once"
        reasons = [e["reason"] for e in api.events(job_id)]
        for n in (1, 2):
            assert sum(r.startswith(f"attempt {n} of 4 failed: ") for r in reasons) == 1
        assert marked_pids(job_id) == []
    assert api.errors == []
