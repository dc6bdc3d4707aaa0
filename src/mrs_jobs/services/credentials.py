"""Credentials of a project: issue AK/SK pairs and tokens, list, disable, delete, rotate.

An SK is stored sealed (bound to its AK) and shown in plain text only when issued; a token is
stored as its hash.
"""

from __future__ import annotations

import hashlib
import secrets
import string
import uuid
from dataclasses import dataclass, replace

from mrs_jobs.domain.policies import parse_policy
from mrs_jobs.errors import InvalidParameter
from mrs_jobs.secretbox import SecretBox, SecretKeyError
from mrs_jobs.services.projects import require_project
from mrs_jobs.store import Store
from mrs_jobs.store.jobs import now_ms
from mrs_jobs.store.tenants import (
    Credential,
    add_credential,
    delete_credential,
    get_credential,
    list_credentials,
    set_credential_disabled,
    set_credential_expiry,
    set_credential_policy,
)

__all__ = [
    "DEFAULT_POLICY",
    "CredentialService",
    "IssuedAksk",
    "IssuedToken",
    "hash_token",
    "sk_aad",
]

_AK_ALPHABET = string.ascii_uppercase + string.digits
#: What a credential is issued with unless told otherwise: what every credential could do
#: before policies existed (the migration gave existing ones the same).
DEFAULT_POLICY = "MRS FullAccess"


def hash_token(token: str) -> str:
    """Tokens are 256-bit random values, so a plain SHA-256 is a safe stored form."""
    return hashlib.sha256(token.encode()).hexdigest()


def sk_aad(access_key: str) -> str:
    """Bind a sealed SK to its AK, so a sealed value copied onto another row does not open."""
    return f"mrs-jobs/credentials/{access_key}"


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


class CredentialService:
    """The lifecycle of credentials.

    ``secretbox`` seals SKs; it is needed only to issue AK/SK pairs, so administration that
    never touches an SK (listing, disabling, tokens) works without the key.
    """

    def __init__(self, store: Store, secretbox: SecretBox | None = None) -> None:
        self.store = store
        self._box = secretbox

    @property
    def box(self) -> SecretBox:
        if self._box is None:
            raise SecretKeyError("no secret key is configured for AK/SK credentials.")
        return self._box

    def create_aksk(
        self, project_id: str, user_name: str = "admin", policy: str = DEFAULT_POLICY
    ) -> tuple[str, str]:
        issued = self.issue_aksk(project_id, user_name, policy)
        return issued.ak, issued.sk

    def issue_aksk(
        self, project_id: str, user_name: str = "admin", policy: str = DEFAULT_POLICY
    ) -> IssuedAksk:
        """A new AK/SK pair; the SK is stored sealed and returned in plain text only here.

        ``policy``: a system policy's name or an IAM-shaped JSON document (domain/policies.py).
        """
        stored = parse_policy(policy).stored  # refused before anything is issued
        ak = "".join(secrets.choice(_AK_ALPHABET) for _ in range(20))
        sk = secrets.token_urlsafe(30)[:40]
        sealed = self.box.seal(sk, aad=sk_aad(ak))
        cid = self._add(
            project_id, "aksk", user_name, access_key=ak, secret_key=sealed, policy=stored
        )
        return IssuedAksk(cid, project_id, user_name, ak, sk)

    def create_token(
        self, project_id: str, user_name: str, ttl_seconds: int, policy: str = DEFAULT_POLICY
    ) -> str:
        return self.issue_token(project_id, user_name, ttl_seconds, policy).token

    def issue_token(
        self, project_id: str, user_name: str, ttl_seconds: int, policy: str = DEFAULT_POLICY
    ) -> IssuedToken:
        if ttl_seconds <= 0:
            raise InvalidParameter("a token's lifetime must be positive.")
        stored = parse_policy(policy).stored
        token = "mrsj_" + secrets.token_urlsafe(32)
        at = now_ms()
        expires = at + ttl_seconds * 1000
        cid = self._add(
            project_id,
            "token",
            user_name,
            token_hash=hash_token(token),
            expires_ms=expires,
            at=at,
            policy=stored,
        )
        return IssuedToken(cid, project_id, user_name, token, expires)

    def set_policy(self, credential_id: str, policy: str) -> str:
        """Replace a credential's policy; returns the stored form. A running server applies it
        within the credential cache's few seconds (api/credcache.py)."""
        stored = parse_policy(policy).stored
        with self.store.write() as conn:
            if not set_credential_policy(conn, credential_id, stored):
                raise InvalidParameter(f"credential {credential_id} does not exist.")
        return stored

    def _add(
        self,
        project_id: str,
        kind: str,
        user_name: str,
        *,
        access_key: str | None = None,
        secret_key: str | None = None,
        token_hash: str | None = None,
        expires_ms: int | None = None,
        at: int | None = None,
        policy: str = DEFAULT_POLICY,
    ) -> str:
        """Store a new enabled credential of an existing project; returns its id."""
        cid = str(uuid.uuid4())
        with self.store.write() as conn:
            require_project(conn, project_id)
            add_credential(
                conn,
                id=cid,
                project_id=project_id,
                kind=kind,
                user_name=user_name,
                access_key=access_key,
                secret_key=secret_key,
                token_hash=token_hash,
                expires_ms=expires_ms,
                disabled=False,
                created_ms=now_ms() if at is None else at,
                policy=policy,
            )
        return cid

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
        issued = self.issue_aksk(old.project_id, old.user_name, old.policy)  # same policy
        if grace_seconds is not None:
            until = now_ms() + grace_seconds * 1000
            if old.expires_ms is None or old.expires_ms > until:
                with self.store.write() as conn:
                    set_credential_expiry(conn, credential_id, until)
        return issued
