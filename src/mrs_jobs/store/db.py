"""Engine creation and transactions: the only module that knows SQLite from PostgreSQL.

SQLite gets WAL, foreign keys, a busy timeout and ``BEGIN IMMEDIATE`` for writes (so two
writers queue instead of failing half-way); PostgreSQL gets ``FOR UPDATE SKIP LOCKED`` where
jobs are claimed. What the query modules must do differently is asked of one
:class:`~mrs_jobs.store.dialect.Dialect` (``dialect_of(conn)``), never of
``conn.dialect.name``. Driver errors are translated here into the domain's ``StoreFailure`` /
``StoreUnavailable``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from mrs_jobs.errors import StoreFailure, StoreUnavailable
from mrs_jobs.store.dialect import Dialect

__all__ = ["API_THREADS", "Store"]

log = logging.getLogger(__name__)


#: Worker threads of the API (its run_in_threadpool calls; api/app.py sets anyio's limiter to
#: it, 40 by default). Two cores gain nothing from more: under 32 concurrent connections, 40
#: threads kept 40 pooled connections, each with its own SQLite page cache (idle RSS 110 ->
#: 151 MB after load; 8 threads: 118 MB, bench P5), for no more requests per second (bench
#: P3, 40 / 16 / 8 threads in one run: SQLite show 554 / 582 / 646 per s, submit 115 / 114 /
#: 179; PostgreSQL 16 vs 8 alike).
API_THREADS = 8
#: Connections kept: one per API thread, plus the supervisor, its webhook senders and the odd
#: CLI/startup thread. Past it, overflow connections are opened and closed per checkout.
_POOL = API_THREADS + 12
_SQLITE_BUSY_SECONDS = 30


class Store:
    """A database handle with read and write transactions."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.dialect = Dialect("sqlite" if url.startswith("sqlite") else "postgresql")
        self.engine: Engine = self._create_engine(url, echo)
        self._write_lock = threading.Lock() if self.dialect.is_sqlite else None
        self._on_commit: list[Callable[[], None]] = []

    @staticmethod
    def _create_engine(url: str, echo: bool) -> Engine:
        if not url.startswith("sqlite"):
            # As many kept sessions as threads may use at once: with 10 (+20 overflow) for 40
            # threads, 32 clients opened 828 sessions in 5 s, about a core of PostgreSQL CPU.
            return create_engine(
                url, echo=echo, pool_pre_ping=True, pool_size=_POOL, max_overflow=_POOL // 2
            )
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        pooled = path not in ("", ":memory:")
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": _SQLITE_BUSY_SECONDS},
            poolclass=None if pooled else NullPool,
            # One kept connection per thread that can hold one: an overflow connection is
            # opened (4 PRAGMAs) and closed on every checkout, ~10 % of a request's CPU.
            **({"pool_size": _POOL, "max_overflow": _POOL // 2} if pooled else {}),
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            # Take transaction control away from the driver so BEGIN is ours (see _on_begin).
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_SECONDS * 1000}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # A write transaction takes the write lock up front; upgrading a read lock later
            # is what produces "database is locked" under concurrency.
            write = conn.get_execution_options().get("mrs_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    @property
    def skip_locked(self) -> bool:
        """Whether ``SELECT ... FOR UPDATE SKIP LOCKED`` is available for claiming jobs."""
        return self.dialect.skip_locked

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """One write transaction: committed on success, rolled back on any error. After a
        commit, the listeners (:meth:`listen_commits`) are told."""
        with self._writer_turn(), self._translate():
            with self.engine.connect() as conn:
                conn.execution_options(mrs_write=True)
                with conn.begin():
                    yield conn
        for listener in list(self._on_commit):
            listener()

    def listen_commits(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` (quick, never raising: it only sets a flag) after every write
        transaction of this process commits, whoever wrote (the API or the supervisor);
        returns the function that stops it."""
        self._on_commit.append(listener)
        return lambda: self._on_commit.remove(listener)

    @contextmanager
    def _writer_turn(self) -> Iterator[None]:
        """SQLite: this process's writers take turns on a lock before ``BEGIN IMMEDIATE``.

        SQLite admits one writer; the others poll with its busy handler, sleeping 1-100 ms
        between tries, so 32 threads submitting at once spent most of their time asleep
        (about 120 submits/s). Queued on a lock, the next writer starts the moment the last
        one commits. Other processes (the admin commands) still meet the busy timeout.
        """
        if self._write_lock is None:
            yield
            return
        if not self._write_lock.acquire(timeout=_SQLITE_BUSY_SECONDS):
            raise StoreUnavailable()
        try:
            yield
        finally:
            self._write_lock.release()

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """One read transaction (a consistent snapshot on both databases)."""
        with self._translate():
            with self.engine.connect() as conn:
                with conn.begin():
                    yield conn

    @contextmanager
    def _translate(self) -> Iterator[None]:
        try:
            yield
        except DBAPIError as exc:
            log.error("store.error", extra={"error": exc.__class__.__name__}, exc_info=exc)
            text = str(exc.orig).lower() if exc.orig is not None else ""
            if exc.connection_invalidated or "locked" in text or "connect" in text:
                raise StoreUnavailable() from exc
            raise StoreFailure("The job store failed; nothing was changed.") from exc

    def migrate(self) -> None:
        """Bring the schema to the newest revision of the one Alembic chain."""
        from mrs_jobs.store.migrate import upgrade_head

        upgrade_head(self.engine, self.dialect)

    def dispose(self) -> None:
        self.engine.dispose()
