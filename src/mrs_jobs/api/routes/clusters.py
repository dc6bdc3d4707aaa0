"""MRS v1.1 cluster reads (ours, contract §2): what the official SDK's v1 ``list_clusters`` and
``show_cluster_details`` call. Field names and JSON types follow the SDK's v1 ``Cluster`` model:
times, node counts and most numbers are strings there; an integer field given a string would
make the SDK raise.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from mrs_jobs import __version__
from mrs_jobs.api.auth import authenticate
from mrs_jobs.api.permissions import action, authorize
from mrs_jobs.api.routes.jobs import ClusterId, ProjectId
from mrs_jobs.api.schemas import ERROR_RESPONSES
from mrs_jobs.services.clusters import CLUSTER_STATE, ClusterQuery, ClusterView
from mrs_jobs.services.context import Caller

__all__ = ["router", "to_v11"]

router = APIRouter(prefix="/v1.1/{project_id}/cluster_infos", tags=["clusters (MRS v1.1)"])


async def v11_caller(request: Request, project_id: ProjectId) -> Caller:
    app = request.app.state.ctx
    who = await authenticate(
        request, app.authn, project_id=project_id, skew=app.settings.clock_skew_seconds
    )
    return await authorize(request, who)  # the route's declared action (api/permissions.py)


CallerDep = Annotated[Caller, Depends(v11_caller)]


@router.get(
    "",
    responses=ERROR_RESPONSES,
    openapi_extra=action("mrs:cluster:list"),
)
async def list_clusters(request: Request, who: CallerDep) -> JSONResponse:
    """Query: pageSize, currentPage, clusterName, clusterState, tags (k1*v1,k2), as in MRS."""
    query = ClusterQuery.parse(dict(request.query_params))
    page = await run_in_threadpool(request.app.state.ctx.clusters.list, who, query)
    return JSONResponse(
        {"clusterTotal": page.total, "clusters": [to_v11(v) for v in page.clusters]}
    )


@router.get(
    "/{cluster_id}",
    responses=ERROR_RESPONSES,
    openapi_extra=action("mrs:cluster:get"),
)
async def show_cluster_details(
    request: Request, who: CallerDep, cluster_id: ClusterId
) -> JSONResponse:
    view = await run_in_threadpool(request.app.state.ctx.clusters.show, who, cluster_id)
    return JSONResponse({"cluster": to_v11(view)})


def _cluster_type(components: list[str]) -> int:
    """MRS: 0 analysis, 1 streaming, 2 hybrid."""
    streaming = "Flink" in components
    analysis = bool(set(components) - {"Flink"})
    return 2 if streaming and analysis else 1 if streaming else 0


def _tags(config: dict[str, Any]) -> dict[str, Any]:
    tags = config.get("tags")
    return tags if isinstance(tags, dict) else {}


def to_v11(view: ClusterView) -> dict[str, Any]:
    c = view.cluster
    created = str(c.created_ms // 1000)  # "ten-digit timestamp", as MRS documents it
    return {
        "clusterId": c.id,
        "clusterName": c.name,
        "clusterState": CLUSTER_STATE,
        "clusterVersion": f"mrs-jobs {__version__}",
        "clusterType": _cluster_type(c.components),
        "stageDesc": "",
        "createAt": created,
        "updateAt": created,
        "chargingStartTime": created,
        "billingType": "Metered",
        "duration": "0",
        "fee": "0",
        "dataCenter": "local",
        "tenantId": c.project_id,
        "enterpriseProjectId": "0",
        "hadoopVersion": view.hadoop_version,
        "componentList": [
            {
                "componentId": f"mrs-jobs {__version__}_{i:03d}",  # MRS: "MRS 3.1.0_001"
                "componentName": comp.name,
                "componentVersion": comp.version,
                "componentDesc": comp.description,
            }
            for i, comp in enumerate(view.components, start=1)
        ],
        # One machine plays every role of a local cluster.
        "totalNodeNum": "1",
        "masterNodeNum": "1",
        "coreNodeNum": "0",
        "safeMode": 0,
        "isMrsManagerFinish": True,
        "logCollection": 0,
        "tags": ",".join(f"{k}={v}" for k, v in _tags(c.config).items()),
        "remark": "",
        "scale": "",
    }
