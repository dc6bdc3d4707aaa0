"""A Flink jobmanager's REST API, as far as the service follows and cancels jobs through it.

A session cluster forgets finished jobs after ``jobstore.expiration-time`` (an hour by default)
and then answers 404. Requests bypass proxies (the jobmanager is a cluster-internal address) and
never raise: "nothing answered" is status 0.
"""

from __future__ import annotations

import json
import re
import ssl
import urllib.error
import urllib.request
from typing import Any

from mrs_jobs.engines.base import ENGINE_LOG_CAP, REMOTE_TERMINAL, RemoteStatus

__all__ = [
    "STATES",
    "cancel_job",
    "failure_message",
    "job_exceptions",
    "progress_of_job",
    "remote_status",
    "rest",
    "tracking_url",
]

# Flink's JobStatus → RemoteStatus.state. FAILING/CANCELLING/RESTARTING are on their way
# somewhere but not there: the job still runs. SUSPENDED means this jobmanager lost leadership
# (HA): another one takes the job over, so it is not an end either.
STATES = {
    "INITIALIZING": "pending",
    "CREATED": "pending",
    "RUNNING": "running",
    "RESTARTING": "running",
    "FAILING": "running",
    "CANCELLING": "running",
    "RECONCILING": "running",
    "SUSPENDED": "running",
    "FINISHED": "succeeded",
    "FAILED": "failed",
    "CANCELED": "killed",
}
_MESSAGE_CAP = 500
_CAUSED_BY_RE = re.compile(r"^\s*Caused by:\s*(.+)$", re.MULTILINE)
_STATUS_TIMEOUT = 1.0
_NO_PROXY_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def rest(
    url: str, timeout: float, method: str = "GET", context: ssl.SSLContext | None = None
) -> tuple[int, Any]:
    """(HTTP status, decoded JSON or None); status 0 when nothing answered. ``context``: the
    TLS of a local job's endpoint (its client certificate)."""
    req = urllib.request.Request(url, method=method)
    opener = _NO_PROXY_OPENER
    if context is not None:
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
        )
    try:
        with opener.open(req, timeout=timeout) as resp:
            body = resp.read(4_000_000)
            status = resp.status
    except urllib.error.HTTPError as e:
        return e.code, None
    except (OSError, ValueError):
        return 0, None
    try:
        return status, json.loads(body) if body else None
    except ValueError:
        return status, None


def progress_of_job(detail: dict) -> float | None:
    """Finished subtasks over all subtasks of a ``/jobs/<id>`` answer, in percent, at most 99.

    A streaming job's subtasks only finish at its end, so it shows 0 until then.
    """
    vertices = detail.get("vertices")
    if not isinstance(vertices, list):
        return None
    total = done = 0
    for v in vertices:
        if not isinstance(v, dict):
            continue
        tasks = v.get("tasks") if isinstance(v.get("tasks"), dict) else {}
        parallelism = int(v.get("parallelism", 0) or 0)
        total += parallelism
        done += min(parallelism, int(tasks.get("FINISHED", 0) or 0))
    if total <= 0:
        return 0.0
    return min(99.0, round(100.0 * done / total, 1))


def tracking_url(jobmanager: str, job_id: str, *, done: bool = False, scheme: str = "http") -> str:
    """The job's page in the jobmanager's web UI."""
    state = "completed" if done else "running"
    return f"{scheme}://{jobmanager}/#/job/{state}/{job_id}/overview"


def failure_message(exceptions: Any) -> str | None:
    """The root cause of a ``/jobs/<id>/exceptions`` answer, one line, at most 500 characters.

    Flink wraps the task's exception ("Recovery is suppressed by ...", "Job execution
    failed"), so the deepest ``Caused by:`` line is the one that names what went wrong; the
    first line is used when there is none. Flink 1.x answers ``root-exception`` (a stack
    trace); 2.x only ``exceptionHistory.entries[].stacktrace`` (newest first).
    """
    if not isinstance(exceptions, dict):
        return None
    trace = exceptions.get("root-exception")
    if not isinstance(trace, str) or not trace.strip():
        history = exceptions.get("exceptionHistory")
        entries = history.get("entries") if isinstance(history, dict) else None
        first = entries[0] if isinstance(entries, list) and entries else None
        if not isinstance(first, dict):
            return None
        trace = first.get("stacktrace") or first.get("exceptionName")
        if not isinstance(trace, str) or not trace.strip():
            return None
    causes = _CAUSED_BY_RE.findall(trace)
    line = causes[-1] if causes else trace.strip().splitlines()[0]
    line = " ".join(line.split())
    if len(line) > _MESSAGE_CAP:
        line = line[: _MESSAGE_CAP - 3] + "..."
    return line


def remote_status(
    jobmanager: str, job_id: str, timeout: float = _STATUS_TIMEOUT
) -> RemoteStatus | None:
    """The job's state on the jobmanager; None when it cannot be reached right now."""
    base = f"http://{jobmanager}"
    code, detail = rest(f"{base}/jobs/{job_id}", timeout)
    if code == 404:
        return RemoteStatus(
            state="unknown",
            app_id=job_id,
            message=f"the Flink jobmanager at {jobmanager} does not know job {job_id}",
        )
    if code != 200 or not isinstance(detail, dict):
        return None  # down, starting, or answering errors: ask again next pass
    flink_state = str(detail.get("state") or "")
    state = STATES.get(flink_state, "pending")
    progress = progress_of_job(detail)
    message = None
    if state == "succeeded":
        progress = 100.0
    elif state == "failed":
        _, exceptions = rest(f"{base}/jobs/{job_id}/exceptions", timeout)
        cause = failure_message(exceptions)
        message = f"Flink job {flink_state}: {cause}" if cause else f"Flink job {flink_state}"
    elif state == "killed":
        message = "the Flink job was cancelled"
    return RemoteStatus(
        state=state,
        app_id=job_id,
        tracking_url=tracking_url(jobmanager, job_id, done=state in REMOTE_TERMINAL),
        progress=progress,
        message=message,
    )


def cancel_job(jobmanager: str, job_id: str, timeout: float = 2.0) -> bool:
    """``PATCH /jobs/<id>?mode=cancel``; True when the jobmanager accepted it."""
    code, _ = rest(f"http://{jobmanager}/jobs/{job_id}?mode=cancel", timeout, "PATCH")
    return code in (200, 202)


def job_exceptions(jobmanager: str, job_id: str, timeout: float = 5.0) -> str | None:
    """The exceptions the jobmanager keeps for a job (``/jobs/<id>/exceptions``), newest
    first, each with its stack trace, at most :data:`ENGINE_LOG_CAP` characters; None when
    there are none or nothing answered."""
    code, body = rest(f"http://{jobmanager}/jobs/{job_id}/exceptions", timeout)
    if code != 200 or not isinstance(body, dict):
        return None
    history = body.get("exceptionHistory")
    entries = history.get("entries") if isinstance(history, dict) else None
    traces = [
        str(e.get("stacktrace") or e.get("exceptionName") or "").strip()
        for e in entries or []
        if isinstance(e, dict)
    ]
    if not any(traces) and isinstance(body.get("root-exception"), str):  # Flink 1.x
        traces = [body["root-exception"].strip()]
    text = "\n\n".join(t for t in traces if t)
    return text[:ENGINE_LOG_CAP] or None
