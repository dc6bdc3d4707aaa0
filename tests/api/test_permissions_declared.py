"""Every API route is declared with exactly one action, and the reference's table agrees;
a route that forgets its action is denied to everyone (fail closed)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from mrs_jobs.api.permissions import ACTION_KEY, declared_action
from mrs_jobs.api.routes.jobs import caller
from mrs_jobs.domain.policies import ACTIONS
from mrs_jobs.services.context import Caller

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
SHORT = "/v2/{project_id}/clusters/{cluster_id}"
UNAUTHENTICATED = ("/health", "/ready", "/metrics", "/openapi.json", "/spark-history", "/console")


def api_routes(app: Any) -> list[tuple[str, str, APIRoute]]:
    """(method, path, route) of every route, included routers flattened."""
    found = []
    for route in app.routes:
        if not hasattr(route, "effective_route_contexts"):
            continue
        for ctx in route.effective_route_contexts():
            for method in getattr(ctx.original_route, "methods", None) or ():
                if method != "HEAD":
                    found.append((method, ctx.path, ctx.original_route))
    return found


def test_every_authenticated_route_declares_one_known_action(api) -> None:
    routes = api_routes(api.client.app)
    authenticated = [r for r in routes if r[1].startswith(("/v2/", "/v1.1/"))]
    assert len(authenticated) >= 21  # the scan sees the routes, or it proves nothing
    undeclared = [f"{m} {p}" for m, p, r in authenticated if declared_action(r) not in ACTIONS]
    assert not undeclared, f"routes without a declared action: {undeclared}"
    others = [f"{m} {p}" for m, p, r in routes if not p.startswith(("/v2/", "/v1.1/"))]
    assert all(p.split()[1].startswith(UNAUTHENTICATED) or p.endswith(" /") for p in others)


def test_the_reference_table_lists_each_route_under_its_action(api) -> None:
    text = DOC.read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `(mrs:[a-zA-Z]+:[a-zA-Z]+)` \| (.+) \|$", text, re.M))
    assert set(rows) == set(ACTIONS)
    for method, path, route in api_routes(api.client.app):
        if not path.startswith(("/v2/", "/v1.1/")):
            continue
        shown = f"`{method} {path.replace(SHORT, '…')}`"
        assert shown in rows[declared_action(route)], f"{shown} not under {declared_action(route)}"


def test_the_openapi_document_names_each_action(api) -> None:
    doc = api.client.get("/openapi.json").json()
    submit = doc["paths"][SHORT + "/job-executions"]["post"]
    assert submit[ACTION_KEY] == "mrs:job:submit"
    assert "requestBody" in submit  # the body schema is kept beside it


def test_a_route_without_a_declared_action_is_denied_even_to_full_access(api) -> None:
    app = api.client.app

    @app.get(SHORT + "/undeclared")
    async def undeclared(who: Annotated[Caller, Depends(caller)]) -> JSONResponse:
        return JSONResponse({"reached": True})

    r = api.client.get(f"/v2/{api.project_id}/clusters/{api.cluster_id}/undeclared")
    assert r.status_code == 403, r.text
    assert r.json()["error_code"] == "APIGW.0302"
    assert "reached" not in r.text
