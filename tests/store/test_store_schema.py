"""The schema: the Alembic chain produces exactly the tables of the code; SQLite settings."""

from __future__ import annotations

import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from jobrows import count_jobs, insert_jobs, job_row
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from mrs_jobs.errors import StoreFailure
from mrs_jobs.store import Store
from mrs_jobs.store.migrate import alembic_config
from mrs_jobs.store.tables import metadata


def test_migrated_schema_is_exactly_the_metadata(store) -> None:
    with store.engine.connect() as conn:
        ctx = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        diff = compare_metadata(ctx, metadata)
    assert diff == []
    tables = set(inspect(store.engine).get_table_names())
    assert tables == set(metadata.tables) | {"alembic_version"}


def test_every_index_and_unique_constraint_exists(store) -> None:
    insp = inspect(store.engine)
    for table in metadata.sorted_tables:
        want = {ix.name for ix in table.indexes}
        have = {ix["name"] for ix in insp.get_indexes(table.name)}
        assert want <= have, (table.name, want - have)
        pk = insp.get_pk_constraint(table.name)["constrained_columns"]
        assert pk == [c.name for c in table.primary_key.columns], table.name
    uniques = {u["name"] for u in insp.get_unique_constraints("credentials")}
    assert {"uq_credentials_access_key", "uq_credentials_token_hash"} <= uniques


def test_migrations_are_one_chain_at_head(store) -> None:
    script = ScriptDirectory.from_config(alembic_config())
    heads = script.get_heads()
    assert len(heads) == 1
    with store.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_heads() == tuple(heads)
    store.migrate()  # again: a no-op, not an error
    with store.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_heads() == tuple(heads)


def test_sqlite_store_uses_wal_and_its_settings(sqlite_store) -> None:
    with sqlite_store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    # Every new connection gets them, not just the first.
    sqlite_store.engine.dispose()
    with sqlite_store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_write_rolls_back_on_error(store) -> None:
    with pytest.raises(RuntimeError):
        with store.write() as conn:
            conn.execute(text("DELETE FROM audit"))
            insert_jobs_in(conn, 3)
            raise RuntimeError("abort")
    assert count_jobs(store) == 0


def insert_jobs_in(conn, n: int) -> None:  # type: ignore[no-untyped-def]
    from mrs_jobs.store.tables import jobs

    conn.execute(jobs.insert(), [job_row("p", "c") for _ in range(n)])


def test_driver_errors_become_store_failures(store) -> None:
    (job_id,) = insert_jobs(store, [job_row("p", "c")])
    with pytest.raises(StoreFailure) as info:
        insert_jobs(store, [job_row("p", "c", id=job_id)])
    assert isinstance(info.value.__cause__, IntegrityError)
    assert count_jobs(store) == 1


def test_concurrent_writers_all_commit(store) -> None:
    """SQLite takes the write lock up front (BEGIN IMMEDIATE): writers queue, none fails."""
    barrier = threading.Barrier(6)
    errors: list[Exception] = []

    def writer() -> None:
        barrier.wait()
        try:
            for _ in range(10):
                with store.write() as conn:
                    # Read then write in one transaction: the pattern that deadlocks SQLite
                    # when a read lock has to be upgraded.
                    conn.exec_driver_sql("SELECT COUNT(*) FROM jobs").scalar()
                    insert_jobs_in(conn, 1)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert count_jobs(store) == 60


def test_instances_starting_together_migrate_once(tmp_path) -> None:
    """Several instances starting on an empty PostgreSQL schema: all start, one migrates."""
    import threading
    import uuid

    import sqlalchemy
    from support_db import PG_URL, pg_or_skip

    pg_or_skip()
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = sqlalchemy.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in PG_URL else "?"
    # lock_timeout: without the upgrade lock the racing DDL blocks; fail, do not hang
    options = f"options=-csearch_path%3D{schema}%20-clock_timeout%3D30000"
    stores = [Store(f"{PG_URL}{sep}{options}") for _ in range(4)]
    errors: list[BaseException] = []
    gate = threading.Barrier(len(stores))

    def start(store: Store) -> None:
        gate.wait()
        try:
            store.migrate()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(s,)) for s in stores]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert errors == []
        with stores[0].read() as conn:
            versions = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
        assert len(versions) == 1
    finally:
        for s in stores:
            s.dispose()
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()
