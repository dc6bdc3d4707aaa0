"""PostgreSQL reads on the event loop: psycopg's async connections, for the one-row read of a show.

Through the synchronous engine a show's read costs a hand-off to a worker thread (a wake-up,
two context switches, the GIL passed back and forth under load) and four round trips: the
pool's liveness ping, ``BEGIN``, the ``SELECT`` and ``COMMIT``. Here it is one ``SELECT`` in
autocommit (a single statement sees one snapshot) on a pooled async connection, and the loop
serves other requests while PostgreSQL answers (bench/README.md, "Issue 21": the measured
effect). SQLite has no such path: its reads run inline (api/offload.py).

The statement is the store's own (``store/jobs.py`` ``_VISIBLE_ONE``), compiled once for
PostgreSQL; rows become a :class:`~mrs_jobs.domain.job.Job` through the same ``job_from_row``.
A read that meets a broken connection (the database restarted) has the pool check its kept
connections, dropping the broken ones, and is tried once more: reads change nothing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from sqlalchemy.dialects.postgresql import psycopg as pg_dialect
from sqlalchemy.engine import make_url

from mrs_jobs.domain.job import Job
from mrs_jobs.errors import StoreFailure, StoreUnavailable
from mrs_jobs.store.jobs import VISIBLE_ONE, job_from_row

__all__ = ["AsyncReads"]

log = logging.getLogger(__name__)

#: Connections kept for the loop's reads (as many as the API has worker threads: a request
#: waits for one only when that many reads are in flight at once).
_MAX_CONNECTIONS = 8
#: How long a read waits for a free connection (or for the database) before a 503.
_WAIT_SECONDS = 10.0


def _compiled(statement: Any) -> tuple[str, dict[str, Any]]:
    """The statement as psycopg's SQL with its literal parameters (e.g. ``deleted_ms = 0``)."""
    compiled = statement.compile(dialect=pg_dialect.dialect())
    return str(compiled), dict(compiled.params)


_VISIBLE_SQL, _VISIBLE_PARAMS = _compiled(VISIBLE_ONE)


def conninfo(url: str) -> str:
    """A SQLAlchemy ``postgresql+psycopg://`` URL as psycopg's connection string."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class AsyncReads:
    """A pool of async PostgreSQL connections, opened and closed with the API's event loop."""

    def __init__(self, url: str, *, max_size: int = _MAX_CONNECTIONS) -> None:
        self._conninfo = conninfo(url)
        self._max_size = max_size
        self._wait_seconds = _WAIT_SECONDS
        self._pool: AsyncConnectionPool | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the loop it was opened on

    @property
    def usable(self) -> bool:
        """Open, and on the running loop (its connections wait on the loop that opened them;
        a test client's one-off loop must use the worker threads instead)."""
        return self._loop is not None and self._loop is asyncio.get_running_loop()

    async def open(self) -> None:
        """Start a pool without waiting for the database (a read waits, then 503s). An app
        may be started again after it stopped (a psycopg pool cannot): each open makes one."""
        if self._pool is not None:
            await self.close()
        self._pool = AsyncConnectionPool(
            self._conninfo,
            open=False,
            min_size=1,
            max_size=self._max_size,
            timeout=self._wait_seconds,
            kwargs={"autocommit": True, "row_factory": dict_row},
            name="mrs-jobs-reads",
        )
        await self._pool.open(wait=False)
        self._loop = asyncio.get_running_loop()

    async def close(self) -> None:
        pool, self._pool, self._loop = self._pool, None, None
        if pool is not None:
            await pool.close()

    async def visible_job(self, project_id: str, cluster_id: str, job_id: str) -> Job | None:
        """The job a show answers with, or None when this project's cluster has no such job."""
        if "\x00" in job_id:
            return None  # no job id has a NUL, and PostgreSQL refuses one in a query
        params = {
            **_VISIBLE_PARAMS,
            "project_id": project_id,
            "cluster_id": cluster_id,
            "job_id": job_id,
        }
        row = await self._one(_VISIBLE_SQL, params)
        return job_from_row(row) if row is not None else None

    async def _one(self, sql: str, params: dict[str, Any]) -> dict[str, Any] | None:
        pool = self._pool
        if pool is None:
            raise StoreUnavailable()  # (callers check ``usable`` first)
        for attempt in (1, 2):
            try:
                async with pool.connection() as conn:
                    cur = await conn.execute(sql, params)
                    return await cur.fetchone()
            except PoolTimeout as exc:
                log.error("store.error", extra={"error": "PoolTimeout"}, exc_info=exc)
                raise StoreUnavailable() from exc
            except psycopg.OperationalError as exc:
                if attempt == 1:
                    # e.g. the database restarted under the kept connections: drop every
                    # broken one (a round trip each, this once), then read again
                    await pool.check()
                    continue
                log.error("store.error", extra={"error": exc.__class__.__name__}, exc_info=exc)
                raise StoreUnavailable() from exc
            except psycopg.Error as exc:
                log.error("store.error", extra={"error": exc.__class__.__name__}, exc_info=exc)
                raise StoreFailure("The job store failed; nothing was changed.") from exc
        raise AssertionError("unreachable")
