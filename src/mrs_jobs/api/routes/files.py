"""``GET /v2/{project_id}/clusters/{cluster_id}/files``: MRS's ShowHdfsFileList. Routes call
services only."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from mrs_jobs.api.permissions import action
from mrs_jobs.api.routes.jobs import ClusterId, caller
from mrs_jobs.api.schemas import ERROR_RESPONSES, FileListResponse
from mrs_jobs.services.context import Caller
from mrs_jobs.services.files import FileQuery

__all__ = ["router"]

router = APIRouter(prefix="/v2/{project_id}/clusters/{cluster_id}/files", tags=["files"])


@router.get(
    "",
    response_model=FileListResponse,
    status_code=200,
    responses=ERROR_RESPONSES,
    openapi_extra=action("mrs:file:list"),
)
async def list_files(
    request: Request,
    cluster_id: ClusterId,
    who: Caller = Depends(caller),  # noqa: B008 - FastAPI dependency
) -> JSONResponse:
    """One level of a directory under the cluster's roots (a file lists itself)."""
    query = FileQuery.parse(dict(request.query_params))
    found = await run_in_threadpool(request.app.state.ctx.files.list, who, cluster_id, query)
    return JSONResponse(
        {"total_count": found.total, "files": [f.to_mrs() for f in found.files]}, status_code=200
    )
