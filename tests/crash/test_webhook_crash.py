"""(ours) Webhook deliveries survive ``kill -9`` of the real ``mrs-jobs serve``: nothing lost,
no event invented, a repeat only under the same ``webhook-id``.

Jobs of the fake engine (tests/crash/serve_fake.py) run while a subscription sends every job
event to a receiver on 127.0.0.1 (tests/support_webhooks.py) that answers after 0.3 s. The
service is SIGKILLed ten times, each time just after a request arrived (so an attempt was
sent and not yet recorded) and restarted on the same data directory. In the end the
receiver's events, by (job, event id, type), equal the store's, every signature verifies,
each job's events first arrived in order, and every event came under one ``webhook-id``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import httpx
import pytest
import support_server
from sqlalchemy import select
from support import SigV4Auth
from support_server import ServerProcess
from support_webhooks import Received, Receiver, check_signature, stored_events

from mrs_jobs.store import Store
from mrs_jobs.store import webhooks as wh_store
from mrs_jobs.store.tables import job_events

pytestmark = [pytest.mark.crash, pytest.mark.timeout(240)]

SERVE_FAKE = Path(__file__).resolve().parent / "serve_fake.py"
EVENTS = ["job.submitted", "job.accepted", "job.started", "job.succeeded", "job.failed"]
KILLS = 10
ENV = {
    "MRS_JOBS_WEBHOOK_ALLOW_PRIVATE": "true",
    "MRS_JOBS_WEBHOOK_RETRY_BASE_SECONDS": "0.5",
    "MRS_JOBS_WEBHOOK_RETRY_MAX_SECONDS": "2",
    "MRS_JOBS_WEBHOOK_TIMEOUT_SECONDS": "1",
}


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    wrapper = tmp_path / "serve-fake"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} {SERVE_FAKE}\n")
    wrapper.chmod(0o755)
    monkeypatch.setattr(support_server, "BIN", wrapper)
    srv = ServerProcess(tmp_path / "data", **ENV).start()
    yield srv
    srv.stop()


def _submit(server: ServerProcess, n: int) -> None:
    boot = server.bootstrap
    auth = SigV4Auth(boot["ak"], boot["sk"], boot["project_id"])
    path = f"/v2/{boot['project_id']}/clusters/{boot['cluster_id']}/job-executions"
    for i in range(n):
        args = ["fake", "--sleep", "0.3"] + (["--exit", "1"] if i % 3 == 2 else [])
        body = {"job_type": "SparkSubmit", "job_name": "webhook-crash", "arguments": args}
        r = httpx.post(server.endpoint + path, json=body, auth=auth, timeout=10)
        assert r.status_code == 200, r.text


def _create_webhook(server: ServerProcess, url: str) -> str:
    """``mrs-jobs admin create-webhook`` against the running service's data directory."""
    out = subprocess.run(
        [
            str(Path(sys.executable).parent / "mrs-jobs"),
            "admin",
            "create-webhook",
            server.bootstrap["project_id"],
            "--url",
            url,
            "--events",
            ",".join(EVENTS),
        ],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return str(json.loads(out.stdout)["secret"])


def _store_events(store: Store, project: str) -> set[tuple[str, str, str]]:
    return {
        (job, seq, kind) for (job, seq), kind in stored_events(store, project, set(EVENTS)).items()
    }


def _settled(store: Store, jobs_expected: int) -> bool:
    with store.read() as conn:
        ended = conn.execute(
            select(job_events.c.job_id).where(job_events.c.to_state.in_(["FINISHED", "FAILED"]))
        ).all()
        return len(ended) >= jobs_expected and wh_store.oldest_undelivered_ms(conn) is None


def test_kill_9_during_deliveries_loses_and_invents_nothing(server: ServerProcess) -> None:
    arrived = threading.Event()

    def answer(r: Received) -> tuple[int, float]:
        arrived.set()
        return 200, 0.3

    with Receiver(answer) as rx:
        secret = _create_webhook(server, rx.url)
        per_round = 6
        for _ in range(KILLS):
            arrived.clear()
            _submit(server, per_round)
            assert arrived.wait(30), "no delivery reached the receiver"
            time.sleep(0.05)  # the attempt is on the wire, its answer 0.25 s away
            assert server.stop(signal.SIGKILL) == -signal.SIGKILL
            server.start()
        store = Store(f"sqlite:///{server.data_dir / 'mrs-jobs.db'}")
        try:
            deadline = time.monotonic() + 90
            while not _settled(store, KILLS * per_round):
                assert time.monotonic() < deadline, "jobs or deliveries did not settle"
                time.sleep(0.5)
            expected = _store_events(store, server.bootstrap["project_id"])
        finally:
            store.dispose()
        got = rx.snapshot()

    assert len({j for j, _, _ in expected}) == KILLS * per_round
    assert all(check_signature(secret, r) for r in got)
    by_msg: dict[str, str] = {}
    msg_of: dict[tuple[str, str, str], str] = {}
    first_seqs: dict[str, list[int]] = defaultdict(list)
    for r in sorted(got, key=lambda x: x.at):
        if r.msg_id in by_msg:
            assert r.body == by_msg[r.msg_id], "a repeat with another body"
            continue
        by_msg[r.msg_id] = r.body
        data = r.event["data"]
        key = (data["job_id"], data["event_id"], r.event["type"])
        assert key not in msg_of, f"one event under two webhook-ids: {key}"
        msg_of[key] = r.msg_id
        first_seqs[data["job_id"]].append(int(data["event_id"]))
    received = set(msg_of)
    assert received - expected == set(), "events the store never recorded"
    assert expected - received == set(), "events lost"
    assert all(seqs == sorted(seqs) for seqs in first_seqs.values()), "out of order"
    repeats = len(got) - len(by_msg)
    print(f"\n{len(expected)} events, {len(got)} requests, {repeats} repeats over {KILLS} kills")
    assert repeats >= 1, "no kill fell between a send and its record"
