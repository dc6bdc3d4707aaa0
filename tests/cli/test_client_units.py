"""The client CLI's pure parts: connection, parsing, the wire format, log following, tables."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from mrs_jobs.api.signing import verify
from mrs_jobs.cli import watch
from mrs_jobs.cli.client import ApiClient, ApiError
from mrs_jobs.cli.common import UsageError, normalize_job_type, parse_property, parse_time
from mrs_jobs.cli.connection import ConfigError, Connection, resolve
from mrs_jobs.cli.watch import exit_code_for, follow_log, wait_for_job

BOOT = {
    "endpoint": "http://127.0.0.1:1111",
    "project_id": "bootproject",
    "cluster_id": "boot-cluster",
    "ak": "BOOTAK",
    "sk": "BOOTSK",
}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    data = tmp_path / "data"
    data.mkdir()
    (data / "bootstrap.json").write_text(json.dumps(BOOT))
    return {"MRS_JOBS_DATA_DIR": str(data), "XDG_CONFIG_HOME": str(tmp_path / "config")}


def _profile(env: dict[str, str], text: str) -> None:
    path = Path(env["XDG_CONFIG_HOME"]) / "mrs-jobs" / "profiles.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_bootstrap_alone_is_enough(env: dict[str, str]) -> None:
    conn = resolve({}, env)
    assert conn == Connection(BOOT["endpoint"], "bootproject", "boot-cluster", "BOOTAK", "BOOTSK")
    assert conn.base_url.endswith("/v2/bootproject/clusters/boot-cluster/job-executions")


def test_precedence_flags_env_profile_bootstrap(env: dict[str, str]) -> None:
    _profile(
        env,
        '[default]\nproject = "profproject"\ncluster = "prof-cluster"\n'
        'endpoint = "127.0.0.1:3333/"\n',
    )
    env["MRS_JOBS_CLUSTER_ID"] = "env-cluster"
    conn = resolve({"endpoint": "http://flag:1", "project_id": None}, env)
    assert conn.endpoint == "http://flag:1"  # flag
    assert conn.cluster_id == "env-cluster"  # env beats profile
    assert conn.project_id == "profproject"  # profile beats bootstrap
    assert (conn.ak, conn.sk) == ("BOOTAK", "BOOTSK")
    assert conn.sources == {
        "endpoint": "flag",
        "cluster_id": "env",
        "project_id": "profile",
        "ak": "bootstrap",
        "sk": "bootstrap",
    }
    # a profile's endpoint without a scheme is read as plain HTTP, trailing slash dropped
    assert resolve({}, env).endpoint == "http://127.0.0.1:3333"


def test_the_most_specific_credential_wins(env: dict[str, str]) -> None:
    env["MRS_JOBS_TOKEN"] = "envtoken"
    conn = resolve({}, env)  # env token beats bootstrap AK/SK
    assert (conn.token, conn.ak, conn.sk) == ("envtoken", None, None)
    conn = resolve({"ak": "A", "sk": "S"}, env)  # flag AK/SK beats env token
    assert (conn.token, conn.ak, conn.sk) == (None, "A", "S")


def test_named_profiles_and_their_errors(env: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        resolve({}, env, profile="team")
    _profile(env, '[team]\ntoken = "t1"\n\n[bad]\ncolour = "red"\n')
    assert resolve({}, env, profile="team").token == "t1"
    assert resolve({}, {**env, "MRS_JOBS_PROFILE": "team"}).token == "t1"
    assert resolve({}, env).ak == "BOOTAK"  # no [default]: nothing from the file
    with pytest.raises(ConfigError, match=r"no profile \[other\].*bad, team"):
        resolve({}, env, profile="other")
    with pytest.raises(ConfigError, match="unknown key 'colour'"):
        resolve({}, env, profile="bad")
    _profile(env, "[default\n")
    with pytest.raises(ConfigError, match="cannot read"):
        resolve({}, env)


def test_missing_pieces_are_named(tmp_path: Path) -> None:
    env = {"MRS_JOBS_DATA_DIR": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    with pytest.raises(ConfigError, match="--project / MRS_JOBS_PROJECT_ID"):
        resolve({"endpoint": "http://x", "cluster_id": "c", "token": "t"}, env)
    with pytest.raises(ConfigError, match="no credential"):
        resolve({"endpoint": "http://x", "project_id": "p", "cluster_id": "c"}, env)
    with pytest.raises(ConfigError, match="needs its SK"):
        resolve({"endpoint": "http://x", "project_id": "p", "cluster_id": "c", "ak": "a"}, env)


def test_parse_time() -> None:
    assert parse_time("1735732800000") == 1735732800000
    assert parse_time("2025-01-01T12:00:00Z") == 1735732800000
    assert parse_time("2025-01-01T14:00:00+02:00") == 1735732800000
    local_midnight = int(datetime(2025, 1, 31).astimezone().timestamp() * 1000)
    assert parse_time("2025-01-31") == local_midnight
    assert parse_time("2025-01-31", end=True) == local_midnight + 86_400_000 - 1
    now = datetime(2025, 1, 1, 12).astimezone()
    assert parse_time("2h", now=now) == int((now - timedelta(hours=2)).timestamp() * 1000)
    with pytest.raises(UsageError, match="epoch milliseconds"):
        parse_time("yesterday")


def test_small_parsers() -> None:
    assert parse_property("a.b=c=d") == ("a.b", "c=d")
    assert parse_property("k=") == ("k", "")
    with pytest.raises(UsageError):
        parse_property("novalue")
    assert normalize_job_type("sparksql") == "SparkSql"
    assert normalize_job_type("Whatever") == "Whatever"
    assert exit_code_for({"job_state": "FINISHED", "job_result": "SUCCEEDED"}) == 0
    assert exit_code_for({"job_state": "FINISHED", "job_result": "FAILED"}) == 3
    assert exit_code_for({"job_state": "FAILED", "job_result": "FAILED"}) == 3
    assert exit_code_for({"job_state": "KILLED", "job_result": "KILLED"}) == 4


CONN = Connection("http://svc:8080", "p1", "c1", "AK1", "SK1")


def test_requests_are_signed_as_the_server_verifies() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path, _, query = request.url.raw_path.decode().partition("?")
        verify(
            method=request.method,
            raw_path=path,
            raw_query=query,
            headers=dict(request.headers),
            body=request.content,
            secret_lookup=lambda ak: "SK1" if ak == "AK1" else None,
            now=datetime.now().astimezone(),
        )
        if request.url.path.endswith("/job-executions") and request.method == "POST":
            return httpx.Response(200, json={"job_submit_result": {"job_id": "j1"}})
        return httpx.Response(202, json={"total_record": 0, "job_list": []})

    with ApiClient(CONN, transport=httpx.MockTransport(handler)) as api:
        assert api.submit("SparkSubmit", "n", ["a b", "$(x)"], {"k": "v"}) == "j1"
        api.list({"job_name": "a b", "limit": 2, "job_id": None})
    body = json.loads(seen[0].content)
    assert body == {
        "job_type": "SparkSubmit",
        "job_name": "n",
        "arguments": ["a b", "$(x)"],
        "properties": {"k": "v"},
    }
    assert dict(seen[1].url.params) == {"job_name": "a b", "limit": "2"}
    assert all(r.headers["Content-Type"] == "application/json" for r in seen)


def test_errors_carry_the_mrs_code_or_the_status() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/kill"):
            return httpx.Response(
                400,
                json={"error_code": "0175", "error_msg": "ended"},
                headers={"X-Request-Id": "r"},
            )
        return httpx.Response(502, text="<html>Bad Gateway</html>")

    token = Connection("http://svc", "p1", "c1", token="tok")
    with ApiClient(token, transport=httpx.MockTransport(handler)) as api:
        with pytest.raises(ApiError) as caught:
            api.kill("j1")
        assert (caught.value.status, caught.value.code, caught.value.message) == (
            400,
            "0175",
            "ended",
        )
        assert caught.value.request_id == "r"
        with pytest.raises(ApiError) as caught:
            api.show("j1")
        assert caught.value.code == "HTTP 502" and "Bad Gateway" in caught.value.message


def test_follow_reads_until_the_job_ended_and_drains_the_rest() -> None:
    """The job ends between a read and the state check: its last words are still printed."""
    log = bytearray(b"one\n")
    state = {"job_state": "RUNNING"}
    reads: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/job-events"):
            return OLD_SERVER
        if request.url.path.endswith("/log"):
            offset = int(request.url.params["offset"])
            reads.append(offset)
            start = max(0, len(log) + offset) if offset < 0 else min(offset, len(log))
            data = bytes(log[start:])
            return httpx.Response(
                200,
                content=data,
                headers={"X-Log-Next-Offset": str(start + len(data)), "X-Log-Size": str(len(log))},
            )
        if len(reads) >= 2 and state["job_state"] == "RUNNING":
            log.extend(b"two\n")  # written just before the engine exits
            state["job_state"] = "FINISHED"
        return httpx.Response(202, json={"job_detail": dict(state)})

    class Sink:
        data = b""

        def write(self, b: bytes) -> None:
            self.data += b

        def flush(self) -> None:
            pass

    sink = Sink()
    with ApiClient(CONN, transport=httpx.MockTransport(handler)) as api:
        follow_log(api, "j1", "stdout", sink, offset=-2, follow=True, interval=0.01)  # type: ignore[arg-type]
    assert sink.data == b"e\ntwo\n"
    assert reads == [-2, 4, 4]  # the tail, the end, then the drain after FINISHED


def test_narrow_terminals_drop_columns_never_ids() -> None:
    from rich.console import Console

    from mrs_jobs.cli.output import job_table

    job = {
        "job_id": "63c6064a-b0db-4bd8-983d-92365a0e95ac",
        "job_name": "pi",
        "user": "admin",
        "job_type": "SparkSubmit",
        "job_state": "FINISHED",
        "job_result": "SUCCEEDED",
        "job_progress": 100.0,
        "submitted_time": 1735732800000,
        "finished_time": 1735732812000,
    }
    for width, expected in [(80, "STATE     RESULT     SUBMITTED"), (140, "USER   TYPE")]:
        console = Console(file=io.StringIO(), width=width, color_system=None)
        console.print(job_table([job], width))
        text = console.file.getvalue()  # type: ignore[attr-defined]
        assert job["job_id"] in text and expected in text
        assert max(len(line.rstrip()) for line in text.splitlines()) <= width


#: What a server older than the event stream answers for ``.../job-events``.
OLD_SERVER = httpx.Response(404, json={"error_code": "12000002", "error_msg": "Not Found"})


def _job_api(states: list[str], log: bytes = b"") -> httpx.MockTransport:
    """An older service (no event stream) whose job goes through ``states`` (one per show)
    with a fixed log."""
    seen = iter(states)
    last = {"job_state": states[0]}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/job-events"):
            return OLD_SERVER
        if request.url.path.endswith("/log"):
            return httpx.Response(
                200,
                content=log,
                headers={"X-Log-Next-Offset": str(len(log)), "X-Log-Size": str(len(log))},
            )
        last["job_state"] = next(seen, last["job_state"])
        return httpx.Response(202, json={"job_detail": dict(last, job_name="n")})

    return httpx.MockTransport(handler)


def test_follow_says_once_that_it_waits_on_an_empty_log(capsys: pytest.CaptureFixture) -> None:
    sink = io.BytesIO()
    transport = _job_api(["ACCEPTED", "RUNNING", "RUNNING", "FINISHED"])
    with ApiClient(CONN, transport=transport) as api:
        follow_log(api, "j1", "stdout", sink, follow=True, interval=0.01)  # type: ignore[arg-type]
    err = capsys.readouterr().err
    assert err.count("waiting") == 1 and "the job is ACCEPTED; its stdout is empty" in err


def test_wait_prints_a_line_while_nothing_changes(
    capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(watch, "STILL_EVERY_S", 0.05)
    transport = _job_api(["RUNNING"] * 12 + ["FINISHED"])
    with ApiClient(CONN, transport=transport) as api:
        job = wait_for_job(api, "j1", interval=0.02)
    assert job["job_state"] == "FINISHED"
    err = capsys.readouterr().err
    assert err.count("j1: n RUNNING 0%") >= 3  # the first line, then "still" lines
    assert "(still, after" in err


def _streaming_api(calls: list[str], changes: list[str], log: bytes = b"") -> httpx.MockTransport:
    """A service with the event stream: the job is RUNNING, then each long-poll brings the
    next state of ``changes``; ``calls`` records what was asked."""
    state = {"job_state": "RUNNING", "job_name": "n", "job_result": "UNDEFINED"}
    todo = iter(changes)

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path.endswith("/job-events"):
            after = request.url.params["after"]
            calls.append(f"events after={after} wait={request.url.params['wait']}")
            assert request.url.params.get("job_id") == (None if after == "now" else "j1")
            to = next(todo, None) if after != "now" else None
            if to is None:
                return httpx.Response(200, json={"events": [], "next_cursor": "7"})
            other = {"job_id": "other", "to_state": "KILLED"}
            data = {"job_id": "j1", "from_state": state["job_state"], "to_state": to}
            state.update(job_state=to, job_result="SUCCEEDED" if to == "FINISHED" else "x")
            events = [{"data": other}, {"data": data}]
            return httpx.Response(200, json={"events": events, "next_cursor": "9"})
        if path.endswith("/log"):
            data = log[int(request.url.params["offset"]) :]
            headers = {"X-Log-Next-Offset": str(len(log)), "X-Log-Size": str(len(log))}
            return httpx.Response(200, content=data, headers=headers)
        calls.append("show")
        return httpx.Response(202, json={"job_detail": dict(state)})

    return httpx.MockTransport(handler)


def test_wait_long_polls_the_stream_instead_of_asking_for_the_job() -> None:
    calls: list[str] = []
    with ApiClient(CONN, transport=_streaming_api(calls, [None, "FINISHED"])) as api:  # type: ignore[list-item]
        job = wait_for_job(api, "j1", show=False)
    assert job["job_state"] == "FINISHED" and exit_code_for(job) == 0
    # The cursor first, the job once, long-polls (the first empty), the job once it ended.
    assert calls == [
        "events after=now wait=0",
        "show",
        "events after=7 wait=25",
        "events after=7 wait=25",
        "show",
    ]


def test_follow_waits_on_the_stream_between_reads_of_the_log() -> None:
    calls: list[str] = []
    sink = io.BytesIO()
    transport = _streaming_api(calls, [None, None, "KILLED"], log=b"hello\n")
    with ApiClient(CONN, transport=transport) as api:
        follow_log(api, "j1", "stdout", sink, follow=True, interval=1.0)  # type: ignore[arg-type]
    assert sink.getvalue() == b"hello\n"
    assert calls.count("show") == 1  # where the job is at first; then only the stream
    assert calls[-1] == "events after=7 wait=1"
