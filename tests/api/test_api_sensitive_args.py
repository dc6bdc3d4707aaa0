"""Arguments starting with ``@`` are sensitive (MRS's rule): every echo shows them masked
(show, list, the job's history, audit, the service's logs, the job's diagnostics and the
service's notes in its log), while the engine gets the value without the ``@``."""

from __future__ import annotations

import io
import json
import logging

from jobrows import audit_rows
from support_supervisor import drive

from mrs_jobs.domain.render import ARGUMENT_MASK
from mrs_jobs.engines.registry import EngineRegistry
from mrs_jobs.engines.spark import SparkSubmitEngine
from mrs_jobs.logging_setup import JsonFormatter
from mrs_jobs.supervisor.loop import Supervisor

SECRET = "Sup3r-Secret_42"
APP = "/nonexistent/app-Hidden9913.py"  # a sensitive application path: fails at launch


def _all_logs() -> tuple[io.StringIO, logging.Handler]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.setLevel(logging.DEBUG)
    return stream, handler


def test_sensitive_arguments_are_masked_in_every_echo(api, settings) -> None:
    stream, handler = _all_logs()
    root = logging.getLogger("mrs_jobs")
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        body = {
            "job_type": "SparkSubmit",
            "job_name": "s",
            "arguments": [f"@{APP}", "plain", f"@password={SECRET}"],
        }
        r = api.client.post(api.base, json=body)
        assert r.status_code == 200, r.text
        job_id = r.json()["job_submit_result"]["job_id"]
        sup = Supervisor(api.store, settings, EngineRegistry([SparkSubmitEngine()]))

        def ended() -> bool:
            shown = api.client.get(f"{api.base}/{job_id}").json()["job_detail"]
            return shown["job_state"] in ("FAILED", "FINISHED")

        drive(sup, ended)
        shown = api.client.get(f"{api.base}/{job_id}")
        listed = api.client.get(api.base)
        events = api.client.get(f"{api.base}/{job_id}/events")
        stderr = api.client.get(f"{api.base}/{job_id}/log", params={"type": "stderr"})
    finally:
        root.removeHandler(handler)
        root.setLevel(old)
    detail = shown.json()["job_detail"]
    masked = f"[{ARGUMENT_MASK}, plain, {ARGUMENT_MASK}]"
    assert detail["arguments"] == masked
    assert listed.json()["job_list"][0]["arguments"] == masked
    # It failed at launch because the application (the real path, without its @) is missing,
    # and says so without showing the path.
    assert detail["job_state"] == "FAILED"
    assert "application file not found" in detail["diagnostics"]
    reasons = " ".join(e["reason"] for e in events.json()["job_events"])
    assert "application file not found" in reasons
    assert stderr.status_code == 200 and "application file not found" in stderr.text
    echoes = {
        "show": shown.text,
        "list": listed.text,
        "events": events.text,
        "stderr": stderr.text,
        "audit": json.dumps(audit_rows(api.store), default=str),
        "logs": stream.getvalue(),
    }
    for where, text in echoes.items():
        for secret in (SECRET, "Hidden9913"):
            assert secret not in text, (where, text)


def test_arguments_without_at_are_unchanged(api) -> None:
    job_id = api.submit(arguments=["/opt/a.py", "x@y", "a=@b", " @c"])
    detail = api.client.get(f"{api.base}/{job_id}").json()["job_detail"]
    assert detail["arguments"] == "[/opt/a.py, x@y, a=@b,  @c]"
