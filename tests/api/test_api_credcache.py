"""The credential cache over HTTP: how long a change takes, and a changed SK works at once."""

from __future__ import annotations

import asyncio
import time

from api_helpers import assert_error

from mrs_jobs.api.credcache import TTL_SECONDS, CredentialCache
from mrs_jobs.store.tenants import credential_by_ak, set_credential_disabled, set_secret_key


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cached_app(api):  # type: ignore[no-untyped-def]
    clock = Clock()
    cache = CredentialCache(clock=clock)
    api.client.app.state.credential_cache = cache
    return cache, clock


def test_a_disabled_credential_is_refused_once_the_cache_period_is_over(api) -> None:
    cache, clock = cached_app(api)
    ak, sk = api.credentials.create_aksk(api.project_id, "temp")
    client = api.signed_as(ak, sk, api.project_id)
    assert client.get(api.base).status_code == 202
    assert cache.get(ak) is not None
    with api.store.read() as conn:
        cred = credential_by_ak(conn, ak)
    with api.store.write() as conn:
        assert set_credential_disabled(conn, cred.id, True)
    # Inside the period the server has not read the change yet (the documented delay).
    clock.now += TTL_SECONDS - 0.5
    assert client.get(api.base).status_code == 202
    clock.now += 0.5
    assert_error(client.get(api.base), 401, "APIGW.0301")
    assert_error(client.get(api.base), 401, "APIGW.0301")  # refusals are not cached
    assert cache.get(ak) is None
    assert api.client.get(api.base).status_code == 202  # other credentials are unaffected


def test_a_changed_sk_works_at_once_and_the_old_one_stops(api) -> None:
    cache, _clock = cached_app(api)
    ak, old_sk = api.credentials.create_aksk(api.project_id, "temp")
    old = api.signed_as(ak, old_sk, api.project_id)
    assert old.get(api.base).status_code == 202
    assert cache.get(ak).secret_key == old_sk
    new_sk = "n" * 40
    with api.store.read() as conn:
        cred = credential_by_ak(conn, ak)
    sealed = api.credentials.box.seal(new_sk, aad=f"mrs-jobs/credentials/{ak}")
    with api.store.write() as conn:
        assert set_secret_key(conn, cred.id, sealed)
    # The cached SK does not verify the new signature: the AK is looked up again.
    assert api.signed_as(ak, new_sk, api.project_id).get(api.base).status_code == 202
    assert cache.get(ak).secret_key == new_sk
    assert_error(old.get(api.base), 401, "APIGW.0301")


def test_lookups_run_off_the_event_loop_and_hits_skip_the_store(api, monkeypatch) -> None:
    cached_app(api)
    calls: list[bool] = []
    ctx = api.client.app.state.ctx
    real = ctx.authn.credential_for_ak

    def spy(ak: str):  # type: ignore[no-untyped-def]
        try:
            asyncio.get_running_loop()
            calls.append(True)  # on the event loop
        except RuntimeError:
            calls.append(False)  # in a worker thread
        return real(ak)

    monkeypatch.setattr(ctx.authn, "credential_for_ak", spy)
    for _ in range(5):
        assert api.client.get(api.base).status_code == 202
    assert calls == [False]  # one lookup, in the thread pool; the other four were cached


def test_the_cache_period_is_a_setting_and_zero_turns_it_off(store, settings) -> None:
    from fastapi.testclient import TestClient
    from support import SigV4Auth

    from mrs_jobs.api.app import create_app
    from mrs_jobs.secretbox import load_secret_box
    from mrs_jobs.services.bootstrap import bootstrap

    boot = bootstrap(store, load_secret_box(settings), max_running=1, max_queued=5, parallelism=1)
    kinds = frozenset({"SparkSubmit"})
    default = create_app(settings, store, runnable_types=kinds, wake=lambda: None)
    assert default.state.credential_cache.ttl == TTL_SECONDS
    off = settings.model_copy(update={"credential_cache_seconds": 0.0})
    app = create_app(off, store, runnable_types=kinds, wake=lambda: None)
    base = f"/v2/{boot.project_id}/clusters/{boot.cluster_id}/job-executions"
    with TestClient(app, base_url="http://127.0.0.1:8080") as client:
        client.auth = SigV4Auth(boot.ak, boot.sk, boot.project_id)
        assert client.get(base).status_code == 202
        with store.read() as conn:
            cred = credential_by_ak(conn, boot.ak)
        with store.write() as conn:
            assert set_credential_disabled(conn, cred.id, True)
        assert_error(client.get(base), 401, "APIGW.0301")  # at once: nothing was kept


def token_client(api, token: str):  # type: ignore[no-untyped-def]
    client = api.signed_as(api.ak, api.sk, api.project_id)
    client.auth = None
    client.headers["X-Auth-Token"] = token
    return client


def test_a_tokens_credential_is_cached_and_a_disabled_token_refused_after_the_period(
    api, monkeypatch
) -> None:
    cache, clock = cached_app(api)
    token = api.credentials.create_token(api.project_id, "dash", 3600)
    ctx = api.client.app.state.ctx
    real = ctx.authn.credential_for_token
    lookups: list[int] = []

    def counted(t: str):  # type: ignore[no-untyped-def]
        lookups.append(1)
        return real(t)

    monkeypatch.setattr(ctx.authn, "credential_for_token", counted)
    client = token_client(api, token)
    for _ in range(4):
        assert client.get(api.base).status_code == 202
    assert len(lookups) == 1  # one store read; the other three were cached
    assert all(token not in key for key in cache._entries)  # keyed by its hash only
    cred = next(
        c for c in api.credentials.list_credentials(api.project_id) if c.user_name == "dash"
    )
    api.credentials.set_disabled(cred.id, True)
    clock.now += TTL_SECONDS - 0.5
    assert client.get(api.base).status_code == 202
    clock.now += 0.5
    assert_error(client.get(api.base), 401, "APIGW.0301")
    assert_error(client.get(api.base), 401, "APIGW.0301")
    assert len(lookups) == 3  # refusals are not cached: each one reads the store


def test_an_expired_tokens_cached_credential_is_refused_at_its_expiry(api) -> None:
    cached_app(api)
    token = api.credentials.create_token(api.project_id, "short", 1)
    client = token_client(api, token)
    assert client.get(api.base).status_code == 202
    time.sleep(1.1)  # the expiry time is checked on every hit, cached or not
    assert_error(client.get(api.base), 401, "APIGW.0301")
