"""MRS v1.1 job APIs (contract §14): what the official SDK's v1 ``create_and_execute_job``,
``list_execute_job``, ``show_job_exes`` and ``delete_job_execution`` call, and the Terraform
``mrs_job_v1`` resources. The same jobs as v2 (``services/jobs_v11.py``); the v1 field mapping
is ``domain/v1jobs.py``. Status codes as MRS documents them: 200, and 204 for a delete.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from mrs_jobs.api.body import body_schema, parse_body
from mrs_jobs.api.offload import read_inline
from mrs_jobs.api.permissions import action
from mrs_jobs.api.routes.clusters import CallerDep
from mrs_jobs.api.schemas import ERROR_RESPONSES
from mrs_jobs.api.schemas_v11 import (
    JobExeListResponse,
    JobExeResponse,
    SubmitJobV11Request,
    SubmitJobV11Response,
)
from mrs_jobs.domain.v1jobs import parse_list_query, to_job_execution, to_submit_result
from mrs_jobs.errors import JobNotFound
from mrs_jobs.store.jobs import now_ms

__all__ = ["router"]

router = APIRouter(prefix="/v1.1/{project_id}", tags=["jobs (MRS v1.1)"])


def _job_id(value: str) -> str:
    """Anything longer than a UUID cannot name a job (answered as a missing one), checked
    after authentication as in v2."""
    if len(value) > 64:
        raise JobNotFound(value[:64])
    return value


async def job_exe_id(job_exe_id: str) -> str:
    return _job_id(job_exe_id)


async def job_execution_id(job_execution_id: str) -> str:
    return _job_id(job_execution_id)


@router.post(
    "/jobs/submit-job",
    response_model=SubmitJobV11Response,
    status_code=200,
    openapi_extra=action("mrs:job:submit", **body_schema(SubmitJobV11Request)),
    responses=ERROR_RESPONSES,
)
async def create_and_execute_job(request: Request, who: CallerDep) -> JSONResponse:
    body = await parse_body(request, SubmitJobV11Request)
    job = await run_in_threadpool(request.app.state.ctx.jobs_v11.submit, who, body.submission())
    return JSONResponse(to_submit_result(job, now_ms()))


@router.get(
    "/job-exes",
    response_model=JobExeListResponse,
    status_code=200,
    responses=ERROR_RESPONSES,
    openapi_extra=action("mrs:job:list"),
)
async def list_execute_job(request: Request, who: CallerDep) -> JSONResponse:
    """Query: cluster_id (required), page_size, current_page, job_name, state, id."""
    cluster_id, query = parse_list_query(dict(request.query_params))
    total, found = await run_in_threadpool(
        request.app.state.ctx.jobs_v11.list, who, cluster_id, query
    )
    at = now_ms()
    return JSONResponse(
        {"totalRecord": total, "job_executions": [to_job_execution(j, at) for j in found]}
    )


@router.get(
    "/job-exes/{job_exe_id}",
    response_model=JobExeResponse,
    status_code=200,
    responses=ERROR_RESPONSES,
    openapi_extra=action("mrs:job:get"),
)
async def show_job_exes(
    request: Request, who: CallerDep, job_id: Annotated[str, Depends(job_exe_id)]
) -> JSONResponse:
    ctx = request.app.state.ctx
    job = await read_inline(ctx.store, ctx.jobs_v11.show, who, job_id)
    return JSONResponse({"job_execution": to_job_execution(job, now_ms())})


@router.delete(
    "/job-executions/{job_execution_id}",
    status_code=204,
    response_class=Response,
    responses=ERROR_RESPONSES,
    openapi_extra=action("mrs:job:delete"),
)
async def delete_job_execution(
    request: Request, who: CallerDep, job_id: Annotated[str, Depends(job_execution_id)]
) -> Response:
    await run_in_threadpool(request.app.state.ctx.jobs_v11.delete, who, job_id)
    return Response(status_code=204)
