"""A small client of the Trino/Presto client REST protocol (the SQL execution API's presto).

The protocol (Trino "Client REST API", Presto "Presto Client REST API"): ``POST
<coordinator>/v1/statement`` with the SQL as the body and the session in headers
(``X-Trino-User``, ``X-Trino-Catalog``, ``X-Trino-Schema``, ``X-Trino-Source``; ``X-Presto-*``
for Presto) answers a ``QueryResults`` document (``id``, ``infoUri``, ``nextUri``, ``columns``,
``data``, ``stats.state``, ``error``, ``updateType``). The client GETs ``nextUri`` until it is
absent; rows come in batches along the way and ``columns`` once the coordinator knows them.
An ``error`` object (``message``, ``errorName``, ``errorType``) fails the query. HTTP 502, 503
and 504 are a gateway's and are retried after 50-100 ms; any other status but 200 fails it.
Cancel is ``DELETE nextUri`` (the coordinator answers 204).

Used inside the presto runner process (runners/presto.py), so it knows nothing of jobs.
"""

from __future__ import annotations

import random
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["DIALECT_HEADERS", "Query", "TrinoClient", "TrinoError"]

#: The header prefix of each dialect (Trino renamed Presto's X-Presto-* in version 351).
DIALECT_HEADERS = {"trino": "X-Trino-", "presto": "X-Presto-"}
_RETRY_STATUSES = frozenset({502, 503, 504})
_RETRIES = 100  # a gateway's 50x answers in a row before the query is given up
SOURCE = "mrs-jobs"


class TrinoError(Exception):
    """The query failed: the coordinator's error (``message``, ``name``) or the HTTP failure."""

    def __init__(self, message: str, name: str = "", error_type: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.name = name
        self.error_type = error_type

    def __str__(self) -> str:
        return f"{self.name}: {self.message}" if self.name else self.message


@dataclass(frozen=True)
class Session:
    """Who runs the query, where (catalog, schema) and which header family says it."""

    user: str = "mrs"
    catalog: str = ""
    schema: str = ""
    dialect: str = "trino"

    def headers(self) -> dict[str, str]:
        prefix = DIALECT_HEADERS[self.dialect]
        found = {f"{prefix}User": self.user, f"{prefix}Source": SOURCE}
        if self.catalog:
            found[f"{prefix}Catalog"] = self.catalog
        if self.schema:
            found[f"{prefix}Schema"] = self.schema
        return found


class Query:
    """One statement on the coordinator: its pages, read as they come.

    ``rows()`` yields every row; ``columns`` is set once a page carried them; ``next_uri`` is
    where the query continues (None once it ended), which is also what :meth:`cancel` deletes.
    """

    def __init__(self, client: TrinoClient, first: dict[str, Any]) -> None:
        self.client = client
        self.id: str = str(first.get("id") or "")
        self.info_uri: str = str(first.get("infoUri") or "")
        self.columns: list[dict[str, Any]] | None = None
        self.update_type: str | None = None
        self.state: str = ""
        self.next_uri: str | None = None
        self._page: dict[str, Any] | None = first
        self._take(first)

    def _take(self, page: dict[str, Any]) -> None:
        error = page.get("error")
        if page.get("columns") is not None and self.columns is None:
            self.columns = list(page["columns"])
        self.update_type = page.get("updateType") or self.update_type
        self.state = str((page.get("stats") or {}).get("state") or self.state)
        self.next_uri = page.get("nextUri") or None
        if isinstance(error, dict):
            self.next_uri = None
            raise TrinoError(
                str(error.get("message") or "the query failed"),
                str(error.get("errorName") or ""),
                str(error.get("errorType") or ""),
            )

    def pages(self) -> Iterator[list[list[Any]]]:
        """Each page's rows (possibly none) until ``nextUri`` is absent."""
        while True:
            page, self._page = self._page, None
            if page is not None:
                yield list(page.get("data") or [])
            if self.next_uri is None:
                return
            page = self.client.get(self.next_uri)
            self._page = page
            self._take(page)

    def rows(self) -> Iterator[list[Any]]:
        for batch in self.pages():
            yield from batch

    def wait_for_columns(self) -> list[list[Any]]:
        """Follow ``nextUri`` until the result's columns are known or the query ended; the rows
        read meanwhile (a statement without a result set ends with none)."""
        read: list[list[Any]] = []
        for batch in self.pages():
            read.extend(batch)
            if self.columns is not None:
                break
        return read

    def cancel(self) -> bool:
        """``DELETE nextUri``: the coordinator stops the query. False when it had ended."""
        uri = self.next_uri
        if uri is None:
            return False
        self.client.delete(uri)
        return True


class TrinoClient:
    """The coordinator at ``base_url`` (``http(s)://host:port``) for one session."""

    def __init__(
        self,
        base_url: str,
        session: Session,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
        auth: tuple[str, str] | None = None,
        ca_pem: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session
        verify: ssl.SSLContext | bool = True
        if ca_pem:
            verify = ssl.create_default_context(cadata=ca_pem)
        self.http = httpx.Client(timeout=timeout, transport=transport, auth=auth, verify=verify)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> TrinoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def execute(self, statement: str) -> Query:
        """POST the statement; the :class:`Query` that follows it (TrinoError when refused)."""
        headers = self.session.headers() | {"Content-Type": "text/plain; charset=utf-8"}
        first = self._request("POST", f"{self.base_url}/v1/statement", statement, headers)
        return Query(self, first)

    def get(self, uri: str) -> dict[str, Any]:
        return self._request("GET", uri, None, {})

    def delete(self, uri: str) -> None:
        try:
            response = self.http.delete(uri)
        except httpx.HTTPError as exc:
            raise TrinoError(f"cannot reach the coordinator: {exc.__class__.__name__}") from None
        if response.status_code not in (200, 204, 404, 410):
            raise TrinoError(f"the coordinator answered HTTP {response.status_code} to cancel")

    def _request(
        self, method: str, uri: str, body: str | None, headers: dict[str, str]
    ) -> dict[str, Any]:
        for _ in range(_RETRIES):
            try:
                response = self.http.request(
                    method,
                    uri,
                    content=None if body is None else body.encode("utf-8"),
                    headers=headers,
                )
            except httpx.HTTPError as exc:
                raise TrinoError(
                    f"cannot reach the coordinator at {self.base_url}: {exc.__class__.__name__}"
                ) from None
            if response.status_code in _RETRY_STATUSES:
                time.sleep(random.uniform(0.05, 0.1))
                continue
            return _document(response)
        raise TrinoError(f"the coordinator at {self.base_url} stayed unavailable (HTTP 503)")


def _document(response: httpx.Response) -> dict[str, Any]:
    """A QueryResults document, or TrinoError with what the coordinator said."""
    try:
        data = response.json()
    except ValueError:
        data = None
    if response.status_code == 200 and isinstance(data, dict):
        return data
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        return data  # an error document: Query raises its message
    text = response.text.strip()[:500]
    raise TrinoError(
        f"the coordinator answered HTTP {response.status_code}" + (f": {text}" if text else "")
    )
