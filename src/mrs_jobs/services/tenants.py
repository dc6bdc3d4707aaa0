"""Projects, credentials, clusters and the first-run bootstrap."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import string
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

from mrs_jobs.domain.clusterconfig import validate_cluster_config
from mrs_jobs.errors import AuthError, InvalidParameter
from mrs_jobs.secretbox import SecretBox, SecretKeyError
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
    delete_credential,
    get_cluster,
    get_credential,
    get_project,
    list_credentials,
    set_credential_disabled,
    set_credential_expiry,
    set_secret_key,
    update_cluster,
)

__all__ = [
    "Bootstrap",
    "IssuedAksk",
    "IssuedToken",
    "TenantService",
    "hash_token",
    "update_bootstrap_endpoint",
    "write_bootstrap_file",
]

log = logging.getLogger(__name__)

_AK_ALPHABET = string.ascii_uppercase + string.digits


def hash_token(token: str) -> str:
    """Tokens are 256-bit random values, so a plain SHA-256 is a safe stored form."""
    return hashlib.sha256(token.encode()).hexdigest()


def _aad(access_key: str) -> str:
    """Bind a sealed SK to its AK, so a sealed value copied onto another row does not open."""
    return f"mrs-jobs/credentials/{access_key}"


@dataclass(frozen=True)
class Bootstrap:
    project_id: str
    cluster_id: str
    ak: str
    sk: str
    created: bool


@dataclass(frozen=True)
class IssuedAksk:
    """A new AK/SK pair: the only moment the SK is available in plain text."""

    id: str
    project_id: str
    user_name: str
    ak: str
    sk: str


@dataclass(frozen=True)
class IssuedToken:
    id: str
    project_id: str
    user_name: str
    token: str
    expires_ms: int


class TenantService:
    """Projects, clusters and credentials.

    ``secretbox`` seals and opens SKs; it is needed only by AK/SK operations, so administration
    that never touches an SK (listing, disabling, tokens) works without the key.
    """

    def __init__(self, store: Store, secretbox: SecretBox | None = None) -> None:
        self.store = store
        self._box = secretbox

    @property
    def box(self) -> SecretBox:
        if self._box is None:
            raise SecretKeyError("no secret key is configured for AK/SK credentials.")
        return self._box

    # -- authentication lookups --------------------------------------------------------------
    def credential_for_ak(self, access_key: str) -> Credential | None:
        """The usable credential of an AK, with its SK opened; None refuses the request."""
        with self.store.read() as conn:
            cred = credential_by_ak(conn, access_key)
        if cred is None or cred.disabled or cred.kind != "aksk" or not cred.secret_key:
            return None
        if cred.expires_ms is not None and cred.expires_ms < now_ms():
            return None
        try:
            sk = self.box.open(cred.secret_key, aad=_aad(access_key))
        except SecretKeyError as exc:
            log.error("auth.secret_unreadable credential_id=%s reason=%s", cred.id, exc)
            return None
        return replace(cred, secret_key=sk)

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
        issued = self.issue_aksk(project_id, user_name)
        return issued.ak, issued.sk

    def issue_aksk(self, project_id: str, user_name: str = "admin") -> IssuedAksk:
        """A new AK/SK pair; the SK is stored sealed and returned in plain text only here."""
        ak = "".join(secrets.choice(_AK_ALPHABET) for _ in range(20))
        sk = secrets.token_urlsafe(30)[:40]
        sealed = self.box.seal(sk, aad=_aad(ak))
        cid = str(uuid.uuid4())
        with self.store.write() as conn:
            self._require_project(conn, project_id)
            add_credential(
                conn,
                id=cid,
                project_id=project_id,
                kind="aksk",
                user_name=user_name,
                access_key=ak,
                secret_key=sealed,
                token_hash=None,
                expires_ms=None,
                disabled=False,
                created_ms=now_ms(),
            )
        return IssuedAksk(cid, project_id, user_name, ak, sk)

    def create_token(self, project_id: str, user_name: str, ttl_seconds: int) -> str:
        return self.issue_token(project_id, user_name, ttl_seconds).token

    def issue_token(self, project_id: str, user_name: str, ttl_seconds: int) -> IssuedToken:
        if ttl_seconds <= 0:
            raise InvalidParameter("a token's lifetime must be positive.")
        token = "mrsj_" + secrets.token_urlsafe(32)
        at = now_ms()
        cid = str(uuid.uuid4())
        with self.store.write() as conn:
            self._require_project(conn, project_id)
            add_credential(
                conn,
                id=cid,
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
        return IssuedToken(cid, project_id, user_name, token, at + ttl_seconds * 1000)

    # -- credential lifecycle ----------------------------------------------------------------
    def list_credentials(
        self, project_id: str | None = None, kind: str | None = None
    ) -> list[Credential]:
        """Credentials without their secrets (neither sealed SK nor token hash)."""
        if kind is not None and kind not in ("aksk", "token"):
            raise InvalidParameter("kind must be aksk or token.")
        with self.store.read() as conn:
            rows = list_credentials(conn, project_id, kind)
        return [replace(c, secret_key=None) for c in rows]

    def set_disabled(self, credential_id: str, disabled: bool) -> None:
        with self.store.write() as conn:
            if not set_credential_disabled(conn, credential_id, disabled):
                raise InvalidParameter(f"credential {credential_id} does not exist.")

    def delete_credential(self, credential_id: str) -> None:
        """Remove the row for good (jobs and audit records keep the id as plain text)."""
        with self.store.write() as conn:
            if not delete_credential(conn, credential_id):
                raise InvalidParameter(f"credential {credential_id} does not exist.")

    def rotate_aksk(self, credential_id: str, grace_seconds: int | None = None) -> IssuedAksk:
        """A new pair for the same project and user; the old pair stays valid.

        Replacing the SK under the same AK would break every running client at once, so the
        old pair keeps working until it is disabled or deleted, or for ``grace_seconds``.
        """
        if grace_seconds is not None and grace_seconds < 0:
            raise InvalidParameter("the grace period must not be negative.")
        with self.store.read() as conn:
            old = get_credential(conn, credential_id)
        if old is None or old.kind != "aksk":
            raise InvalidParameter(f"AK/SK credential {credential_id} does not exist.")
        issued = self.issue_aksk(old.project_id, old.user_name)
        if grace_seconds is not None:
            until = now_ms() + grace_seconds * 1000
            if old.expires_ms is None or old.expires_ms > until:
                with self.store.write() as conn:
                    set_credential_expiry(conn, credential_id, until)
        return issued

    def check_secrets(self) -> int:
        """Open every stored SK; raise SecretKeyError naming the first that does not open.

        Run at startup so a wrong or missing key is a clear error, not a stream of 401s.
        """
        with self.store.read() as conn:
            rows = list_credentials(conn, kind="aksk")
        for cred in rows:
            if not cred.secret_key or not cred.access_key:
                continue
            if not cred.secret_key.startswith("v1:"):
                raise SecretKeyError(
                    f"credential {cred.id} holds its SK in plain text; run "
                    "`mrs-jobs admin reencrypt-secrets` to seal it."
                )
            try:
                self.box.open(cred.secret_key, aad=_aad(cred.access_key))
            except SecretKeyError as exc:
                raise SecretKeyError(f"credential {cred.id}: {exc}") from None
        return len(rows)

    def reencrypt_secrets(self) -> int:
        """Reseal SKs sealed with an old key (or stored in plain text) with the current key."""
        with self.store.read() as conn:
            rows = list_credentials(conn, kind="aksk")
        done = 0
        for cred in rows:
            if not cred.secret_key or not cred.access_key:
                continue
            if not self.box.needs_reseal(cred.secret_key):
                continue
            aad = _aad(cred.access_key)
            if cred.secret_key.startswith("v1:"):
                sk = self.box.open(cred.secret_key, aad=aad)
            else:
                sk = cred.secret_key  # written before SKs were sealed
            with self.store.write() as conn:
                set_secret_key(conn, cred.id, self.box.seal(sk, aad=aad))
            done += 1
        return done

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
        if max_running < 0 or max_queued < 0:
            raise InvalidParameter("max_running and max_queued must not be negative.")
        config = validate_cluster_config(kind, config)
        cid = cluster_id or str(uuid.uuid4())
        with self.store.write() as conn:
            self._require_project(conn, project_id)
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
        if (max_running is not None and max_running < 0) or (
            max_queued is not None and max_queued < 0
        ):
            raise InvalidParameter("max_running and max_queued must not be negative.")
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

    @staticmethod
    def _require_project(conn, project_id: str) -> None:  # type: ignore[no-untyped-def]
        if get_project(conn, project_id) is None:
            raise InvalidParameter(f"project {project_id} does not exist.")

    # -- first run ---------------------------------------------------------------------------
    def bootstrap(
        self,
        bootstrap_file: Path,
        *,
        max_running: int,
        max_queued: int,
        parallelism: int,
        output_roots: list[str] | None = None,
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
            config={
                "spark_master": f"local[{parallelism}]",
                **({"output_roots": list(output_roots)} if output_roots else {}),
            },
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
