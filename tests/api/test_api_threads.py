"""The API's worker threads and the store's kept connections agree (store/db.py API_THREADS):
more threads than kept connections would open and close one per request; far more kept
connections than threads only hold memory (each SQLite connection has its own page cache)."""

from __future__ import annotations

import anyio.to_thread
from fastapi.testclient import TestClient

from mrs_jobs.api.app import create_app
from mrs_jobs.store.db import API_THREADS


def test_the_thread_limiter_is_the_stores_size(store, settings) -> None:
    app = create_app(settings, store, runnable_types=frozenset({"SparkSubmit"}))
    seen: list[float] = []

    @app.get("/threads-probe")
    async def probe() -> dict[str, float]:
        seen.append(anyio.to_thread.current_default_thread_limiter().total_tokens)
        return {}

    with TestClient(app) as client:
        assert client.get("/threads-probe").status_code == 200
    assert seen == [API_THREADS]
    pool = store.engine.pool
    assert API_THREADS < pool.size() <= API_THREADS + 12  # type: ignore[attr-defined]
