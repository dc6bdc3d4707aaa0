"""Abuse limits and replay refusal (issue 8; docs/security.md).

Per-project rate limits (429 0202 + Retry-After) charged only after authentication, a separate
per-client bucket for failed authentications, the body and batch bounds, and the optional
replay cache for signed state-changing requests.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from api_helpers import Signer as SigV4
from api_helpers import assert_error, client_for, other_project
from support import SigV4Auth

from mrs_jobs.api.app import create_app
from mrs_jobs.api.ratelimit import TokenBuckets
from mrs_jobs.api.replay import ReplayCache
from mrs_jobs.api.signing import format_sdk_date, sign_headers
from mrs_jobs.settings import Settings


def _app(api: Any, settings: Settings, **overrides: Any) -> Any:
    return create_app(
        settings.model_copy(update=overrides),
        api.store,
        runnable_types=frozenset({"SparkSubmit"}),
    )


def _signed(api: Any, app: Any) -> Any:
    return client_for(app, SigV4Auth(api.ak, api.sk, api.project_id))


def _bad(api: Any, app: Any) -> Any:
    return client_for(app, SigV4Auth(api.ak, "not-the-secret-key", api.project_id))


def _retry_after(r: httpx.Response) -> int:
    assert_error(r, 429, "0202")
    value = r.headers["retry-after"]
    assert value.isdigit() and int(value) >= 1, value
    return int(value)


# -- rate limits -----------------------------------------------------------------------------


def test_project_rate_limit_answers_429_with_retry_after(api, settings) -> None:
    app = _app(api, settings, rate_limit_per_second=1.0, rate_limit_burst=3)
    client = _signed(api, app)
    for _ in range(3):
        assert client.get(api.base).status_code == 202
    r = client.get(api.base)
    assert _retry_after(r) == 1
    # Another project has its own bucket.
    b = other_project(api)
    b_client = client_for(app, SigV4Auth(b.ak, b.sk, b.project_id))
    assert b_client.get(b.base).status_code == 202
    # Waiting as told is enough.
    time.sleep(int(r.headers["retry-after"]) + 0.05)
    assert client.get(api.base).status_code == 202


def test_rate_limited_submit_changes_nothing(api, settings) -> None:
    app = _app(api, settings, rate_limit_per_second=0.01, rate_limit_burst=1)
    client = _signed(api, app)
    assert client.get(api.base).status_code == 202
    r = client.post(api.base, json={"job_type": "SparkSubmit", "job_name": "x", "arguments": []})
    assert _retry_after(r) >= 1
    assert api.client.get(api.base).json()["total_record"] == 0


def test_unauthenticated_flood_does_not_spend_the_projects_budget(api, settings) -> None:
    app = _app(
        api, settings, rate_limit_per_second=0.01, rate_limit_burst=2, auth_failure_per_second=0
    )
    bad = _bad(api, app)
    for _ in range(30):
        assert_error(bad.get(api.base), 401, "APIGW.0301")
    good = _signed(api, app)
    assert good.get(api.base).status_code == 202
    assert good.get(api.base).status_code == 202
    _retry_after(good.get(api.base))


def test_failed_authentications_are_limited_per_client(api, settings) -> None:
    app = _app(api, settings, auth_failure_per_second=0.2, auth_failure_burst=5)
    bad = _bad(api, app)
    for _ in range(5):
        assert_error(bad.get(api.base), 401, "APIGW.0301")
    assert _retry_after(bad.get(api.base)) >= 1
    # Unknown tokens count the same way.
    tok = client_for(app, headers={"X-Auth-Token": "mrsj_nope"})
    _retry_after(tok.get(api.base))


def test_zero_disables_the_limits(api, settings) -> None:
    app = _app(api, settings, rate_limit_per_second=0, auth_failure_per_second=0)
    client = _signed(api, app)
    bad = _bad(api, app)
    for _ in range(60):
        assert client.get(api.base).status_code == 202
        assert bad.get(api.base).status_code == 401


def test_the_default_limits_do_not_touch_normal_traffic(api) -> None:
    for _ in range(100):
        assert api.client.get(api.base).status_code == 202


def test_token_buckets_refill_and_stay_bounded() -> None:
    now = [0.0]
    buckets = TokenBuckets(2.0, 4, max_keys=3, clock=lambda: now[0])
    assert [buckets.take("p") for _ in range(4)] == [0.0] * 4
    assert buckets.take("p") == pytest.approx(0.5)
    now[0] += 0.5
    assert buckets.take("p") == 0.0
    for key in ("a", "b", "c", "d"):
        buckets.take(key)
    assert len(buckets._buckets) == 3


# -- size and batch bounds -------------------------------------------------------------------


def test_body_over_the_limit_is_413(api, settings) -> None:
    app = _app(api, settings, max_body_bytes=1000)
    client = _signed(api, app)
    big = {"job_type": "SparkSubmit", "job_name": "x", "arguments": ["a" * 2000]}
    assert_error(client.post(api.base, json=big), 413, "12000002")

    def chunks():  # no Content-Length: the limit is enforced while reading
        yield b'{"job_type": "SparkSubmit", "arguments": ["'
        for _ in range(10):
            yield b"a" * 200
        yield b'"]}'

    r = client.post(api.base, content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code in (401, 413), r.text  # unsigned-able stream: refused either way
    assert api.client.get(api.base).json()["total_record"] == 0


def test_batch_delete_is_bounded(api) -> None:
    ids = [str(uuid.uuid4()) for _ in range(1001)]
    msg = assert_error(
        api.client.post(api.base + "/batch-delete", json={"job_id_list": ids}), 400, "12000002"
    )
    assert "1000" in msg or "1,000" in msg


# -- replay ----------------------------------------------------------------------------------


def _presigned(api: Any, method: str, path: str, body: bytes = b"", **extra: str) -> dict:
    headers = {
        "content-type": "application/json",
        "host": "127.0.0.1:8080",
        "user-agent": "replayer/1.0",
        "x-project-id": api.project_id,
        **extra,
    }
    headers.update(
        sign_headers(
            ak=api.ak,
            sk=api.sk,
            method=method,
            url_path=path,
            raw_query="",
            headers=headers,
            body=body,
            sdk_date=format_sdk_date(datetime.now(UTC)),
        )
    )
    return headers


def test_exact_replay_of_a_post_is_refused_when_enabled(api, settings) -> None:
    app = _app(api, settings, replay_protection=True)
    raw = client_for(app)
    body = b'{"job_type": "SparkSubmit", "job_name": "once", "arguments": ["/a.py"]}'
    headers = _presigned(api, "POST", api.base, body)
    assert raw.post(api.base, content=body, headers=headers).status_code == 200
    msg = assert_error(raw.post(api.base, content=body, headers=headers), 401, "APIGW.0301")
    assert "already received" in msg
    assert api.client.get(api.base).json()["total_record"] == 1

    # Kill and batch delete are POSTs too.
    job = api.submit("k")
    path = f"{api.base}/{job}/kill"
    headers = _presigned(api, "POST", path)
    assert raw.post(path, headers=headers).status_code == 202
    assert_error(raw.post(path, headers=headers), 401, "APIGW.0301")


def test_replay_allows_gets_resigned_posts_and_idempotent_submits(api, settings) -> None:
    app = _app(api, settings, replay_protection=True)
    raw = client_for(app)
    headers = _presigned(api, "GET", api.base)
    for _ in range(3):  # an HTTP library re-sending a GET unchanged is fine
        assert raw.get(api.base, headers=headers).status_code == 202

    body = b'{"job_type": "SparkSubmit", "job_name": "keyed", "arguments": ["/a.py"]}'
    headers = _presigned(api, "POST", api.base, body, **{"x-idempotency-key": "k-1"})
    first = raw.post(api.base, content=body, headers=headers)
    again = raw.post(api.base, content=body, headers=headers)
    assert first.status_code == again.status_code == 200, again.text
    assert first.json() == again.json()

    # The official SDK re-signs a retry (a new X-Sdk-Date): a later second is a new request.
    client = client_for(app, SigV4(api.ak, api.sk, api.project_id))
    late = client_for(app, SigV4(api.ak, api.sk, api.project_id, date_offset=timedelta(seconds=2)))
    job = {"job_type": "SparkSubmit", "job_name": "twice", "arguments": ["/a.py"]}
    assert client.post(api.base, json=job).status_code == 200
    assert late.post(api.base, json=job).status_code == 200


def test_replay_protection_is_off_by_default(api) -> None:
    body = b'{"job_type": "SparkSubmit", "job_name": "same", "arguments": ["/a.py"]}'
    headers = _presigned(api, "POST", api.base, body)
    for _ in range(2):
        assert api.client.post(api.base, content=body, headers=headers).status_code == 200


def test_a_request_outside_the_clock_window_is_refused(api) -> None:
    for offset in (timedelta(minutes=-16), timedelta(minutes=16)):
        old = client_for(api.client.app, SigV4(api.ak, api.sk, api.project_id, date_offset=offset))
        msg = assert_error(old.get(api.base), 401, "APIGW.0301")
        assert "X-Sdk-Date" in msg


def test_replay_cache_expires_and_is_bounded() -> None:
    now = [1000.0]
    cache = ReplayCache(max_entries=3, clock=lambda: now[0])
    assert cache.first_use("ak", "s1", 1010.0)
    assert not cache.first_use("ak", "S1", 1010.0)  # hex case does not matter
    assert cache.first_use("other", "s1", 1010.0)  # keyed by AK too
    now[0] = 1011.0
    assert cache.first_use("ak", "s1", 1020.0)  # its window is over: a new request
    for i in range(10):
        cache.first_use("ak", f"x{i}", 1020.0)
    assert len(cache) == 3
