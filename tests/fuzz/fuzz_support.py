"""Helpers for the fuzz and bad-input suites: the MRS error shape, a store fingerprint."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from mrs_jobs.store import Store
from mrs_jobs.store.tables import jobs, metadata

#: Contract section 10: which error codes each error status may carry.
CODES_BY_STATUS: dict[int, set[str]] = {
    400: {"12000002", "12000003", "0057", "0168", "0169", "0175", "0176", "0179", "0180"},
    401: {"APIGW.0301"},
    403: {"12000052"},
    404: {"12000002"},
    413: {"12000002"},
    429: {"0202"},
    500: {"0161", "0193"},
    503: {"0202"},
}

#: Marker put into secret property values: it must never come back in any response.
SECRET_MARK = "S3CR3T-"


def header(headers: Any, name: str) -> str | None:
    """One header from requests/httpx/schemathesis responses (the last has list values)."""
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    if isinstance(value, list):
        return value[0] if value else None
    return value


def mrs_error_problems(status: int, headers: Any, content: bytes) -> list[str]:
    """Everything wrong with a response as an MRS response (empty list: fine)."""
    problems: list[str] = []
    if not header(headers, "x-request-id"):
        problems.append("no X-Request-Id header")
    if SECRET_MARK.encode() in content:
        problems.append("a secret property value was echoed")
    if status < 400:
        if content.startswith(b"{") and b'"error_code"' in content[:200]:
            problems.append(f"an error body with a {status} status")
        return problems
    ctype = header(headers, "content-type") or ""
    if not ctype.startswith("application/json"):
        problems.append(f"error content-type {ctype!r}, not JSON")
    try:
        body = json.loads(content)
    except ValueError:
        return [*problems, f"error body is not JSON: {content[:200]!r}"]
    if not isinstance(body, dict) or set(body) != {"error_code", "error_msg"}:
        return [*problems, f"error body is not exactly error_code/error_msg: {body!r}"]
    code, msg = body["error_code"], body["error_msg"]
    if not isinstance(code, str) or not isinstance(msg, str) or not msg:
        problems.append(f"error_code/error_msg not non-empty strings: {body!r}")
    allowed = CODES_BY_STATUS.get(status)
    if allowed is None:
        problems.append(f"status {status} is not in the contract's error table")
    elif code not in allowed:
        problems.append(f"error_code {code!r} with status {status} (allowed {sorted(allowed)})")
    if status in (429, 503) and not header(headers, "retry-after"):
        problems.append(f"{status} without Retry-After")
    return problems


def fingerprint(store: Store) -> dict[str, Any]:
    """Row counts of every table plus the jobs' mutable columns: equal means nothing changed."""
    out: dict[str, Any] = {}
    with store.read() as conn:
        for table in metadata.sorted_tables:
            if table.name == "supervisors":
                continue  # heartbeats are not a request's doing
            out[table.name] = conn.execute(select(func.count()).select_from(table)).scalar_one()
        rows = conn.execute(
            select(
                jobs.c.id,
                jobs.c.state,
                jobs.c.result,
                jobs.c.deleted_ms,
                jobs.c.kill_requested_ms,
                jobs.c.finished_ms,
            )
        ).all()
    out["job_rows"] = Counter(tuple(r) for r in rows)
    return out


#: (database, operation, mode) -> Counter of statuses, filled by the schemathesis run.
FUZZ_STATS: dict[tuple[str, str, str], Counter[int]] = {}
#: database -> Counter of "status/error_code" over the whole run.
FUZZ_CODES: dict[str, Counter[str]] = {}


def make_store(config: pytest.Config, kind: str, path: Path) -> Iterator[Store]:
    """The root conftest's ``make_store`` (not importable by name: every conftest is
    ``conftest``), for fixtures with a wider scope than the ``store`` fixture."""
    for plugin in config.pluginmanager.get_plugins():
        if hasattr(plugin, "make_store") and hasattr(plugin, "pg_or_skip"):
            yield from plugin.make_store(kind, path)
            return
    raise RuntimeError("tests/conftest.py (make_store) is not loaded")
