"""The durable store: SQLAlchemy Core tables, one Alembic chain, SQLite or PostgreSQL.

The store never commits on its own: services open a transaction with ``Store.write()`` /
``Store.read()`` and pass the connection to the query functions here.
"""

from mrs_jobs.store.db import Store

__all__ = ["Store"]
