"""Alembic environment: always handed a connection by mrs_jobs.store.migrate."""

from __future__ import annotations

from alembic import context

from mrs_jobs.store.dialect import dialect_of
from mrs_jobs.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=dialect_of(connection).batch_migrations,
)
with context.begin_transaction():
    context.run_migrations()
