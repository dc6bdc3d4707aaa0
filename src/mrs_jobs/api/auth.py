"""Authentication: SDK-HMAC-SHA256 signatures and X-Auth-Token (contract §11).

Also the abuse checks that need to know who is calling (docs/security.md): failed
authentications are charged to the client address and to the credential the request names
(``api/ratelimit.py``; a credential that authenticated lately is never refused for others'
failures), an exact replay of a
signed state-changing request is refused (``api/replay.py``), and every authenticated request
is charged to its credential's project. Opened AK/SK credentials and valid tokens' credentials
are cached for a few seconds (``api/credcache.py``: a disabled credential is refused, and a
changed policy applies, within ``TTL_SECONDS``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NoReturn

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from mrs_jobs.api.credcache import CredentialCache
from mrs_jobs.api.ratelimit import RateLimiter
from mrs_jobs.api.replay import CHECKED_METHODS, ReplayCache
from mrs_jobs.api.signing import (
    ParsedAuth,
    SignatureError,
    parse_authorization,
    parse_sdk_date,
    verify,
)
from mrs_jobs.domain.policies import NO_ACCESS, Policy, parse_policy
from mrs_jobs.errors import AuthError, InvalidParameter, ProjectMismatch
from mrs_jobs.services.authn import Authenticator
from mrs_jobs.services.context import Caller
from mrs_jobs.services.credentials import hash_token
from mrs_jobs.store.tenants import Credential

__all__ = ["authenticate", "credential_key"]

log = logging.getLogger(__name__)


def _utf8_headers(request: Request) -> dict[str, str]:
    """ASGI hands header bytes decoded as latin-1; the signature is over their UTF-8 text."""
    out: dict[str, str] = {}
    for raw_name, raw_value in request.scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        try:
            value = raw_value.decode("utf-8")
        except UnicodeDecodeError:
            value = raw_value.decode("latin-1")
        out[name] = value if name not in out else out[name] + "," + value
    return out


async def authenticate(
    request: Request, authn: Authenticator, *, project_id: str, skew: int
) -> Caller:
    """Return the caller, or raise AuthError (401) / ProjectMismatch (403) / RateLimited (429)."""
    limiter: RateLimiter | None = getattr(request.app.state, "rate_limiter", None)
    # The TCP peer, or the client a trusted proxy names (server.py: MRS_JOBS_TRUSTED_PROXIES).
    client = request.client.host if request.client else "unknown"
    named = credential_key(request)
    throttled = limiter.check_client(client, named) if limiter is not None else False
    try:
        # A known AK whose failure budget is spent: its cached SK decides, no second lookup.
        recheck = limiter is None or named is None or limiter.may_recheck(named)
        cred = await _credential(request, authn, skew=skew, recheck=recheck)
    except AuthError:
        if limiter is not None:
            limiter.charge_auth_failure(client, named)
            if throttled:
                raise limiter.throttled_failure(client, named) from None
        raise
    if limiter is not None:
        if named is not None:
            limiter.authenticated(named)
        limiter.charge_project(cred.project_id)
    if cred.project_id != project_id:
        raise ProjectMismatch()
    header_project = request.headers.get("x-project-id")
    if header_project and header_project != project_id:
        raise ProjectMismatch()
    return Caller(
        project_id=cred.project_id,
        credential_id=cred.id,
        user_name=cred.user_name,
        request_id=request.state.request_id,
        policy=_policy(cred),
    )


def _policy(cred: Credential) -> Policy:
    """The credential's policy; one that no longer parses allows nothing (fail closed)."""
    try:
        return parse_policy(cred.policy)
    except InvalidParameter:
        log.error("auth.policy_unreadable", extra={"credential_id": cred.id})
        return NO_ACCESS


def credential_key(request: Request) -> str | None:
    """The credential a request names, as the limiter keys it: its AK, or its token's hash."""
    token = request.headers.get("x-auth-token")
    if token:
        return "token:" + hash_token(token)
    try:
        return "ak:" + parse_authorization(request.headers.get("authorization", "")).access_key
    except SignatureError:
        return None


async def _credential(
    request: Request, authn: Authenticator, *, skew: int, recheck: bool = True
) -> Credential:
    token = request.headers.get("x-auth-token")
    if token:
        return await _token_credential(request, authn, token)
    else:
        cred = await _signed_credential(request, authn, await request.body(), skew, recheck)
        _refuse_replay(request, skew)
    return cred


async def _token_credential(request: Request, authn: Authenticator, token: str) -> Credential:
    """The credential of a valid token, from the cache when it was looked up lately (keyed by
    the token's hash: the token itself is kept nowhere); refusals are never cached."""
    cache = _credential_cache(request)
    key = "token:" + hash_token(token)  # never an AK: those are 20 letters and digits
    cred = cache.get(key)
    if cred is None:
        # A database read: in the thread pool, so the event loop keeps serving others.
        cred = await run_in_threadpool(authn.credential_for_token, token)
        cache.put(key, cred)
    return cred


def _credential_cache(request: Request) -> CredentialCache:
    cache: CredentialCache | None = getattr(request.app.state, "credential_cache", None)
    if cache is None:
        cache = request.app.state.credential_cache = CredentialCache()
    return cache


async def _signed_credential(
    request: Request, authn: Authenticator, body: bytes, skew: int, recheck: bool
) -> Credential:
    """The credential whose SK signed this request (``api/credcache.py`` saves the lookup).

    ``recheck``: whether a signature the cached SK refuses may look the AK up once more."""
    cache = _credential_cache(request)
    headers = _utf8_headers(request)  # as signed; a repeated header's values joined
    try:
        parsed: ParsedAuth | None = parse_authorization(headers.get("authorization", ""))
    except SignatureError:
        parsed = None  # verify() refuses it below, with the reason
    ak = parsed.access_key if parsed is not None else None
    cred = cache.get(ak) if ak else None
    from_cache = cred is not None
    if cred is None and ak:
        cred = await _lookup(authn, cache, ak)
    signed = _Signed(headers, parsed, body)
    try:
        _verify(request, signed, ak, cred, skew)
    except SignatureError as exc:
        if not from_cache or not recheck or ak is None or "window" in exc.reason:
            _refuse(request, exc)
        # The cached SK may be stale (the AK's SK was replaced): ask the store once more.
        cache.drop(ak)
        cred = await _lookup(authn, cache, ak)
        try:
            _verify(request, signed, ak, cred, skew)
        except SignatureError as again:
            _refuse(request, again)
    assert cred is not None  # verify() refuses an AK without a secret
    return cred


async def _lookup(authn: Authenticator, cache: CredentialCache, ak: str) -> Credential | None:
    """Read and open the credential in the thread pool (never on the event loop)."""
    cred = await run_in_threadpool(authn.credential_for_ak, ak)
    if cred is not None:
        cache.put(ak, cred)
    return cred


@dataclass(frozen=True)
class _Signed:
    """What a signature is checked over, read from the request once."""

    headers: dict[str, str]
    auth: ParsedAuth | None  # None: the Authorization header did not parse (verify says why)
    body: bytes


def _verify(
    request: Request, signed: _Signed, ak: str | None, cred: Credential | None, skew: int
) -> None:
    verify(
        method=request.method,
        raw_path=request.scope.get("raw_path", b"").decode("latin-1") or request.url.path,
        raw_query=request.scope.get("query_string", b"").decode("latin-1"),
        headers=signed.headers,
        body=signed.body,
        secret_lookup=lambda key: cred.secret_key if cred is not None and key == ak else None,
        now=datetime.now(UTC),
        max_skew_seconds=skew,
        auth=signed.auth,
    )


def _refuse(request: Request, exc: SignatureError) -> NoReturn:
    # The reason goes to the log; the client learns only what it can fix itself.
    log.info("auth.refused", extra={"reason": exc.reason, "request_id": request.state.request_id})
    if "window" in exc.reason:
        raise AuthError(
            "Authentication failed: X-Sdk-Date is too far from the server clock."
        ) from None
    raise AuthError("Authentication failed: incorrect IAM authentication information.") from None


def _refuse_replay(request: Request, skew: int) -> None:
    """After a good signature: an exact re-send of a state-changing request is refused."""
    cache: ReplayCache | None = getattr(request.app.state, "replay_cache", None)
    if cache is None or request.method not in CHECKED_METHODS:
        return
    if request.headers.get("x-idempotency-key"):
        return  # a re-sent keyed submit returns the first job: harmless, and how retries work
    # Both parse: verify() has just accepted them.
    parsed = parse_authorization(request.headers["authorization"])
    signed_at = parse_sdk_date(request.headers["x-sdk-date"])
    expires = (signed_at + timedelta(seconds=skew + 1)).timestamp()
    if not cache.first_use(parsed.access_key, parsed.signature, expires):
        log.info(
            "auth.refused",
            extra={"reason": "replayed request", "request_id": request.state.request_id},
        )
        raise AuthError(
            "Authentication failed: this signed request was already received; "
            "sign it again (a new X-Sdk-Date)."
        )
