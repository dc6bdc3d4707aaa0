"""Pure ASGI middleware: a request id on every response and the body size limit."""

from __future__ import annotations

import json
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyTooLarge", "RequestContextMiddleware"]


class BodyTooLarge(Exception):
    """A chunked body grew past the limit while being read."""


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        rid_header = (b"x-request-id", request_id.encode())
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
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
