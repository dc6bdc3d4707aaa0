"""What SQLite and PostgreSQL do differently, in one object the query modules ask.

``dialect_of(conn)`` gives the :class:`Dialect` of a connection; no module branches on
``conn.dialect.name`` itself (``store/db.py`` makes the engines, this says how they differ).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import ARRAY, ColumnElement, Connection, String, Table, any_, bindparam
from sqlalchemy.dialects import postgresql, sqlite

__all__ = ["Dialect", "dialect_of"]

# PostgreSQL advisory-lock key of the schema upgrade ("mrsjobs" in ASCII): instances starting
# together on an old schema take turns; the later ones then find it at head and do nothing.
_UPGRADE_LOCK = 0x6D72736A6F6273
#: Ids per statement on SQLite (the bound-parameter limit of older builds).
_SQLITE_IDS = 500


class Dialect:
    """Everything the query modules do differently on SQLite and PostgreSQL, in one object."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.is_sqlite = name == "sqlite"

    @property
    def skip_locked(self) -> bool:
        """Whether ``SELECT ... FOR UPDATE SKIP LOCKED`` is available for claiming jobs."""
        return not self.is_sqlite

    @property
    def scoped_update_returning(self) -> bool:
        """Whether a scoped ``UPDATE ... RETURNING`` is the quick way to change a set of jobs.

        PostgreSQL's planner has statistics and takes the primary key; SQLite (none) walks a
        scope index over the whole cluster, so there a primary-key lookup comes first.
        """
        return not self.is_sqlite

    @property
    def batch_migrations(self) -> bool:
        """Alembic's batch mode (copy-and-move tables): SQLite cannot alter most of a table."""
        return self.is_sqlite

    def insert(self, table: Table) -> postgresql.Insert | sqlite.Insert:
        """An INSERT that can say ``ON CONFLICT DO NOTHING`` (both dialects spell it alike)."""
        return (sqlite if self.is_sqlite else postgresql).insert(table)

    def id_chunks(self, ids: Sequence[str]) -> Iterator[Sequence[str]]:
        """``ids`` in the pieces one statement takes (with :meth:`in_ids`): all at once on
        PostgreSQL, 500 at a time on SQLite."""
        step = _SQLITE_IDS if self.is_sqlite else max(len(ids), 1)
        for start in range(0, len(ids), step):
            yield ids[start : start + step]

    def in_ids(self, column: Any, ids: Sequence[str]) -> ColumnElement[bool]:
        """``column IN ids``. PostgreSQL: ``column = ANY(:ids)``, one array parameter, so the
        statement's text is the same for any number of ids (psycopg parsed a 500-placeholder
        text on every purge statement, and PostgreSQL planned each afresh); SQLite: an IN
        list (at most :data:`_SQLITE_IDS`, see :meth:`id_chunks`)."""
        if self.is_sqlite:
            return column.in_(list(ids))
        return column == any_(bindparam("ids", list(ids), type_=ARRAY(String)))

    def lock_schema(self, conn: Connection) -> None:
        """Make concurrent schema upgrades take turns until ``conn`` commits (PostgreSQL; one
        SQLite file has one server, and its writers queue anyway)."""
        if not self.is_sqlite:
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_UPGRADE_LOCK})")


def dialect_of(conn: Connection) -> Dialect:
    """The :class:`Dialect` of the database behind ``conn``."""
    return Dialect(conn.dialect.name)
