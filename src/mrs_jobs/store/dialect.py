"""What SQLite and PostgreSQL do differently, in one object the query modules ask.

``dialect_of(conn)`` gives the :class:`Dialect` of a connection; no module branches on
``conn.dialect.name`` itself (``store/db.py`` makes the engines, this says how they differ).
"""

from __future__ import annotations

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite

__all__ = ["Dialect", "dialect_of"]

# PostgreSQL advisory-lock key of the schema upgrade ("mrsjobs" in ASCII): instances starting
# together on an old schema take turns; the later ones then find it at head and do nothing.
_UPGRADE_LOCK = 0x6D72736A6F6273


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

    def lock_schema(self, conn: Connection) -> None:
        """Make concurrent schema upgrades take turns until ``conn`` commits (PostgreSQL; one
        SQLite file has one server, and its writers queue anyway)."""
        if not self.is_sqlite:
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_UPGRADE_LOCK})")


def dialect_of(conn: Connection) -> Dialect:
    """The :class:`Dialect` of the database behind ``conn``."""
    return Dialect(conn.dialect.name)
