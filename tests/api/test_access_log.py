"""The access log: one ``http.request`` line per request (method, route template, status,
duration, request id), on by default with JSON logs, switchable; never a credential, a query
string or a path's raw text."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from api_helpers import client_for

from mrs_jobs.api.app import create_app
from mrs_jobs.logging_setup import JsonFormatter, TextFormatter
from mrs_jobs.settings import Settings


@contextmanager
def captured(formatter: logging.Formatter) -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    log = logging.getLogger("mrs_jobs")
    old = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        log.removeHandler(handler)
        log.setLevel(old)


def _app_client(api, tmp_path: Path, **settings: object):  # type: ignore[no-untyped-def]
    # A second instance on the same store needs the same SK-sealing key (secretbox.py).
    key_file = tmp_path / "data" / "secret.key"
    conf = Settings(data_dir=tmp_path / "d2", secret_key_file=key_file, **settings)
    app = create_app(conf, api.store, runnable_types=frozenset({"SparkSubmit"}))
    return client_for(app, api.client.auth)


def _access(stream: io.StringIO) -> list[dict]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [line for line in lines if line.get("event") == "http.request"]


def test_on_by_default_with_json_logs(monkeypatch) -> None:
    monkeypatch.delenv("MRS_JOBS_ACCESS_LOG", raising=False)
    monkeypatch.setenv("MRS_JOBS_LOG_FORMAT", "json")
    assert Settings().access_log is True
    monkeypatch.setenv("MRS_JOBS_ACCESS_LOG", "false")
    assert Settings().access_log is False
    monkeypatch.setenv("MRS_JOBS_LOG_FORMAT", "text")
    monkeypatch.delenv("MRS_JOBS_ACCESS_LOG")
    assert Settings().access_log is False
    monkeypatch.setenv("MRS_JOBS_ACCESS_LOG", "true")
    assert Settings().access_log is True
    assert Settings(log_format="json").access_log is True
    assert Settings(log_format="json", access_log=False).access_log is False


def test_one_line_per_request_without_credentials_or_queries(api, tmp_path) -> None:
    client = _app_client(api, tmp_path, log_format="json")
    token = "tok" + "9" * 29
    with captured(JsonFormatter()) as stream:
        shown = client.get(api.base, params={"limit": "5", "job_name": "secret-name-77"})
        refused = client.get(api.base, params={"token": token})  # an unknown parameter
        anonymous = client_for(client.app).get(api.base, headers={"X-Auth-Token": token})
        too_big = client.post(api.base, content=b"x" * 2_000_000)
        health = client.get("/health")
    lines = _access(stream)
    responses = [shown, refused, anonymous, too_big, health]
    assert [line["status"] for line in lines] == [r.status_code for r in responses]
    assert [line["status"] for line in lines] == [202, 400, 401, 413, 200]
    assert [line["request_id"] for line in lines] == [r.headers["x-request-id"] for r in responses]
    first = lines[0]
    assert (first["method"], first["route"]) == (
        "GET",
        "/v2/{project_id}/clusters/{cluster_id}/job-executions",
    )
    assert isinstance(first["duration_ms"], float) and first["duration_ms"] >= 0
    assert (first["project_id"], first["cluster_id"]) == (api.project_id, api.cluster_id)
    assert lines[-1]["route"] == "/health"
    text = stream.getvalue()
    for never in (token, "secret-name-77", "limit=5", api.sk, "Signature=", "SDK-HMAC"):
        assert never not in text


def test_unknown_paths_are_logged_by_template_only(api, tmp_path) -> None:
    client = _app_client(api, tmp_path, log_format="json")
    with captured(JsonFormatter()) as stream:
        r = client.get("/no/such/place-with-a-secret-99")
    (line,) = _access(stream)
    assert (line["status"], line["route"]) == (r.status_code, "<unmatched>")
    assert "secret-99" not in stream.getvalue()


@pytest.mark.parametrize(
    "conf",
    [{"log_format": "json", "access_log": False}, {"log_format": "text"}],
)
def test_off(api, tmp_path, conf) -> None:
    client = _app_client(api, tmp_path, **conf)
    with captured(JsonFormatter()) as stream:
        assert client.get(api.base).status_code == 202
    assert _access(stream) == []


def test_text_lines_carry_the_request_id(api, tmp_path) -> None:
    client = _app_client(api, tmp_path, log_format="text", access_log=True)
    with captured(TextFormatter()) as stream:
        r = client.get(api.base)
    (line,) = [x for x in stream.getvalue().splitlines() if "http.request" in x]
    assert f"request_id={r.headers['x-request-id']}" in line
    assert (
        "status=202" in line
        and "route=/v2/{project_id}/clusters/{cluster_id}/job-executions" in line
    )
