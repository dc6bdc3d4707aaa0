"""``GET .../job-executions/{id}/log`` (ours): a job's stdout/stderr as plain text."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from mrs_jobs.api.permissions import action
from mrs_jobs.api.routes.jobs import PREFIX, ClusterId, caller
from mrs_jobs.api.schemas import ERROR_RESPONSES
from mrs_jobs.services.context import Caller

__all__ = ["router"]

router = APIRouter(prefix=PREFIX, tags=["job-executions (extensions)"])


@router.get(
    "/{job_execution_id}/log",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}, **ERROR_RESPONSES},
    openapi_extra=action("mrs:job:get"),
)
async def job_log(
    request: Request,
    job_execution_id: str,
    cluster_id: ClusterId,
    who: Caller = Depends(caller),  # noqa: B008 - FastAPI dependency
    type: str = Query("stdout", description="stdout or stderr"),  # noqa: A002 - API name
    offset: int = Query(0, description="Byte offset; negative = the last -offset bytes."),
    limit: int = Query(65536, description="Bytes to return (1-1048576)."),
) -> Response:
    chunk = await run_in_threadpool(
        request.app.state.ctx.logs.read, who, cluster_id, job_execution_id, type, offset, limit
    )
    return Response(
        chunk.data,
        media_type="text/plain; charset=utf-8",
        headers={
            "X-Log-Offset": str(chunk.offset),
            "X-Log-Next-Offset": str(chunk.next_offset),
            "X-Log-Size": str(chunk.size),
        },
    )
