"""Two real ``mrs-jobs serve`` processes on one PostgreSQL: a change made through one reaches
an SSE client and a long-poll of the other within a second (each server's hub reads the
projects' cursors from the database; nothing is sent between the servers)."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import SigV4Auth
from support_server import ServerProcess

from mrs_jobs.store import Store

pytestmark = pytest.mark.postgres


@pytest.fixture
def two_servers(store: Store, tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    env = {"MRS_JOBS_DATABASE_URL": store.url, "MRS_JOBS_RUN_SUPERVISOR": "false"}
    a = ServerProcess(tmp_path / "a", **env).start()
    # The second instance needs the first one's SK-sealing key (every instance on one store).
    b = ServerProcess(
        tmp_path / "b", **env, MRS_JOBS_SECRET_KEY_FILE=str(tmp_path / "a" / "secret.key")
    )
    try:
        b.start()
        yield a, b
    finally:
        b.stop()
        a.stop()


def _client(server: ServerProcess, boot: dict[str, str]) -> httpx.Client:
    return httpx.Client(
        base_url=f"{server.endpoint}/v2/{boot['project_id']}/clusters/{boot['cluster_id']}",
        auth=SigV4Auth(boot["ak"], boot["sk"], boot["project_id"]),
        timeout=30,
    )


def _sse_reader(client: httpx.Client, out: queue.Queue[Any], opened: threading.Event) -> None:
    headers = {"Accept": "text/event-stream"}
    with client.stream("GET", "/job-events", params={"after": "now"}, headers=headers) as r:
        assert r.status_code == 200
        opened.set()
        for line in r.iter_lines():
            if line.startswith("data: "):
                out.put((time.monotonic(), json.loads(line[6:])))
            if line.startswith("data: ") and json.loads(line[6:])["type"] == "job.killed":
                return


@pytest.mark.parametrize("store", ["postgres"], indirect=True)
def test_a_change_through_one_server_reaches_the_others_clients_within_a_second(
    two_servers: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = two_servers
    boot = a.bootstrap
    with _client(a, boot) as on_a, _client(b, boot) as on_b, _client(b, boot) as sse_b:
        got: queue.Queue[Any] = queue.Queue()
        opened = threading.Event()
        reader = threading.Thread(target=_sse_reader, args=(sse_b, got, opened), daemon=True)
        reader.start()
        assert opened.wait(10)
        cursor = on_b.get("/job-events", params={"after": "now"}).json()["next_cursor"]

        polled: list[Any] = []

        def long_poll() -> None:
            r = on_b.get("/job-events", params={"after": cursor, "wait": "30"})
            polled.append((time.monotonic(), r.json()))

        poller = threading.Thread(target=long_poll)
        poller.start()
        time.sleep(0.5)  # both wait on b
        body = {"job_type": "SparkSubmit", "job_name": "far", "arguments": ["/a.py"]}
        began = time.monotonic()
        r = on_a.post("/job-executions", json=body)
        assert r.status_code == 200, r.text
        job_id = r.json()["job_submit_result"]["job_id"]
        poller.join(10)
        at, page = polled[0]
        assert at - began < 1.0, at - began
        assert page["events"][0]["data"]["job_id"] == job_id
        seen = [got.get(timeout=5) for _ in range(3)]
        assert seen[0][0] - began < 1.0, seen[0][0] - began
        assert [e["type"] for _, e in seen] == ["job.created", "job.saving", "job.submitted"]

        began = time.monotonic()
        assert on_a.post(f"/job-executions/{job_id}/kill").status_code == 202
        at, killed = got.get(timeout=5)
        assert killed["type"] == "job.killed" and killed["data"]["job_id"] == job_id
        assert at - began < 1.0, at - began
        reader.join(5)


@pytest.mark.parametrize("store", ["postgres"], indirect=True)
def test_open_streams_end_when_the_server_stops(
    two_servers: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = two_servers
    ended: list[float] = []

    def read() -> None:
        with _client(b, a.bootstrap) as sse:
            headers = {"Accept": "text/event-stream"}
            with sse.stream("GET", "/job-events", headers=headers) as r:
                assert r.status_code == 200
                for _ in r.iter_lines():
                    pass
        ended.append(time.monotonic())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    time.sleep(1.0)
    began = time.monotonic()
    assert b.stop() == 0
    # Not after uvicorn's 10 s grace: the stream ended (cleanly) as soon as it was told.
    assert time.monotonic() - began < 3.0
    reader.join(5)
    assert ended and ended[0] - began < 3.0
