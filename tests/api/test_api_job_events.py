"""``GET /v2/{project_id}/clusters/{cluster_id}/job-events`` (ours): a cluster's job events
after a cursor, long-polled with ``wait``, or as a Server-Sent Events stream that resumes from
``Last-Event-ID`` (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from api_helpers import assert_error, new_cluster, other_project
from support import SigV4Auth

from mrs_jobs.services import feed as feed_module


def events_url(api: Any, cluster_id: str | None = None, project_id: str | None = None) -> str:
    return f"/v2/{project_id or api.project_id}/clusters/{cluster_id or api.cluster_id}/job-events"


@pytest.fixture
def live(api: Any) -> Iterator[Any]:
    """The app with its lifespan running (the hub started and stopped with it)."""
    with api.client:
        yield api


def page(api: Any, **params: Any) -> dict[str, Any]:
    r = api.client.get(events_url(api), params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"events", "next_cursor"}
    return body


def test_events_come_in_cursor_order_and_the_cursor_pages(live: Any) -> None:
    a, b = live.submit("a"), live.submit("b")
    assert live.client.post(f"{live.base}/{a}/kill").status_code == 202
    body = page(live)
    seqs = [int(e["data"]["event_id"]) for e in body["events"]]
    assert seqs == sorted(seqs) and len(set(seqs)) == 7
    assert [(e["data"]["job_id"], e["type"]) for e in body["events"]] == [
        (a, "job.created"),
        (a, "job.saving"),
        (a, "job.submitted"),
        (b, "job.created"),
        (b, "job.saving"),
        (b, "job.submitted"),
        (a, "job.killed"),
    ]
    last = body["events"][-1]
    assert last["data"]["from_state"] == "SUBMITTED" and last["data"]["to_state"] == "KILLED"
    assert body["next_cursor"] == str(seqs[-1])
    assert page(live, after=body["next_cursor"]) == {"events": [], "next_cursor": str(seqs[-1])}
    # Pages of two, each starting after the last one's cursor, give the same events.
    seen, cursor = [], "0"
    while True:
        p = page(live, after=cursor, limit=2)
        if not p["events"]:
            break
        assert len(p["events"]) <= 2
        seen += [int(e["data"]["event_id"]) for e in p["events"]]
        cursor = p["next_cursor"]
    assert seen == seqs
    assert page(live, after=seqs[3])["events"] == body["events"][4:]
    # after=now: nothing, and the cursor is the project's head.
    assert page(live, after="now") == {"events": [], "next_cursor": str(seqs[-1])}


def test_only_the_clusters_events_and_the_cursor_moves_past_the_others(live: Any) -> None:
    other = new_cluster(live)
    mine = live.submit("mine")
    r = live.client.post(
        f"/v2/{live.project_id}/clusters/{other}/job-executions",
        json={"job_type": "SparkSubmit", "job_name": "theirs", "arguments": ["/a.py"]},
    )
    assert r.status_code == 200, r.text
    theirs = r.json()["job_submit_result"]["job_id"]
    body = page(live)
    assert {e["data"]["job_id"] for e in body["events"]} == {mine}
    assert all(e["data"]["cluster_id"] == live.cluster_id for e in body["events"])
    r = live.client.get(events_url(live, other))
    assert {e["data"]["job_id"] for e in r.json()["events"]} == {theirs}
    # The other cluster's later events are passed over: the cursor is the project's head.
    assert int(body["next_cursor"]) == 6
    assert page(live, after=body["next_cursor"], wait=1)["events"] == []


def test_another_projects_cluster_is_not_seen(live: Any) -> None:
    them = other_project(live)
    them.submit()
    r = live.client.get(events_url(live, them.cluster_id))
    assert_error(r, 400, "12000003")
    r = them.client.get(events_url(live))
    assert_error(r, 403, "12000052")
    r = live.client.get(events_url(live, "no-such-cluster"))
    assert_error(r, 400, "12000003")
    theirs = them.client.get(events_url(live, them.cluster_id, them.project_id)).json()
    assert len(theirs["events"]) == 3
    assert page(live)["events"] == []  # their events are not in our project's stream


@pytest.mark.parametrize(
    "params",
    [
        {"after": "x"},
        {"after": "-1"},
        {"limit": "0"},
        {"limit": "1001"},
        {"wait": "61"},
        {"wait": "-1"},
        {"cursor": "1"},
    ],
)
def test_bad_parameters_are_refused(api: Any, params: dict[str, str]) -> None:
    r = api.client.get(events_url(api), params=params)
    assert_error(r, 400, "12000002")


def test_a_bad_last_event_id_is_refused(api: Any) -> None:
    r = api.client.get(
        events_url(api), headers={"Accept": "text/event-stream", "Last-Event-ID": "seven"}
    )
    assert_error(r, 400, "12000002")


def test_a_long_poll_answers_as_soon_as_an_event_arrives(live: Any) -> None:
    cursor = page(live)["next_cursor"]
    other = live.signed_as(live.ak, live.sk, live.project_id)

    def later() -> None:
        time.sleep(0.5)
        other.post(
            live.base, json={"job_type": "SparkSubmit", "job_name": "x", "arguments": ["/a.py"]}
        )

    threading.Thread(target=later).start()
    began = time.monotonic()
    body = page(live, after=cursor, wait=20)
    took = time.monotonic() - began
    assert 0.4 < took < 2.0, took
    assert [e["type"] for e in body["events"]][:1] == ["job.created"]


def test_a_long_poll_with_nothing_new_answers_empty_after_wait(live: Any) -> None:
    cursor = page(live)["next_cursor"]
    began = time.monotonic()
    body = page(live, after=cursor, wait=1)
    took = time.monotonic() - began
    assert body == {"events": [], "next_cursor": cursor}
    assert 0.9 < took < 2.0, took


# --- Server-Sent Events, over a real server (a streamed answer needs a socket) ---------------


@pytest.fixture
def served(api: Any) -> Iterator[str]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(api.client.app, log_level="warning", timeout_graceful_shutdown=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(10)


class Sse:
    """Reads an SSE answer: (id, event, data) per event, ``"heartbeat"`` per comment."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.iter_lines()

    def next(self) -> tuple[str, str, dict[str, Any]] | str:
        fields: dict[str, str] = {}
        for line in self.lines:
            if line.startswith(":"):
                return "heartbeat"
            if line == "":
                if "data" in fields:
                    return fields["id"], fields["event"], json.loads(fields["data"])
                continue
            name, _, value = line.partition(": ")
            fields[name] = value
        raise EOFError

    def events(self, n: int) -> list[tuple[str, str, dict[str, Any]]]:
        out: list[tuple[str, str, dict[str, Any]]] = []
        while len(out) < n:
            item = self.next()
            if item != "heartbeat":
                assert isinstance(item, tuple)
                out.append(item)
        return out


def _sse_client(api: Any, endpoint: str) -> httpx.Client:
    return httpx.Client(
        base_url=endpoint, auth=SigV4Auth(api.ak, api.sk, api.project_id), timeout=10
    )


def test_an_sse_client_that_resumes_from_last_event_id_misses_nothing(
    api: Any, served: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feed_module, "HEARTBEAT_SECONDS", 0.5)
    first = api.submit("first")
    headers = {"Accept": "text/event-stream"}
    with _sse_client(api, served) as http:
        with http.stream("GET", events_url(api), headers=headers) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            sse = Sse(r)
            got = sse.events(3)
            assert [e for _, e, _ in got] == ["job.created", "job.saving", "job.submitted"]
            assert all(d["data"]["job_id"] == first for _, _, d in got)
            began = time.monotonic()
            second = api.submit("second")
            got += sse.events(3)
            assert time.monotonic() - began < 1.0
            assert {d["data"]["job_id"] for _, _, d in got[3:]} == {second}
            assert sse.next() == "heartbeat"  # nothing for a while: a comment
        # Away: more happens, then it comes back with the last id it saw.
        assert api.client.post(f"{api.base}/{first}/kill").status_code == 202
        third = api.submit("third")
        resume = {**headers, "Last-Event-ID": got[-1][0]}
        with http.stream("GET", events_url(api), headers=resume) as r:
            missed = Sse(r).events(4)
    assert [(d["data"]["job_id"], e) for _, e, d in missed] == [
        (first, "job.killed"),
        (third, "job.created"),
        (third, "job.saving"),
        (third, "job.submitted"),
    ]
    ids = [int(i) for i, _, _ in got + missed]
    assert ids == sorted(ids) and len(set(ids)) == len(ids) == 10
    assert all(i == str(d["data"]["event_id"]) for i, _, d in got + missed)


def test_stream_clients_and_events_are_counted(api: Any, served: str) -> None:
    def metric(name: str) -> float:
        text = httpx.get(served + "/metrics").text
        line = next(x for x in text.splitlines() if x.startswith(name + " "))
        return float(line.split()[1])

    headers = {"Accept": "text/event-stream"}
    with _sse_client(api, served) as http:
        with http.stream("GET", events_url(api, None), headers=headers) as r:
            Sse(r)  # open
            deadline = time.monotonic() + 5
            while metric("mrs_jobs_stream_clients") != 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert metric("mrs_jobs_stream_clients") == 1
            before = metric("mrs_jobs_events_written_total")
            api.submit("counted")
            deadline = time.monotonic() + 5
            while metric("mrs_jobs_events_written_total") < before + 3:
                assert time.monotonic() < deadline
                time.sleep(0.05)
    deadline = time.monotonic() + 5
    while metric("mrs_jobs_stream_clients") != 0:  # the client went away: the stream ended
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_stream_ends_after_a_while_so_its_credential_is_checked_again(
    api: Any, served: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(feed_module, "STREAM_SECONDS", 2.5)
    token = api.credentials.create_token(api.project_id, "viewer", 2)
    headers = {"Accept": "text/event-stream", "X-Auth-Token": token}
    url = served + events_url(api)
    began = time.monotonic()
    with httpx.stream("GET", url, headers=headers, timeout=10) as r:
        assert r.status_code == 200
        lines = list(r.iter_lines())  # to its end
    assert 2.0 < time.monotonic() - began < 5.0
    assert lines[0] == "retry: 1000"
    # The client reconnects, as EventSource does: the token has expired meanwhile.
    r = httpx.get(url, headers=headers, timeout=10)
    assert_error(r, 401, "APIGW.0301")


def test_one_jobs_events_and_a_long_poll_that_only_its_change_answers(live: Any) -> None:
    a, b = live.submit("a"), live.submit("b")
    body = page(live, job_id=a)
    assert [e["data"]["job_id"] for e in body["events"]] == [a, a, a]
    assert int(body["next_cursor"]) == 6  # past b's events too
    other = live.signed_as(live.ak, live.sk, live.project_id)

    def later() -> None:
        time.sleep(0.3)
        other.post(f"{live.base}/{b}/kill")  # not a's: the long-poll keeps waiting
        time.sleep(0.7)
        other.post(f"{live.base}/{a}/kill")

    threading.Thread(target=later).start()
    began = time.monotonic()
    got = page(live, after=body["next_cursor"], job_id=a, wait=10)
    took = time.monotonic() - began
    assert [(e["data"]["job_id"], e["type"]) for e in got["events"]] == [(a, "job.killed")]
    assert 0.9 < took < 2.5, took
    r = live.client.get(events_url(live), params={"job_id": "x" * 65})
    assert_error(r, 400, "12000002")
