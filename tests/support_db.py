"""The PostgreSQL server the tests use: skipped on a laptop without one, required in CI."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest

__all__ = ["IN_CI", "PG_URL", "pg_or_skip", "pg_schema_url"]

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


@contextlib.contextmanager
def pg_schema_url(prefix: str = "t_") -> Iterator[str]:
    """A fresh schema of the test database (dropped after): the URL whose connections use it."""
    import sqlalchemy

    pg_or_skip()
    schema = prefix + uuid.uuid4().hex[:12]
    admin = sqlalchemy.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in PG_URL else "?"
    try:
        yield f"{PG_URL}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()
