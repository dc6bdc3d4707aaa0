"""A small client of the MRS v2 job API, as the CLI uses it (imported only by commands)."""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

from mrs_jobs import __version__
from mrs_jobs.api.signing import sign_headers
from mrs_jobs.cli.connection import Connection

__all__ = ["ApiClient", "ApiError", "LogChunk", "TransportError"]

USER_AGENT = f"mrs-jobs-cli/{__version__}"


class ApiError(Exception):
    """An MRS error answer: HTTP status, ``error_code`` and ``error_msg``."""

    def __init__(self, status: int, code: str, message: str, request_id: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message, self.request_id = status, code, message, request_id

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        """Read the MRS body; anything else (a proxy's HTML page) keeps the status as code."""
        request_id = response.headers.get("X-Request-Id")
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and "error_code" in body:
            return cls(
                response.status_code,
                str(body["error_code"]),
                str(body.get("error_msg", "")),
                request_id,
            )
        text = " ".join(response.text.split())[:200] or response.reason_phrase
        return cls(response.status_code, f"HTTP {response.status_code}", text, request_id)


class TransportError(Exception):
    """The service could not be reached or did not answer."""


@dataclass(frozen=True)
class LogChunk:
    data: bytes
    next_offset: int
    size: int


class _SignAuth(httpx.Auth):
    """``SDK-HMAC-SHA256`` over the headers the official SDK signs."""

    requires_request_body = True

    def __init__(self, ak: str, sk: str) -> None:
        self.ak, self.sk = ak, sk

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        path, _, query = request.url.raw_path.decode("ascii").partition("?")
        request.headers.update(
            sign_headers(
                ak=self.ak,
                sk=self.sk,
                method=request.method,
                url_path=path,
                raw_query=query,
                headers=dict(request.headers),
                body=request.content,
            )
        )
        yield request


class ApiClient:
    """One method per operation; errors raise :class:`ApiError` or :class:`TransportError`."""

    def __init__(
        self,
        conn: Connection,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.conn = conn
        headers = {
            # The contract says clients send it on every request, GET and empty POST included.
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Project-Id": conn.project_id,
        }
        auth: httpx.Auth | None = None
        if conn.ak and conn.sk:
            auth = _SignAuth(conn.ak, conn.sk)
        elif conn.token:
            headers["X-Auth-Token"] = conn.token
        self._http = httpx.Client(headers=headers, auth=auth, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _url(self, job_id: str | None = None, suffix: str = "") -> str:
        url = self.conn.base_url
        if job_id is not None:
            url += "/" + quote(job_id, safe="")
        return url + suffix

    def _request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
    ) -> httpx.Response:
        try:
            if json_body is not None:
                response = self._http.request(
                    method, url, params=params, content=_dumps(json_body).encode()
                )
            else:
                response = self._http.request(method, url, params=params)
        except httpx.HTTPError as exc:
            raise TransportError(f"cannot reach {self.conn.endpoint}: {exc}") from exc
        if response.status_code >= 400:
            raise ApiError.from_response(response)
        return response

    def submit(
        self,
        job_type: str,
        job_name: str,
        arguments: list[str],
        properties: dict[str, str],
    ) -> str:
        body: dict[str, Any] = {"job_type": job_type, "job_name": job_name}
        if arguments:
            body["arguments"] = arguments
        if properties:
            body["properties"] = properties
        data = self._request("POST", self._url(), json_body=body).json()
        return str(data["job_submit_result"]["job_id"])

    def list(self, params: Mapping[str, Any]) -> dict[str, Any]:
        query = {k: str(v) for k, v in params.items() if v is not None}
        return dict(self._request("GET", self._url(), params=query).json())

    def show(self, job_id: str) -> dict[str, Any]:
        return dict(self._request("GET", self._url(job_id)).json())

    def kill(self, job_id: str) -> None:
        self._request("POST", self._url(job_id, "/kill"))

    def batch_delete(self, job_ids: list[str]) -> None:
        self._request("POST", self._url(suffix="/batch-delete"), json_body={"job_id_list": job_ids})

    def events(self, job_id: str) -> dict[str, Any]:
        return dict(self._request("GET", self._url(job_id, "/events")).json())

    def sql_result(self, job_id: str) -> dict[str, Any]:
        return dict(self._request("GET", self._url(job_id, "/sql-result")).json())

    def job_usage(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """What the cluster's ended jobs used (``GET .../job-usage``, ours)."""
        url = self.conn.base_url.rsplit("/", 1)[0] + "/job-usage"
        query = {k: str(v) for k, v in params.items() if v is not None}
        return dict(self._request("GET", url, params=query).json())

    def job_events(
        self, after: str, *, wait: int = 0, limit: int = 1000, job_id: str | None = None
    ) -> dict[str, Any]:
        """The cluster's job events (``job_id``: that job's) after cursor ``after`` (``now``:
        none, the latest cursor), long-polled up to ``wait`` s (``GET .../job-events``, ours;
        a 404 from an older server)."""
        url = self.conn.base_url.rsplit("/", 1)[0] + "/job-events"
        query = {"after": after, "wait": str(wait), "limit": str(limit)}
        if job_id is not None:
            query["job_id"] = job_id
        try:
            response = self._http.get(url, params=query, timeout=wait + 30.0)
        except httpx.HTTPError as exc:
            raise TransportError(f"cannot reach {self.conn.endpoint}: {exc}") from exc
        if response.status_code >= 400:
            raise ApiError.from_response(response)
        return dict(response.json())

    def log(self, job_id: str, kind: str, offset: int, limit: int) -> LogChunk:
        response = self._request(
            "GET",
            self._url(job_id, "/log"),
            params={"type": kind, "offset": str(offset), "limit": str(limit)},
        )
        data = response.content
        start = int(response.headers.get("X-Log-Offset", offset if offset >= 0 else 0))
        next_offset = int(response.headers.get("X-Log-Next-Offset", start + len(data)))
        size = int(response.headers.get("X-Log-Size", next_offset))
        return LogChunk(data, next_offset, size)


def _dumps(value: Any) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)
