"""Pure ASGI middleware: a request id on every response, the body size limit, and the access
log.

The access log is written here, outermost, so every request has its line, those this
middleware answers itself (413, the last-resort 500) included: method, route template (never
the raw path or its query string, which may carry ids or secrets), status, duration and
request id; credentials are headers, which it never reads.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mrs_jobs.api.instrument import UNMATCHED_ROUTE, path_context
from mrs_jobs.logging_setup import log_context

__all__ = ["BodyTooLarge", "RequestContextMiddleware"]

access_log = logging.getLogger("mrs_jobs.api.access")


class BodyTooLarge(Exception):
    """A chunked body grew past the limit while being read."""


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, access_log: bool = False) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        if not self.access_log:
            await self._handle(scope, receive, send, request_id, [])
            return
        began = time.perf_counter()
        status = [500]  # what the client gets if nothing answers (the server's own 500)
        try:
            await self._handle(scope, receive, send, request_id, status)
        finally:
            _log_access(scope, request_id, status[-1], time.perf_counter() - began)

    async def _handle(
        self, scope: Scope, receive: Receive, send: Send, request_id: str, status: list[int]
    ) -> None:
        """Answer the request with its id; ``status`` gets the status sent."""
        rid_header = (b"x-request-id", request_id.encode())
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                status.append(message["status"])
                message["headers"] = [*message.get("headers", []), rid_header]
            await send(message)

        length = _content_length(scope)
        if length is not None and length > self.max_body_bytes:
            await _send_json(
                send_with_id,
                413,
                {
                    "error_code": "12000002",
                    "error_msg": f"The request body is over {self.max_body_bytes} bytes.",
                },
            )
            return

        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    raise BodyTooLarge()
            return message

        try:
            await self.app(scope, limited_receive, send_with_id)
        except Exception:
            # The framework's last-resort 500 is sent outside this middleware, so it would lack
            # X-Request-Id (contract section 10). Answer here; the re-raise still reaches the
            # app's Exception handler (which logs) and the server.
            if not started:
                await _send_json(
                    send_with_id,
                    500,
                    {"error_code": "0193", "error_msg": "Internal error; nothing was changed."},
                )
            raise


def _log_access(scope: Scope, request_id: str, status: int, seconds: float) -> None:
    """The request's access line, with the ids its path names (as every line of the request)."""
    route = getattr(scope.get("route"), "path", None) or UNMATCHED_ROUTE
    fields = {
        "method": scope["method"],
        "route": route,
        "status": status,
        "duration_ms": round(seconds * 1000, 1),
        "request_id": request_id,
    }
    with log_context(request_id=request_id, **path_context(scope.get("path", ""))):
        access_log.info("http.request", extra=fields)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
