"""The PostgreSQL server the tests use: skipped on a laptop without one, required in CI."""

from __future__ import annotations

import os

import pytest

__all__ = ["IN_CI", "PG_URL", "pg_or_skip"]

PG_URL = os.environ.get("MRS_JOBS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"


def _pg_available() -> bool:
    import sqlalchemy

    try:
        eng = sqlalchemy.create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with eng.connect():
            pass
        eng.dispose()
        return True
    except Exception:
        return False


_PG_OK: bool | None = None


def pg_or_skip() -> None:
    global _PG_OK
    if _PG_OK is None:
        _PG_OK = _pg_available()
    if not _PG_OK:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI but not reachable at {PG_URL}")
        pytest.skip("PostgreSQL not reachable")
