"""Projects, credentials and clusters."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from mrs_jobs.store.tables import clusters, credentials, projects

__all__ = [
    "Cluster",
    "Credential",
    "add_cluster",
    "add_credential",
    "add_project",
    "count_projects",
    "credential_by_ak",
    "credential_by_token_hash",
    "delete_credential",
    "get_cluster",
    "get_credential",
    "get_project",
    "list_clusters",
    "update_cluster",
    "list_credentials",
    "lock_cluster",
    "set_credential_disabled",
    "set_credential_expiry",
    "set_credential_policy",
    "set_secret_key",
]


@dataclass(frozen=True)
class Credential:
    """A credentials row. ``secret_key`` is the sealed form as stored (services open it)."""

    id: str
    project_id: str
    kind: str
    user_name: str
    access_key: str | None
    secret_key: str | None = field(repr=False)
    expires_ms: int | None
    disabled: bool
    created_ms: int = 0
    policy: str = "MRS FullAccess"  # a system policy's name or a JSON document


@dataclass(frozen=True)
class Cluster:
    id: str
    project_id: str
    name: str
    kind: str
    components: list[str]
    config: dict[str, Any] = field(default_factory=dict)
    max_running: int = 10
    max_queued: int = 1000
    created_ms: int = 0


def add_project(conn: Connection, project_id: str, name: str, at_ms: int) -> None:
    conn.execute(insert(projects).values(id=project_id, name=name, created_ms=at_ms))


def get_project(conn: Connection, project_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(projects).where(projects.c.id == project_id)).first()
    return dict(row._mapping) if row else None


def count_projects(conn: Connection) -> int:
    return len(conn.execute(select(projects.c.id)).all())


def add_credential(conn: Connection, **values: Any) -> None:
    conn.execute(insert(credentials).values(**values))


def _credential(row: Any) -> Credential:
    m = row._mapping
    return Credential(
        id=m["id"],
        project_id=m["project_id"],
        kind=m["kind"],
        user_name=m["user_name"],
        access_key=m["access_key"],
        secret_key=m["secret_key"],
        expires_ms=m["expires_ms"],
        disabled=bool(m["disabled"]),
        created_ms=m["created_ms"],
        policy=m["policy"],
    )


def credential_by_ak(conn: Connection, access_key: str) -> Credential | None:
    row = conn.execute(select(credentials).where(credentials.c.access_key == access_key)).first()
    return _credential(row) if row else None


def credential_by_token_hash(conn: Connection, token_hash: str) -> Credential | None:
    row = conn.execute(select(credentials).where(credentials.c.token_hash == token_hash)).first()
    return _credential(row) if row else None


def get_credential(conn: Connection, credential_id: str) -> Credential | None:
    row = conn.execute(select(credentials).where(credentials.c.id == credential_id)).first()
    return _credential(row) if row else None


def list_credentials(
    conn: Connection, project_id: str | None = None, kind: str | None = None
) -> list[Credential]:
    q = select(credentials).order_by(credentials.c.created_ms, credentials.c.id)
    if project_id is not None:
        q = q.where(credentials.c.project_id == project_id)
    if kind is not None:
        q = q.where(credentials.c.kind == kind)
    return [_credential(r) for r in conn.execute(q)]


def set_credential_disabled(conn: Connection, credential_id: str, disabled: bool) -> bool:
    res = conn.execute(
        update(credentials).where(credentials.c.id == credential_id).values(disabled=disabled)
    )
    return res.rowcount == 1


def set_credential_expiry(conn: Connection, credential_id: str, expires_ms: int | None) -> bool:
    res = conn.execute(
        update(credentials).where(credentials.c.id == credential_id).values(expires_ms=expires_ms)
    )
    return res.rowcount == 1


def set_credential_policy(conn: Connection, credential_id: str, policy: str) -> bool:
    r = conn.execute(
        update(credentials).where(credentials.c.id == credential_id).values(policy=policy)
    )
    return r.rowcount == 1


def set_secret_key(conn: Connection, credential_id: str, sealed: str) -> bool:
    res = conn.execute(
        update(credentials).where(credentials.c.id == credential_id).values(secret_key=sealed)
    )
    return res.rowcount == 1


def delete_credential(conn: Connection, credential_id: str) -> bool:
    res = conn.execute(delete(credentials).where(credentials.c.id == credential_id))
    return res.rowcount == 1


def add_cluster(conn: Connection, cluster: Cluster) -> None:
    conn.execute(
        insert(clusters).values(
            id=cluster.id,
            project_id=cluster.project_id,
            name=cluster.name,
            kind=cluster.kind,
            components=json.dumps(cluster.components),
            config=json.dumps(cluster.config),
            max_running=cluster.max_running,
            max_queued=cluster.max_queued,
            created_ms=cluster.created_ms,
        )
    )


def _cluster(row: Any) -> Cluster:
    m = row._mapping
    return Cluster(
        id=m["id"],
        project_id=m["project_id"],
        name=m["name"],
        kind=m["kind"],
        components=json.loads(m["components"]),
        config=json.loads(m["config"]),
        max_running=m["max_running"],
        max_queued=m["max_queued"],
        created_ms=m["created_ms"],
    )


def get_cluster(conn: Connection, project_id: str | None, cluster_id: str) -> Cluster | None:
    q = select(clusters).where(clusters.c.id == cluster_id)
    if project_id is not None:
        q = q.where(clusters.c.project_id == project_id)
    row = conn.execute(q).first()
    return _cluster(row) if row else None


_LOCK_CLUSTER = (
    select(clusters)
    .where(
        clusters.c.id == bindparam("cluster_id"), clusters.c.project_id == bindparam("project_id")
    )
    .with_for_update()
)


def lock_cluster(conn: Connection, project_id: str, cluster_id: str) -> Cluster | None:
    """Read a cluster row and hold its lock until commit (serialises queue checks on PG).
    Every submit takes it: the statement is built once."""
    params = {"cluster_id": cluster_id, "project_id": project_id}
    row = conn.execute(_LOCK_CLUSTER, params).first()
    return _cluster(row) if row else None


def list_clusters(conn: Connection, project_id: str | None = None) -> list[Cluster]:
    q = select(clusters).order_by(clusters.c.created_ms, clusters.c.id)
    if project_id is not None:
        q = q.where(clusters.c.project_id == project_id)
    return [_cluster(r) for r in conn.execute(q)]


def update_cluster(conn: Connection, cluster: Cluster) -> bool:
    """Replace a cluster's kind, config and limits (name, project and id stay)."""
    res = conn.execute(
        update(clusters)
        .where(clusters.c.id == cluster.id, clusters.c.project_id == cluster.project_id)
        .values(
            kind=cluster.kind,
            config=json.dumps(cluster.config),
            max_running=cluster.max_running,
            max_queued=cluster.max_queued,
        )
    )
    return res.rowcount == 1
