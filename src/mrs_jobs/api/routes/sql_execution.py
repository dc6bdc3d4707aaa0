"""MRS v2 SQL execution: ``POST .../sql-execution`` (ExecuteSql), ``GET
.../sql-execution/{sql_id}`` (ShowSqlResult), ``POST .../sql-execution/{sql_id}/cancel``
(CancelSql). Routes call services only."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from mrs_jobs.api.body import body_schema, parse_body
from mrs_jobs.api.permissions import action
from mrs_jobs.api.routes.jobs import CallerDep, ClusterId
from mrs_jobs.api.schemas import (
    ERROR_RESPONSES,
    SqlCancelResponse,
    SqlExecutionRequest,
    SqlExecutionResponse,
)
from mrs_jobs.errors import SqlExecutionNotFound

__all__ = ["router"]

router = APIRouter(
    prefix="/v2/{project_id}/clusters/{cluster_id}/sql-execution", tags=["sql-execution"]
)


async def sql_id_of(sql_id: str) -> str:
    """The path's execution id; anything longer than a UUID names none. Declared after the
    caller in each route, so it is checked after authentication."""
    if len(sql_id) > 64:
        raise SqlExecutionNotFound(sql_id[:64])
    return sql_id


SqlIdDep = Annotated[str, Depends(sql_id_of)]


@router.post(
    "",
    response_model=SqlExecutionResponse,
    status_code=200,
    openapi_extra=action("mrs:sql:execute", **body_schema(SqlExecutionRequest)),
    responses=ERROR_RESPONSES,
)
async def execute_sql(request: Request, who: CallerDep, cluster_id: ClusterId) -> JSONResponse:
    """Queue one statement on the cluster's SQL server; its id is what show and cancel take."""
    body = await parse_body(request, SqlExecutionRequest)
    done = await run_in_threadpool(
        request.app.state.ctx.sql.execute,
        who,
        cluster_id,
        sql_type=body.sql_type,
        sql_content=body.sql_content,
        database=body.database,
        archive_path=body.archive_path,
    )
    return JSONResponse(done.to_mrs(), status_code=200)


@router.get(
    "/{sql_id}",
    response_model=SqlExecutionResponse,
    status_code=200,
    responses=ERROR_RESPONSES,
    openapi_extra=action("mrs:sql:get"),
)
async def show_sql_result(
    request: Request, who: CallerDep, cluster_id: ClusterId, sql_id: SqlIdDep
) -> JSONResponse:
    found = await run_in_threadpool(request.app.state.ctx.sql.show, who, cluster_id, sql_id)
    return JSONResponse(found.to_mrs(), status_code=200)


@router.post(
    "/{sql_id}/cancel",
    response_model=SqlCancelResponse,
    status_code=200,
    responses=ERROR_RESPONSES,
    openapi_extra=action("mrs:sql:cancel"),
)
async def cancel_sql(
    request: Request, who: CallerDep, cluster_id: ClusterId, sql_id: SqlIdDep
) -> JSONResponse:
    status = await run_in_threadpool(request.app.state.ctx.sql.cancel, who, cluster_id, sql_id)
    return JSONResponse({"status": status}, status_code=200)
