"""Who submitted which jobs: what a cluster's owner scope checks before a kill or a delete."""

from __future__ import annotations

from sqlalchemy import Connection, select

from mrs_jobs.store.tables import jobs
from mrs_jobs.store.tenants import Cluster

__all__ = ["submitters"]

_CHUNK = 500


def submitters(conn: Connection, cluster: Cluster, ids: list[str]) -> dict[str, str]:
    """job id -> the user that submitted it, for those of ``ids`` that are the cluster's."""
    wanted = sorted({i for i in ids if "\x00" not in i})  # PostgreSQL refuses a NUL
    found: dict[str, str] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        rows = conn.execute(
            select(jobs.c.id, jobs.c.user_name).where(
                jobs.c.id.in_(chunk),
                jobs.c.project_id == cluster.project_id,
                jobs.c.cluster_id == cluster.id,
            )
        )
        found.update({r.id: r.user_name for r in rows})
    return found
