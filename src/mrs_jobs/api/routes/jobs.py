"""The six MRS v2 job-execution operations (contract §2), and a job's history (ours). Routes
call services only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from mrs_jobs.api import offload
from mrs_jobs.api.auth import authenticate
from mrs_jobs.api.body import body_schema, parse_body
from mrs_jobs.api.permissions import action, authorize
from mrs_jobs.api.schemas import (
    ERROR_RESPONSES,
    BatchDeleteRequest,
    JobDetailResponse,
    JobEventsResponse,
    JobListResponse,
    SqlResultResponse,
    SubmitRequest,
    SubmitResponse,
)
from mrs_jobs.domain.job import to_mrs
from mrs_jobs.domain.validation import ListQuery
from mrs_jobs.errors import JobNotFound
from mrs_jobs.services.context import Caller
from mrs_jobs.store.jobs import now_ms

__all__ = ["router"]

PREFIX = "/v2/{project_id}/clusters/{cluster_id}/job-executions"

ProjectId = Annotated[str, Path(pattern=r"^[A-Za-z0-9]{1,64}$", max_length=64)]
ClusterId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", max_length=64)]


async def caller(request: Request, project_id: ProjectId, cluster_id: ClusterId) -> Caller:
    app = request.app.state.ctx
    who = await authenticate(
        request, app.authn, project_id=project_id, skew=app.settings.clock_skew_seconds
    )
    return await authorize(request, who)  # the route's declared action (api/permissions.py)


CallerDep = Annotated[Caller, Depends(caller)]
router = APIRouter(prefix=PREFIX, tags=["job-executions"])


@router.post(
    "",
    response_model=SubmitResponse,
    status_code=200,
    openapi_extra=action("mrs:job:submit", **body_schema(SubmitRequest)),
    responses=ERROR_RESPONSES,
)
async def submit_job(request: Request, who: CallerDep, cluster_id: ClusterId) -> JSONResponse:
    body = await parse_body(request, SubmitRequest)
    job = await offload.submit_job(
        request.app.state.ctx.jobs,
        who,
        cluster_id,
        job_type=body.job_type,
        job_name=body.job_name,
        arguments=body.arguments,
        properties=body.properties,
        idempotency_key=request.headers.get("x-idempotency-key"),
    )
    return JSONResponse({"job_submit_result": {"job_id": job.id, "state": "COMPLETE"}})


@router.get(
    "",
    response_model=JobListResponse,
    status_code=202,
    responses=ERROR_RESPONSES,
    openapi_extra=action("mrs:job:list"),
)
async def list_jobs(request: Request, who: CallerDep, cluster_id: ClusterId) -> JSONResponse:
    query = ListQuery.parse(dict(request.query_params))
    total, found = await run_in_threadpool(request.app.state.ctx.jobs.list, who, cluster_id, query)
    at = now_ms()
    return JSONResponse(
        {"total_record": total, "job_list": [to_mrs(j, at) for j in found]}, status_code=202
    )


@router.post(
    "/batch-delete",
    status_code=202,
    response_class=Response,
    openapi_extra=action("mrs:job:batchDelete", **body_schema(BatchDeleteRequest)),
    responses=ERROR_RESPONSES,
)
async def batch_delete_jobs(request: Request, who: CallerDep, cluster_id: ClusterId) -> Response:
    body = await parse_body(request, BatchDeleteRequest)
    await run_in_threadpool(
        request.app.state.ctx.batch_delete.delete, who, cluster_id, body.job_id_list
    )
    return Response(status_code=202)


async def job_execution_id(job_execution_id: str) -> str:
    """The job id of the path; anything longer than a UUID cannot name a job (answered as a
    missing one). Declared after the caller in each route, so it is checked after
    authentication. ``async``: FastAPI runs a plain ``def`` dependency in the thread pool, a
    thread hop per request for a length check."""
    if len(job_execution_id) > 64:
        raise JobNotFound(job_execution_id[:64])
    return job_execution_id


JobIdDep = Annotated[str, Depends(job_execution_id)]


@router.get(
    "/{job_execution_id}",
    response_model=JobDetailResponse,
    status_code=202,
    responses=ERROR_RESPONSES,
    openapi_extra=action("mrs:job:get"),
)
async def show_job(
    request: Request, who: CallerDep, cluster_id: ClusterId, job_id: JobIdDep
) -> JSONResponse:
    ctx = request.app.state.ctx
    job = await offload.show_job(ctx.jobs, who, cluster_id, job_id)
    return JSONResponse({"job_detail": to_mrs(job, now_ms())}, status_code=202)


@router.post(
    "/{job_execution_id}/kill",
    status_code=202,
    response_class=Response,
    responses=ERROR_RESPONSES,
    openapi_extra=action("mrs:job:stop"),
)
async def kill_job(
    request: Request, who: CallerDep, cluster_id: ClusterId, job_id: JobIdDep
) -> Response:
    await run_in_threadpool(request.app.state.ctx.jobs.kill, who, cluster_id, job_id)
    return Response(status_code=202)


@router.get(
    "/{job_execution_id}/sql-result",
    response_model=SqlResultResponse,
    status_code=202,
    responses=ERROR_RESPONSES,
    openapi_extra=action("mrs:job:get"),
)
async def sql_result(
    request: Request, who: CallerDep, cluster_id: ClusterId, job_id: JobIdDep
) -> JSONResponse:
    results = await run_in_threadpool(
        request.app.state.ctx.jobs.sql_result, who, cluster_id, job_id
    )
    return JSONResponse({"sql_results": results}, status_code=202)


@router.get(
    "/{job_execution_id}/events",
    response_model=JobEventsResponse,
    status_code=200,
    responses=ERROR_RESPONSES,
    openapi_extra=action("mrs:job:get"),
)
async def job_events(
    request: Request, who: CallerDep, cluster_id: ClusterId, job_id: JobIdDep
) -> JSONResponse:
    """Ours: every state change of the job, oldest first, with its reason and its cause."""
    events = await run_in_threadpool(request.app.state.ctx.jobs.events, who, cluster_id, job_id)
    rows = [
        {
            "event_time": e.at_ms,
            "from_state": e.from_state,
            "to_state": e.to_state,
            "reason": e.reason,
            "caused_by": e.actor,
        }
        for e in events
    ]
    return JSONResponse({"job_events": rows}, status_code=200)
