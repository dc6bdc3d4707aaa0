"""Stored SKs under the service's key: checked at start-up, resealed after a key rotation."""

from __future__ import annotations

from mrs_jobs.secretbox import SecretBox, SecretKeyError
from mrs_jobs.services.credentials import sk_aad
from mrs_jobs.store import Store
from mrs_jobs.store.tenants import list_credentials, set_secret_key

__all__ = ["check_secrets", "reencrypt_secrets"]


def check_secrets(store: Store, box: SecretBox) -> int:
    """Open every stored SK; raise SecretKeyError naming the first that does not open.

    Run at startup so a wrong or missing key is a clear error, not a stream of 401s.
    """
    with store.read() as conn:
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
            box.open(cred.secret_key, aad=sk_aad(cred.access_key))
        except SecretKeyError as exc:
            raise SecretKeyError(f"credential {cred.id}: {exc}") from None
    return len(rows)


def reencrypt_secrets(store: Store, box: SecretBox) -> int:
    """Reseal SKs sealed with an old key (or stored in plain text) with the current key."""
    with store.read() as conn:
        rows = list_credentials(conn, kind="aksk")
    done = 0
    for cred in rows:
        if not cred.secret_key or not cred.access_key:
            continue
        if not box.needs_reseal(cred.secret_key):
            continue
        aad = sk_aad(cred.access_key)
        if cred.secret_key.startswith("v1:"):
            sk = box.open(cred.secret_key, aad=aad)
        else:
            sk = cred.secret_key  # written before SKs were sealed
        with store.write() as conn:
            set_secret_key(conn, cred.id, box.seal(sk, aad=aad))
        done += 1
    return done
