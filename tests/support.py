"""Test helpers importable from any test module (``from support import ...``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx

from mrs_jobs.api.signing import sign_headers


class SigV4Auth(httpx.Auth):
    """Signs like the official SDK: content-type;host;user-agent;x-project-id;x-sdk-date."""

    requires_request_body = True

    def __init__(self, ak: str, sk: str, project_id: str) -> None:
        self.ak, self.sk, self.project_id = ak, sk, project_id

    def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        request.headers.setdefault("Content-Type", "application/json")
        request.headers.setdefault("User-Agent", "mrs-jobs-tests/1.0")
        request.headers["X-Project-Id"] = self.project_id
        url = urlsplit(str(request.url))
        headers = {k: v for k, v in request.headers.items()}
        headers["host"] = request.headers["host"]
        added = sign_headers(
            ak=self.ak,
            sk=self.sk,
            method=request.method,
            url_path=request.url.raw_path.split(b"?")[0].decode(),
            raw_query=url.query,
            headers=headers,
            body=request.content,
        )
        request.headers.update(added)
        yield request


def app_routes(app: Any) -> set[tuple[str, str]]:
    """(method, path) of every route of a FastAPI app, HEAD left out.

    FastAPI >= 0.163 keeps included routers as one entry each (``effective_route_contexts``);
    older versions list plain routes. Anything else (a Mount...) is reported as its own entry,
    so it shows up as uncovered instead of being skipped.
    """
    from fastapi.routing import APIRoute
    from starlette.routing import Route

    found: set[tuple[str, str]] = set()

    def add(path: str, methods: Any) -> None:
        for method in methods or ("ANY",):
            if method != "HEAD":
                found.add((method, path))

    for route in app.routes:
        if hasattr(route, "effective_route_contexts"):
            for ctx in route.effective_route_contexts():
                add(ctx.path, getattr(ctx.original_route, "methods", None))
        elif isinstance(route, APIRoute | Route):
            add(route.path, route.methods)
        else:
            found.add(("?", repr(route)))
    return found
