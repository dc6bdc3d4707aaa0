"""A cluster's owner scope (ours): on a cluster with ``owner_scope``, a job is killed or
deleted only by the user that submitted it, unless the caller's policy allows the ``…Any``
action (domain/policies.OWNER_ACTIONS). Checked inside the change's transaction, before
anything is changed; a refusal is audited in its own transaction (the change's rolls back).
"""

from __future__ import annotations

from sqlalchemy import Connection

from mrs_jobs.domain.clusterconfig import settings_of
from mrs_jobs.errors import InvalidParameter, PermissionDenied
from mrs_jobs.services.context import Caller
from mrs_jobs.store import Store
from mrs_jobs.store.audit import record_audit
from mrs_jobs.store.jobs import now_ms
from mrs_jobs.store.ownership import submitters
from mrs_jobs.store.tenants import Cluster

__all__ = ["KILL_ANY", "DELETE_ANY", "record_denial", "require_owner"]

KILL_ANY = "mrs:job:stopAny"
DELETE_ANY = "mrs:job:deleteAny"


def owner_scoped(cluster: Cluster) -> bool:
    try:
        return settings_of(cluster.kind, cluster.config).owner_scope
    except InvalidParameter:
        return True  # a stored config that no longer passes: the stricter reading


def require_owner(
    conn: Connection, caller: Caller, cluster: Cluster, ids: list[str], action: str
) -> None:
    """PermissionDenied (naming ``action`` and a job) when the cluster is owner-scoped, the
    caller may not act on any job, and one of ``ids`` was submitted by another user."""
    if caller.policy.allows(action) or not owner_scoped(cluster):
        return
    users = submitters(conn, cluster, ids)
    others = sorted(i for i, user in users.items() if user != caller.user_name)
    if others:
        more = f" and {len(others) - 1} more" if len(others) > 1 else ""
        raise PermissionDenied(
            action,
            f" Cluster {cluster.id} has owner_scope: job {others[0]}{more} "
            f"was submitted by another user than {caller.user_name}.",
        )


def record_denial(
    store: Store, caller: Caller, action: str, cluster_id: str | None, detail: dict
) -> None:
    """An audit row for a request refused by the caller's policy (nothing else changes)."""
    with store.write() as conn:
        record_audit(
            conn,
            at_ms=now_ms(),
            action=action,
            project_id=caller.project_id,
            cluster_id=cluster_id,
            credential_id=caller.credential_id,
            request_id=caller.request_id,
            detail={"user_name": caller.user_name, **detail},
            outcome="refused",
            permission=action,
            decision="deny",
        )
