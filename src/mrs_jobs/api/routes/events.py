"""``GET /v2/{project_id}/clusters/{cluster_id}/job-events`` (ours): the cluster's job events
after a cursor, as one JSON page (``wait``: long-poll) or, with ``Accept: text/event-stream``,
as an endless Server-Sent Events stream (docs/api.md "Job event stream"). Routes call
services only."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from mrs_jobs.api.permissions import action
from mrs_jobs.api.routes.jobs import ClusterId, caller
from mrs_jobs.api.schemas import ERROR_RESPONSES
from mrs_jobs.domain.events import FeedEvent
from mrs_jobs.services.context import Caller
from mrs_jobs.services.feed import FeedQuery, FeedScope, FeedService

__all__ = ["router"]

router = APIRouter(prefix="/v2/{project_id}/clusters/{cluster_id}/job-events", tags=["events"])

SSE = "text/event-stream"


class JobEventsPage(BaseModel):
    events: list[dict[str, Any]] = Field(description="The events, in cursor order.")
    next_cursor: str = Field(description="Pass it as the next request's after.")


@router.get(
    "",
    response_model=JobEventsPage,
    status_code=200,
    responses=ERROR_RESPONSES,
    openapi_extra=action("mrs:job:list"),
)
async def job_events(
    request: Request,
    cluster_id: ClusterId,
    who: Caller = Depends(caller),  # noqa: B008 - FastAPI dependency
) -> JSONResponse | StreamingResponse:
    """The cluster's events after ``after``; SSE when the client accepts only that."""
    feed: FeedService = request.app.state.ctx.feed
    streaming = SSE in request.headers.get("accept", "")
    last_id = request.headers.get("last-event-id") if streaming else None
    query = FeedQuery.parse(dict(request.query_params), last_id or None)
    scope = FeedScope(who.project_id, cluster_id, query.job_id)
    first = await feed.first(scope, query)
    if not streaming:
        page = await feed.poll(scope, query, first)
        return JSONResponse(page.to_json(), status_code=200)
    return StreamingResponse(
        _sse(feed.stream(scope, first)),
        media_type=SSE,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _sse(events: AsyncIterator[FeedEvent | None]) -> AsyncIterator[bytes]:
    yield b"retry: 1000\n\n"
    async for event in events:
        if event is None:
            yield b": heartbeat\n\n"
            continue
        data = json.dumps(event.to_json(), separators=(",", ":"))
        yield f"id: {event.seq}\nevent: {event.type}\ndata: {data}\n\n".encode()
