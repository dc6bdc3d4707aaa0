"""Every route is declared with the one action it needs (domain/policies.py), next to it:

    @router.post("", openapi_extra=action("mrs:job:submit"))

The route's caller dependency authenticates, then :func:`authorize` checks the credential's
policy for the route's declared action: denied answers 403 (``APIGW.0302``, naming the action)
and leaves an audit row with the decision; a route with no declared action is denied to
everyone (and fails tests/api/test_permissions_declared.py), so forgetting one never opens it.
The action is also in the OpenAPI document under ``x-mrs-action``.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from mrs_jobs.domain.policies import ACTIONS
from mrs_jobs.errors import PermissionDenied
from mrs_jobs.services.context import Caller

__all__ = ["ACTION_KEY", "action", "authorize", "declared_action"]

log = logging.getLogger(__name__)

ACTION_KEY = "x-mrs-action"


def action(name: str, **openapi_extra: Any) -> dict[str, Any]:
    """The ``openapi_extra`` of a route that needs ``name`` (checked when the module loads)."""
    if name not in ACTIONS:
        raise ValueError(f"{name} is not an action of domain/policies.ACTIONS")
    return {**openapi_extra, ACTION_KEY: name}


def declared_action(route: Any) -> str | None:
    """The action a route object was declared with, or None."""
    extra = getattr(route, "openapi_extra", None) or {}
    found = extra.get(ACTION_KEY)
    return found if isinstance(found, str) else None


async def authorize(request: Request, who: Caller) -> Caller:
    """``who`` allowed the matched route's action (its ``action`` set), or PermissionDenied."""
    needed = declared_action(request.scope.get("route"))
    if needed is None:
        log.error("auth.undeclared_route", extra={"path": request.url.path})
        raise PermissionDenied("an undeclared action", " (this route declares no action)")
    if who.policy.allows(needed):
        return replace(who, action=needed)
    cluster_id = request.path_params.get("cluster_id")
    await run_in_threadpool(
        request.app.state.ctx.permissions.record_denial,
        who,
        needed,
        cluster_id if isinstance(cluster_id, str) else None,
        request.method,
    )
    raise PermissionDenied(needed)
