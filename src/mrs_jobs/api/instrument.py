"""Pure ASGI middleware: request metrics by route template, and the log context of a request
(the access log line is written by ``api/middleware.py``, outermost).

It sits inside ``RequestContextMiddleware`` (so the request id exists) and binds
``request_id``, plus ``project_id`` / ``cluster_id`` / ``job_id`` read from the path, to every
log record written while the request is handled (threadpool calls inherit the context).
"""

from __future__ import annotations

import re
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mrs_jobs.logging_setup import log_context
from mrs_jobs.services.metrics import Metrics

__all__ = ["InstrumentMiddleware", "UNMATCHED_ROUTE", "path_context"]

UNMATCHED_ROUTE = "<unmatched>"

# Only well-formed ids are copied into the logs; anything else in a path is left out.
_V2 = re.compile(
    r"^/v2/(?P<project_id>[A-Za-z0-9]{1,64})/clusters/(?P<cluster_id>[A-Za-z0-9_-]{1,64})"
    r"(?:/job-executions/(?P<job_id>[A-Za-z0-9-]{1,64})(?:/|$))?"
)
_V11 = re.compile(
    r"^/v1\.1/(?P<project_id>[A-Za-z0-9]{1,64})/cluster_infos"
    r"(?:/(?P<cluster_id>[A-Za-z0-9_-]{1,64})(?:/|$))?"
)
_V11_JOBS = re.compile(
    r"^/v1\.1/(?P<project_id>[A-Za-z0-9]{1,64})/(?:jobs/submit-job|job-exes|job-executions)"
    r"(?:/(?P<job_id>[A-Za-z0-9-]{1,64})(?:/|$))?"
)


def path_context(path: str) -> dict[str, str | None]:
    """project_id / cluster_id / job_id named by an API path (``batch-delete`` is no job)."""
    m = _V2.match(path) or _V11.match(path) or _V11_JOBS.match(path)
    if m is None:
        return {}
    found = m.groupdict()
    if found.get("job_id") == "batch-delete":
        found["job_id"] = None
    return found


class InstrumentMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # if the app raises before answering, the outer middleware sends a 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        request_id = scope.get("state", {}).get("request_id")
        with log_context(request_id=request_id, **path_context(scope.get("path", ""))):
            try:
                await self.app(scope, receive, send_status)
            finally:
                seconds = time.perf_counter() - started
                route = getattr(scope.get("route"), "path", None) or UNMATCHED_ROUTE
                self.metrics.observe_request(scope["method"], route, status, seconds)
