"""``/metrics`` behind ``MRS_JOBS_METRICS_TOKEN`` (issue 20): refused without the bearer token,
scraped with it as Prometheus does (``authorization: {credentials: <token>}``)."""

from __future__ import annotations

from typing import Any

import pytest
from api_helpers import assert_error, client_for
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from mrs_jobs.api.app import create_app
from mrs_jobs.settings import Settings

TOKEN = "s3cret-scrape-token"


def _app(api: Any, settings: Settings, **overrides: Any) -> Any:
    return create_app(
        settings.model_copy(update=overrides), api.store, runnable_types=frozenset({"SparkSubmit"})
    )


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"X-Auth-Token": TOKEN},
    ],
)
def test_metrics_refuses_without_its_token(api, settings, headers) -> None:
    app = _app(api, settings, metrics_token=SecretStr(TOKEN))
    r = client_for(app).get("/metrics", headers=headers)
    msg = assert_error(r, 401, "APIGW.0301")
    assert "bearer token" in msg and TOKEN not in r.text
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_metrics_answers_prometheus_with_its_token(api, settings) -> None:
    app = _app(api, settings, metrics_token=SecretStr(TOKEN))
    client = client_for(app)
    r = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    names = {f.name for f in text_string_to_metric_families(r.text)}
    assert any(n.startswith("mrs_jobs_") for n in names), names
    # The other open endpoints stay open: probes carry no token.
    assert client.get("/health").status_code == 200
    assert client.get("/ready").status_code in (200, 503)


def test_without_a_token_metrics_stays_open(api, settings) -> None:
    r = client_for(_app(api, settings)).get("/metrics")
    assert r.status_code == 200
