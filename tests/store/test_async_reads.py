"""PostgreSQL's show read on the event loop (store/async_reads.py): the same answer as the
synchronous store's, scoped the same way, and surviving the database dropping its sessions."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy
from jobrows import insert_job
from support_db import pg_schema_url

from mrs_jobs.errors import StoreUnavailable
from mrs_jobs.store import Store
from mrs_jobs.store import jobs as job_store
from mrs_jobs.store.async_reads import AsyncReads

P, C = "p1", "c1"


@pytest.fixture
def pg() -> Iterator[tuple[Store, str]]:
    """A migrated PostgreSQL store whose sessions carry an application name of their own."""
    with pg_schema_url() as url:
        name = "t_reads_" + uuid.uuid4().hex[:8]
        url = f"{url}&application_name={name}"
        store = Store(url)
        store.migrate()
        try:
            yield store, name
        finally:
            store.dispose()


async def _read_all(reads: AsyncReads, ids: list[str], project: str = P, cluster: str = C):
    await reads.open()
    try:
        return [await reads.visible_job(project, cluster, job_id) for job_id in ids]
    finally:
        await reads.close()


def test_the_async_read_answers_as_the_store_does(pg) -> None:
    store, _ = pg
    mine = insert_job(store, P, C, state="RUNNING", arguments='["a", "b"]')
    other_cluster = insert_job(store, P, "c2")
    other_project = insert_job(store, "p2", C)
    deleted = insert_job(store, P, C, deleted_ms=5)
    ids = [mine, other_cluster, other_project, deleted, "nope", "a\x00b"]
    found = asyncio.run(_read_all(AsyncReads(store.url), ids))
    with store.read() as conn:
        expected = job_store.get_visible(conn, P, C, mine)
    assert expected is not None and found[0] == expected
    assert found[0].arguments == ["a", "b"]
    assert found[1:] == [None] * 5


def _terminate_sessions(store: Store, name: str) -> int:
    admin = sqlalchemy.create_engine(store.url.split("?")[0])
    try:
        with admin.begin() as conn:
            return len(
                conn.execute(
                    sqlalchemy.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE application_name = :n"
                    ),
                    {"n": name},
                ).all()
            )
    finally:
        admin.dispose()


def test_a_read_after_the_database_dropped_its_sessions_still_answers(pg) -> None:
    store, name = pg
    job_id = insert_job(store, P, C)
    store.dispose()  # only the async pool's sessions carry the name from here on

    async def scenario() -> list[object]:
        reads = AsyncReads(store.url, max_size=2)
        await reads.open()
        try:
            first = await reads.visible_job(P, C, job_id)
            killed = await asyncio.to_thread(_terminate_sessions, store, name)
            second = await reads.visible_job(P, C, job_id)
            return [first, killed, second]
        finally:
            await reads.close()

    first, killed, second = asyncio.run(scenario())
    assert killed >= 1  # the kept session was really ended under the pool
    assert first is not None and second == first


def test_an_unreachable_database_is_a_503_not_a_hang() -> None:
    url = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1"

    async def scenario() -> None:
        reads = AsyncReads(url)
        reads._wait_seconds = 1.0  # the test waits a second, not the service's ten
        await reads.open()
        try:
            await reads.visible_job(P, C, "j1")
        finally:
            await reads.close()

    with pytest.raises(StoreUnavailable):
        asyncio.run(scenario())


def test_the_reads_open_again_after_they_closed(pg) -> None:
    """An app may be started, stopped and started again in one process (the API fuzz tests
    do): a closed psycopg pool cannot be reopened, so each start makes its own."""
    store, _ = pg
    job_id = insert_job(store, P, C)
    reads = AsyncReads(store.url)
    first = asyncio.run(_read_all(reads, [job_id]))
    second = asyncio.run(_read_all(reads, [job_id]))  # opened on a new loop, after close
    assert first == second and first[0] is not None
