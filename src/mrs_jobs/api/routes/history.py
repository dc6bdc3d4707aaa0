"""``GET /spark-history/{cluster_id}/{app_id}`` (ours): an ended local Spark job's tracking_url.

Unauthenticated, like the YARN proxy link it stands for: a browser follows it. It answers
``302`` to the application's page on the cluster's Spark History Server (on loopback), started
on demand; the ids are checked strictly, so the path names nothing else.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from mrs_jobs.engines.spark_history import ROUTE

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


@router.get(ROUTE + "/{cluster_id}/{app_id}")
async def spark_history(request: Request, cluster_id: str, app_id: str) -> RedirectResponse:
    url = await run_in_threadpool(request.app.state.ctx.history.page, cluster_id, app_id)
    return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})
