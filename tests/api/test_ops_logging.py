"""JSON logs: one object per line with event, key=value fields, and the request's context."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from api_helpers import Signer, client_for

from mrs_jobs.api.app import create_app
from mrs_jobs.logging_setup import JsonFormatter, TextFormatter, log_context
from mrs_jobs.settings import Settings


def record(
    msg: str, *args: object, name: str = "mrs_jobs.supervisor.loop", **fields: object
) -> logging.LogRecord:
    """A record as ``logging.getLogger(name).info(msg, *args, extra=fields)`` makes it."""
    rec = logging.LogRecord(name, logging.INFO, __file__, 1, msg, args, None)
    rec.__dict__.update(fields)
    return rec


@contextmanager
def json_lines(logger: str = "mrs_jobs") -> Iterator[list[dict]]:
    """Records of ``logger`` (INFO and up) formatted by the JSON formatter, parsed back."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger(logger)
    old_level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    lines: list[dict] = []
    try:
        yield lines
    finally:
        log.removeHandler(handler)
        log.setLevel(old_level)
        lines.extend(json.loads(line) for line in stream.getvalue().splitlines())


def test_extra_fields_become_keys() -> None:
    line = JsonFormatter().format(record("job.launched", job_id="6b1c-01", pid=4242))
    assert "\n" not in line
    out = json.loads(line)
    assert out["event"] == "job.launched"
    assert (out["job_id"], out["pid"]) == ("6b1c-01", 4242)  # typed, not parsed from text
    assert out["message"] == "job.launched job_id=6b1c-01 pid=4242"
    assert (out["level"], out["logger"]) == ("INFO", "mrs_jobs.supervisor.loop")
    assert out["time"].endswith("Z") and "T" in out["time"]


def test_values_with_spaces_and_brackets_stay_whole_and_secrets_are_masked() -> None:
    status = "ExitStatus(returncode=1, signal=None)"
    out = json.loads(JsonFormatter().format(record("job.ended", job_id="j1", status=status)))
    assert (out["job_id"], out["status"]) == ("j1", status)
    out = json.loads(JsonFormatter().format(record("job.refused", reason="no engine for Flink")))
    assert out["reason"] == "no engine for Flink"
    out = json.loads(JsonFormatter().format(record("unhandled error")))
    assert "event" not in out and out["message"] == "unhandled error"
    secret = {"fs.obs.secret.key": "abc", "token": "t0k", "user": "u"}
    out = json.loads(JsonFormatter().format(record("x.y", **secret)))
    assert out["fs.obs.secret.key"] == "******" and out["token"] == "******"
    assert "abc" not in json.dumps(out) and "t0k" not in json.dumps(out)
    assert out["user"] == "u"


def test_text_lines_carry_the_fields_after_the_event() -> None:
    text = TextFormatter().format(record("job.launched", job_id="j9", pid=7, token="t0k"))
    assert text.endswith("INFO mrs_jobs.supervisor.loop job.launched job_id=j9 pid=7 token=******")
    assert TextFormatter().format(record("plain %s", "words")).endswith(" plain words")


def test_the_service_logs_through_extra_not_through_key_value_text() -> None:
    """No log call in the service spells its fields into the message (they would be text in
    JSON logs, and a secret in them would not be masked)."""
    import ast
    from pathlib import Path

    import mrs_jobs

    offenders = []
    for path in Path(mrs_jobs.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"debug", "info", "warning", "error", "exception"}
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
                and "=%" in node.args[0].value
            ):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def test_context_and_exceptions() -> None:
    with log_context(request_id="r1", project_id="p1", job_id=None):
        out = json.loads(JsonFormatter().format(record("auth.refused", reason="bad")))
    assert (out["request_id"], out["project_id"]) == ("r1", "p1")
    assert "job_id" not in out
    # The record's own job_id wins over the context's.
    with log_context(job_id="from-path"):
        out = json.loads(JsonFormatter().format(record("job.killed", job_id="from-record")))
    assert out["job_id"] == "from-record"
    try:
        raise ValueError("boom")
    except ValueError:
        rec = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), None)
        import sys

        rec.exc_info = sys.exc_info()
    out = json.loads(JsonFormatter().format(rec))
    assert "ValueError: boom" in out["exception"]


def test_request_id_and_project_reach_a_log_line_of_the_request(api) -> None:  # type: ignore[no-untyped-def]
    wrong = client_for(api.client.app, Signer(api.ak, "not-the-secret", api.project_id))
    with json_lines() as lines:
        r = wrong.get(api.base)
    assert r.status_code == 401
    refused = [line for line in lines if line.get("event") == "auth.refused"]
    assert len(refused) == 1, lines
    assert refused[0]["request_id"] == r.headers["x-request-id"]
    assert refused[0]["project_id"] == api.project_id
    assert refused[0]["cluster_id"] == api.cluster_id
    assert "not-the-secret" not in json.dumps(lines)


def test_access_log_line_per_request(api, tmp_path) -> None:  # type: ignore[no-untyped-def]
    job_id = api.submit()
    # A second instance on the same store needs the same SK-sealing key (secretbox.py).
    key_file = tmp_path / "data" / "secret.key"
    settings = Settings(data_dir=tmp_path / "data2", access_log=True, secret_key_file=key_file)
    app = create_app(settings, api.store, runnable_types=frozenset({"SparkSubmit"}))
    client = client_for(app)
    client.auth = api.client.auth
    with json_lines() as lines:
        r = client.get(f"{api.base}/{job_id}")
        client.post(f"{api.base}/batch-delete", json={"job_id_list": [job_id]})
    assert r.status_code == 202
    show, delete = [line for line in lines if line.get("event") == "http.request"]
    assert show["request_id"] == r.headers["x-request-id"]
    assert (show["project_id"], show["cluster_id"], show["job_id"]) == (
        api.project_id,
        api.cluster_id,
        job_id,
    )
    assert show["route"].endswith("/job-executions/{job_execution_id}")
    assert (show["method"], show["status"]) == ("GET", 202)  # typed fields
    assert float(show["duration_ms"]) >= 0
    assert "job_id" not in delete  # batch-delete is not a job id
