"""Cluster administration: create, change and read cluster records of every kind.

(The MRS v1.1 cluster reads of the API are ``services/clusters.py``.) Settings are checked as
a whole when saved (``domain/clusterconfig.py``), so a typo is refused here, not by a job.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

from mrs_jobs.domain.clusterconfig import validate_cluster_config
from mrs_jobs.errors import InvalidParameter
from mrs_jobs.services.projects import require_project
from mrs_jobs.store import Store
from mrs_jobs.store.jobs import now_ms
from mrs_jobs.store.tenants import Cluster, add_cluster, get_cluster, list_clusters, update_cluster

__all__ = ["ClusterAdmin"]


def _check_slots(max_running: int | None, max_queued: int | None) -> None:
    if (max_running is not None and max_running < 0) or (max_queued is not None and max_queued < 0):
        raise InvalidParameter("max_running and max_queued must not be negative.")


class ClusterAdmin:
    """The cluster records of every project (administration; no project scope)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def create_cluster(
        self,
        project_id: str,
        name: str,
        *,
        components: list[str],
        config: dict[str, object],
        max_running: int,
        max_queued: int,
        cluster_id: str | None = None,
        kind: str = "local",
    ) -> str:
        _check_slots(max_running, max_queued)
        config = validate_cluster_config(kind, config)
        cid = cluster_id or str(uuid.uuid4())
        with self.store.write() as conn:
            require_project(conn, project_id)
            add_cluster(
                conn,
                Cluster(
                    id=cid,
                    project_id=project_id,
                    name=name,
                    kind=kind,
                    components=components,
                    config=config,
                    max_running=max_running,
                    max_queued=max_queued,
                    created_ms=now_ms(),
                ),
            )
        return cid

    def update_cluster(
        self,
        cluster_id: str,
        *,
        kind: str | None = None,
        settings: dict[str, object] | None = None,
        unset: list[str] | None = None,
        replace_all: bool = False,
        max_running: int | None = None,
        max_queued: int | None = None,
    ) -> Cluster:
        """Change a cluster: ``settings`` are merged into its config (or replace it), ``unset``
        names settings to drop; the result is validated as a whole. Running jobs keep the
        settings they were launched with; queued ones get the new ones."""
        _check_slots(max_running, max_queued)
        with self.store.write() as conn:
            current = get_cluster(conn, None, cluster_id)
            if current is None:
                raise InvalidParameter(f"cluster {cluster_id} does not exist.")
            config = {} if replace_all else dict(current.config)
            config.update(settings or {})
            for key in unset or []:
                config.pop(key, None)
            new_kind = kind or current.kind
            if new_kind != current.kind and "spark_master" not in (settings or {}):
                config.pop("spark_master", None)  # a local[N] master means nothing elsewhere
            updated = replace(
                current,
                kind=new_kind,
                config=validate_cluster_config(new_kind, config),
                max_running=current.max_running if max_running is None else max_running,
                max_queued=current.max_queued if max_queued is None else max_queued,
            )
            update_cluster(conn, updated)
        return updated

    def list_clusters(self, project_id: str | None = None) -> list[Cluster]:
        with self.store.read() as conn:
            return list_clusters(conn, project_id)

    def get_cluster(self, cluster_id: str) -> Cluster | None:
        with self.store.read() as conn:
            return get_cluster(conn, None, cluster_id)
