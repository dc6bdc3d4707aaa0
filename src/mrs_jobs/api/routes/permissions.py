"""``GET /v2/{project_id}/permissions`` (ours): what the calling credential may do.

Its policy (a system policy's name, or ``custom`` with the document) and, for every action of
the API, whether it is allowed: the console hides what the signed-in token may not do, and a
user can see why a call answered 403. Routes call services only.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from mrs_jobs.api.permissions import action
from mrs_jobs.api.routes.clusters import CallerDep
from mrs_jobs.api.schemas import ERROR_RESPONSES

__all__ = ["router"]

router = APIRouter(prefix="/v2/{project_id}/permissions", tags=["permissions"])


@router.get("", responses=ERROR_RESPONSES, openapi_extra=action("mrs:credential:get"))
async def my_permissions(request: Request, who: CallerDep) -> JSONResponse:
    return JSONResponse(request.app.state.ctx.permissions.describe(who))
