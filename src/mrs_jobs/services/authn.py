"""Who is calling: the credential behind an AK or a token, as authentication needs it."""

from __future__ import annotations

import logging
from dataclasses import replace

from mrs_jobs.errors import AuthError
from mrs_jobs.secretbox import SecretBox, SecretKeyError
from mrs_jobs.services.credentials import hash_token, sk_aad
from mrs_jobs.store import Store
from mrs_jobs.store.jobs import now_ms
from mrs_jobs.store.tenants import Credential, credential_by_ak, credential_by_token_hash

__all__ = ["Authenticator"]

log = logging.getLogger(__name__)


class Authenticator:
    """Looks up the usable credential of a request; ``secretbox`` opens stored SKs."""

    def __init__(self, store: Store, secretbox: SecretBox | None = None) -> None:
        self.store = store
        self._box = secretbox

    def credential_for_ak(self, access_key: str) -> Credential | None:
        """The usable credential of an AK, with its SK opened; None refuses the request."""
        with self.store.read() as conn:
            cred = credential_by_ak(conn, access_key)
        if cred is None or cred.disabled or cred.kind != "aksk" or not cred.secret_key:
            return None
        if cred.expires_ms is not None and cred.expires_ms < now_ms():
            return None
        try:
            if self._box is None:
                raise SecretKeyError("no secret key is configured for AK/SK credentials.")
            sk = self._box.open(cred.secret_key, aad=sk_aad(access_key))
        except SecretKeyError as exc:
            log.error("auth.secret_unreadable", extra={"credential_id": cred.id, "reason": exc})
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
