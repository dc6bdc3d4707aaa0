"""``GET /v2/{project_id}/clusters/{cluster_id}/job-usage`` (ours): what the cluster's ended
jobs used, by user, job type or day (docs/api.md "Job usage"). Routes call services only."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from mrs_jobs.api.permissions import action
from mrs_jobs.api.routes.jobs import ClusterId, caller
from mrs_jobs.api.schemas import ERROR_RESPONSES
from mrs_jobs.domain.usage import UsageQuery
from mrs_jobs.services.context import Caller
from mrs_jobs.store.jobs import now_ms

__all__ = ["router"]

router = APIRouter(prefix="/v2/{project_id}/clusters/{cluster_id}/job-usage", tags=["usage"])


class UsageFigures(BaseModel):
    job_count: int = Field(description="Jobs that ended in the window.")
    measured_job_count: int = Field(description="Those whose usage is known.")
    cpu_seconds: float = Field(description="Sum of their cpu_seconds.")
    peak_memory_mb: int | None = Field(description="The largest peak_memory_mb; null: none known.")
    memory_mb_seconds: float = Field(description="Sum of peak_memory_mb × run time, per job.")


class UsageGroup(UsageFigures):
    group: str = Field(description="The user, the job type, or the UTC day (YYYY-MM-DD).")


class JobUsageResponse(BaseModel):
    since: int
    until: int
    group_by: str
    groups: list[UsageGroup]
    total: UsageFigures


@router.get(
    "",
    response_model=JobUsageResponse,
    status_code=200,
    responses=ERROR_RESPONSES,
    openapi_extra=action("mrs:job:list"),
)
async def job_usage(
    request: Request,
    cluster_id: ClusterId,
    who: Caller = Depends(caller),  # noqa: B008 - FastAPI dependency
) -> JSONResponse:
    """What the cluster's jobs that ended in ``[since, until)`` used, per group."""
    query = UsageQuery.parse(dict(request.query_params), now_ms())
    found = await run_in_threadpool(request.app.state.ctx.usage.rollup, who, cluster_id, query)
    return JSONResponse(found.to_json(), status_code=200)
