"""Helpers for the API tests: a signer that can be made wrong on purpose, error checks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from fastapi.testclient import TestClient

from mrs_jobs.api.signing import format_sdk_date, sign_headers

BASE_URL = "http://127.0.0.1:8080"


class Signer(httpx.Auth):
    """Signs like the official SDK (see ``support.SigV4Auth``), with knobs to break it.

    ``sign_path``/``sign_query``/``sign_body`` replace what is signed (not what is sent);
    ``after`` mutates the request after signing; ``date_offset`` shifts ``X-Sdk-Date``.
    """

    requires_request_body = True

    def __init__(
        self,
        ak: str,
        sk: str,
        project_id: str,
        *,
        date_offset: timedelta = timedelta(0),
        sign_path: str | None = None,
        sign_query: str | None = None,
        sign_body: bytes | None = None,
        after: Callable[[httpx.Request], None] | None = None,
    ) -> None:
        self.ak, self.sk, self.project_id = ak, sk, project_id
        self.date_offset = date_offset
        self.sign_path, self.sign_query, self.sign_body = sign_path, sign_query, sign_body
        self.after = after

    def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        request.headers.setdefault("Content-Type", "application/json")
        request.headers.setdefault("User-Agent", "mrs-jobs-tests/1.0")
        request.headers["X-Project-Id"] = self.project_id
        path = request.url.raw_path.split(b"?")[0].decode()
        query = urlsplit(str(request.url)).query
        headers = {k: v for k, v in request.headers.items()}
        added = sign_headers(
            ak=self.ak,
            sk=self.sk,
            method=request.method,
            url_path=self.sign_path if self.sign_path is not None else path,
            raw_query=self.sign_query if self.sign_query is not None else query,
            headers=headers,
            body=self.sign_body if self.sign_body is not None else request.content,
            sdk_date=format_sdk_date(datetime.now(UTC) + self.date_offset),
        )
        request.headers.update(added)
        if self.after is not None:
            self.after(request)
        yield request


def client_for(app: Any, auth: httpx.Auth | None = None, **kwargs: Any) -> TestClient:
    client = TestClient(app, base_url=BASE_URL, **kwargs)
    if auth is not None:
        client.auth = auth
    return client


def assert_error(r: httpx.Response, status: int, code: str) -> str:
    """The exact MRS error shape (contract section 10); returns ``error_msg``."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"].startswith("application/json"), r.headers
    body = r.json()
    assert set(body) == {"error_code", "error_msg"}, body
    assert body["error_code"] == code, body
    assert isinstance(body["error_msg"], str) and body["error_msg"], body
    assert r.headers.get("x-request-id"), r.headers
    return body["error_msg"]


@dataclass
class Tenant:
    """A second project (or cluster) made through the tenant service, with its own client."""

    project_id: str
    cluster_id: str
    ak: str
    sk: str
    client: TestClient

    @property
    def base(self) -> str:
        return f"/v2/{self.project_id}/clusters/{self.cluster_id}/job-executions"

    def submit(self, name: str = "other", job_type: str = "SparkSubmit") -> str:
        r = self.client.post(
            self.base, json={"job_type": job_type, "job_name": name, "arguments": ["/x.py"]}
        )
        assert r.status_code == 200, r.text
        return r.json()["job_submit_result"]["job_id"]


def other_project(api: Any, user: str = "bob", components: list[str] | None = None) -> Tenant:
    pid = api.projects.create_project("other")
    ak, sk = api.credentials.create_aksk(pid, user)
    cid = new_cluster(api, pid, components=components)
    return Tenant(pid, cid, ak, sk, client_for(api.client.app, _sigv4(ak, sk, pid)))


def new_cluster(
    api: Any,
    project_id: str | None = None,
    *,
    components: list[str] | None = None,
    max_queued: int = 1000,
    max_running: int = 10,
) -> str:
    return api.clusters.create_cluster(
        project_id or api.project_id,
        "extra",
        components=["Spark"] if components is None else components,
        config={},
        max_running=max_running,
        max_queued=max_queued,
    )


def _sigv4(ak: str, sk: str, project_id: str) -> httpx.Auth:
    from support import SigV4Auth

    return SigV4Auth(ak, sk, project_id)


def base_of(project_id: str, cluster_id: str) -> str:
    return f"/v2/{project_id}/clusters/{cluster_id}/job-executions"
