"""Projects, credentials, clusters and the first-run bootstrap."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import string
import uuid
from dataclasses import dataclass
from pathlib import Path

from mrs_jobs.errors import AuthError, InvalidParameter
from mrs_jobs.store import Store
from mrs_jobs.store.jobs import now_ms
from mrs_jobs.store.tenants import (
    Cluster,
    Credential,
    add_cluster,
    add_credential,
    add_project,
    count_projects,
    credential_by_ak,
    credential_by_token_hash,
    get_project,
)

__all__ = [
    "Bootstrap",
    "TenantService",
    "hash_token",
    "update_bootstrap_endpoint",
    "write_bootstrap_file",
]

_AK_ALPHABET = string.ascii_uppercase + string.digits


def hash_token(token: str) -> str:
    """Tokens are 256-bit random values, so a plain SHA-256 is a safe stored form."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Bootstrap:
    project_id: str
    cluster_id: str
    ak: str
    sk: str
    created: bool


class TenantService:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- authentication lookups --------------------------------------------------------------
    def credential_for_ak(self, access_key: str) -> Credential | None:
        with self.store.read() as conn:
            cred = credential_by_ak(conn, access_key)
        if cred is None or cred.disabled or cred.kind != "aksk":
            return None
        if cred.expires_ms and cred.expires_ms < now_ms():
            return None
        return cred

    def credential_for_token(self, token: str) -> Credential:
        with self.store.read() as conn:
            cred = credential_by_token_hash(conn, hash_token(token))
        if cred is None or cred.disabled or cred.kind != "token":
            raise AuthError("The token is not valid.")
        if cred.expires_ms is not None and cred.expires_ms < now_ms():
            raise AuthError("The token has expired.")
        return cred

    # -- administration ----------------------------------------------------------------------
    def create_project(self, name: str, project_id: str | None = None) -> str:
        pid = project_id or uuid.uuid4().hex
        with self.store.write() as conn:
            if get_project(conn, pid) is not None:
                raise InvalidParameter(f"project {pid} already exists.")
            add_project(conn, pid, name, now_ms())
        return pid

    def create_aksk(self, project_id: str, user_name: str = "admin") -> tuple[str, str]:
        ak = "".join(secrets.choice(_AK_ALPHABET) for _ in range(20))
        sk = secrets.token_urlsafe(30)[:40]
        with self.store.write() as conn:
            self._require_project(conn, project_id)
            add_credential(
                conn,
                id=str(uuid.uuid4()),
                project_id=project_id,
                kind="aksk",
                user_name=user_name,
                access_key=ak,
                secret_key=sk,
                token_hash=None,
                expires_ms=None,
                disabled=False,
                created_ms=now_ms(),
            )
        return ak, sk

    def create_token(self, project_id: str, user_name: str, ttl_seconds: int) -> str:
        if ttl_seconds <= 0:
            raise InvalidParameter("a token's lifetime must be positive.")
        token = "mrsj_" + secrets.token_urlsafe(32)
        at = now_ms()
        with self.store.write() as conn:
            self._require_project(conn, project_id)
            add_credential(
                conn,
                id=str(uuid.uuid4()),
                project_id=project_id,
                kind="token",
                user_name=user_name,
                access_key=None,
                secret_key=None,
                token_hash=hash_token(token),
                expires_ms=at + ttl_seconds * 1000,
                disabled=False,
                created_ms=at,
            )
        return token

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
    ) -> str:
        if max_running < 0 or max_queued < 0:
            raise InvalidParameter("max_running and max_queued must not be negative.")
        cid = cluster_id or str(uuid.uuid4())
        with self.store.write() as conn:
            self._require_project(conn, project_id)
            add_cluster(
                conn,
                Cluster(
                    id=cid,
                    project_id=project_id,
                    name=name,
                    kind="local",
                    components=components,
                    config=config,
                    max_running=max_running,
                    max_queued=max_queued,
                    created_ms=now_ms(),
                ),
            )
        return cid

    @staticmethod
    def _require_project(conn, project_id: str) -> None:  # type: ignore[no-untyped-def]
        if get_project(conn, project_id) is None:
            raise InvalidParameter(f"project {project_id} does not exist.")

    # -- first run ---------------------------------------------------------------------------
    def bootstrap(
        self, bootstrap_file: Path, *, max_running: int, max_queued: int, parallelism: int
    ) -> Bootstrap | None:
        """On an empty store create a project, an AK/SK and a local cluster; else None."""
        with self.store.read() as conn:
            if count_projects(conn) > 0:
                return None
        project_id = self.create_project("default")
        ak, sk = self.create_aksk(project_id, "admin")
        cluster_id = self.create_cluster(
            project_id,
            "local",
            components=["Spark", "Hive", "Hadoop", "Flink"],
            config={"spark_master": f"local[{parallelism}]"},
            max_running=max_running,
            max_queued=max_queued,
        )
        return Bootstrap(project_id, cluster_id, ak, sk, created=True)


def write_bootstrap_file(path: Path, endpoint: str, boot: Bootstrap) -> None:
    """bootstrap.json, mode 0600 from the first byte (it holds the SK)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "endpoint": endpoint,
        "project_id": boot.project_id,
        "cluster_id": boot.cluster_id,
        "ak": boot.ak,
        "sk": boot.sk,
    }
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh, indent=2)
        fh.write("\n")
    os.replace(tmp, path)


def update_bootstrap_endpoint(path: Path, endpoint: str) -> dict[str, str] | None:
    """Keep bootstrap.json's endpoint current when the service restarts on another port."""
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    if data.get("endpoint") != endpoint:
        data["endpoint"] = endpoint
        write_bootstrap_file(
            path,
            endpoint,
            Bootstrap(data["project_id"], data["cluster_id"], data["ak"], data["sk"], False),
        )
    return data
