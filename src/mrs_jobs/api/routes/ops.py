"""``/health`` (liveness), ``/ready`` (readiness) and ``/metrics`` (Prometheus), unauthenticated.

None of them reveals a job, a project's data or a secret, but ``/metrics`` names projects and
clusters: with ``MRS_JOBS_METRICS_TOKEN`` set it answers only ``Authorization: Bearer <token>``
(else 401); unset, keep the service on loopback or let the reverse proxy refuse ``/metrics``
to outsiders (see docs/OPERATIONS.md). They are left out of the OpenAPI document.
"""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from mrs_jobs.api.errors import error_response

__all__ = ["RETRY_AFTER_SECONDS", "router"]

RETRY_AFTER_SECONDS = 5

router = APIRouter(include_in_schema=False)


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the process answers. Says nothing about the store (that is ``/ready``)."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(request: Request) -> JSONResponse:
    """Ready to serve: the store answers and, if this process supervises, it heartbeats."""
    state = await run_in_threadpool(request.app.state.ctx.observability.readiness)
    if not state.ready:
        return error_response(
            503,
            "0202",
            f"The service is not ready: {state.reason}; retry later.",
            {"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    body: dict[str, Any] = {"status": "ready", "store": state.store, "supervisor": state.supervisor}
    if state.heartbeat_age_seconds is not None:
        body["heartbeat_age_seconds"] = round(state.heartbeat_age_seconds, 3)
    return JSONResponse(body)


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    token = request.app.state.ctx.settings.metrics_token
    if token is not None and not _bearer_matches(request, token.get_secret_value()):
        return error_response(
            401,
            "APIGW.0301",
            "Authentication failed: /metrics needs its bearer token.",
            {"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    payload = await run_in_threadpool(request.app.state.ctx.metrics.render)
    return Response(payload, media_type=CONTENT_TYPE_LATEST)


def _bearer_matches(request: Request, token: str) -> bool:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())
