"""docs/api.md against the app: every route has its own section, every error code its row.

Routes come from ``create_app(...).routes`` (included routers flattened); each must appear as
`` `METHOD /path` `` in a ``##`` section of the reference, not only in its index table at the
top. Error codes come from the code itself: every ``DomainError`` class run through the
mapping in ``api/errors.py``, plus the codes the source answers directly (``error_response``
calls and hand-built error bodies). Each (status, code) pair must have its row in the
reference's error table.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import app_routes

from mrs_jobs import errors
from mrs_jobs.api import errors as api_errors
from mrs_jobs.api.app import create_app
from mrs_jobs.domain.jobtypes import COMPONENT_ERRORS
from mrs_jobs.settings import Settings
from mrs_jobs.store import Store

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "api.md"
SRC = ROOT / "src" / "mrs_jobs"


def _sections(text: str) -> tuple[str, str]:
    """(the index before the first ``##`` heading, everything from it on)."""
    at = text.find("\n## ")
    assert at > 0, "docs/api.md has no ## sections"
    return text[:at], text[at:]


def _errors_table(text: str) -> str:
    match = re.search(r"\n## Errors\n(.*?)(?=\n## |\Z)", text, re.S)
    assert match, "docs/api.md has no '## Errors' section"
    return match.group(1)


@pytest.fixture
def app(tmp_path: Path) -> Any:
    settings = Settings(data_dir=tmp_path / "data", port=0)
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.migrate()
    return create_app(settings, store, runnable_types=frozenset({"SparkSubmit"}))


def test_every_route_has_a_section(app: Any) -> None:
    routes = app_routes(app)
    assert ("POST", "/v2/{project_id}/clusters/{cluster_id}/job-executions") in routes
    _, body = _sections(DOC.read_text(encoding="utf-8"))
    missing = sorted(f"{m} {p}" for m, p in routes if f"`{m} {p}`" not in body)
    assert not missing, f"routes without a section in docs/api.md: {missing}"


def test_every_route_is_in_the_index(app: Any) -> None:
    index, _ = _sections(DOC.read_text(encoding="utf-8"))
    missing = sorted(f"{m} {p}" for m, p in app_routes(app) if f"`{m} {p}`" not in index)
    assert not missing, f"routes missing from the index of docs/api.md: {missing}"


def _domain_classes() -> Iterator[type[errors.DomainError]]:
    todo = [errors.DomainError]
    while todo:
        cls = todo.pop()
        yield cls
        todo.extend(cls.__subclasses__())


def _domain_codes() -> set[tuple[int, str]]:
    """What the API answers for an instance of every DomainError class."""
    pairs: set[tuple[int, str]] = set()
    for cls in _domain_classes():
        components = [*COMPONENT_ERRORS, "Hadoop"] if cls is errors.ComponentMissing else [None]
        for component in components:
            exc = cls.__new__(cls)
            exc.message, exc.retry_after, exc.component = "x", 1, component
            response = api_errors._for_domain(exc)
            pairs.add((response.status_code, json.loads(response.body)["error_code"]))
    return pairs


def _literal_codes() -> tuple[set[tuple[int, str]], set[str]]:
    """Codes written in the source: (status, code) of ``error_response(<int>, "<code>"``, and
    every code of an ``error_response`` call or an ``"error_code": "<code>"`` literal."""
    pairs: set[tuple[int, str]] = set()
    codes: set[str] = set()
    for path in SRC.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for status, code in re.findall(r'error_response\(\s*(\d{3}),\s*"([^"]+)"', text):
            pairs.add((int(status), code))
        codes.update(re.findall(r'error_response\(\s*[^,()]+,\s*"([^"]+)"', text))
        codes.update(re.findall(r'"error_code":\s*"([^"]+)"', text))
    return pairs, codes


def test_every_error_code_has_its_row() -> None:
    table = _errors_table(DOC.read_text(encoding="utf-8"))
    pairs, codes = _literal_codes()
    pairs |= _domain_codes()
    # The scan must find what is known to be there, or it has silently stopped working.
    assert {(400, "0176"), (401, "APIGW.0301"), (413, "12000002"), (503, "0202")} <= pairs
    missing = sorted(f"{s} {c}" for s, c in pairs if f"| {s} | {c} |" not in table)
    assert not missing, f"(status, error_code) without a row in docs/api.md: {missing}"
    unlisted = sorted(c for c in codes | {c for _, c in pairs} if f"| {c} |" not in table)
    assert not unlisted, f"error codes missing from docs/api.md: {unlisted}"
