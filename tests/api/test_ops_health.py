"""``/health`` (liveness) and ``/ready`` (store reachable, supervisor heartbeating)."""

from __future__ import annotations

import shutil
from pathlib import Path

from api_helpers import assert_error, client_for
from prometheus_client.parser import text_string_to_metric_families

from mrs_jobs.api.app import create_app
from mrs_jobs.settings import Settings
from mrs_jobs.store import Store
from mrs_jobs.store.jobs import now_ms
from mrs_jobs.store.supervision import heartbeat


def app_over(store: Store, settings: Settings, supervisor_id: str | None = None):  # type: ignore[no-untyped-def]
    app = create_app(
        settings, store, runnable_types=frozenset({"SparkSubmit"}), supervisor_id=supervisor_id
    )
    return client_for(app)


def assert_not_ready(r, words: str) -> None:  # type: ignore[no-untyped-def]
    msg = assert_error(r, 503, "0202")
    assert words in msg, msg
    assert r.headers["retry-after"] == "5"


def store_up(client) -> float:  # type: ignore[no-untyped-def]
    r = client.get("/metrics")
    assert r.status_code == 200, r.text
    for family in text_string_to_metric_families(r.text):
        if family.name == "mrs_jobs_store_up":
            return family.samples[0].value
    raise AssertionError("mrs_jobs_store_up missing")


def test_health_and_ready_on_a_migrated_store(api) -> None:  # type: ignore[no-untyped-def]
    plain = client_for(api.client.app)
    r = plain.get("/health")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})
    assert r.headers["x-request-id"]
    r = plain.get("/ready")
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ready", "store": "ok", "supervisor": "not running here"}


def test_not_ready_when_the_sqlite_directory_is_gone(tmp_path: Path, settings: Settings) -> None:
    where = tmp_path / "gone"
    store = Store(f"sqlite:///{where / 'store.db'}")
    store.migrate()
    store.dispose()  # no pooled connection keeps the old file open
    shutil.rmtree(where)
    client = app_over(store, settings)
    try:
        assert client.get("/health").status_code == 200  # alive, just not ready
        assert_not_ready(client.get("/ready"), "store is unreachable")
        assert store_up(client) == 0
    finally:
        store.dispose()


def test_not_ready_when_postgresql_is_not_listening(settings: Settings) -> None:
    store = Store("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=3")
    client = app_over(store, settings)
    try:
        assert client.get("/health").status_code == 200
        assert_not_ready(client.get("/ready"), "store is unreachable")
        assert store_up(client) == 0
    finally:
        store.dispose()


def test_ready_follows_the_supervisor_heartbeat(sqlite_store: Store, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", heartbeat_seconds=1.0)
    client = app_over(sqlite_store, settings, supervisor_id="sup-1")
    assert_not_ready(client.get("/ready"), "has not heartbeated")

    with sqlite_store.write() as conn:
        heartbeat(conn, "sup-1", "host", 1, now_ms())
    r = client.get("/ready")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["supervisor"]) == ("ready", "ok")
    assert 0 <= body["heartbeat_age_seconds"] < 3

    # Another supervisor's fresh heartbeat does not make this one alive.
    with sqlite_store.write() as conn:
        heartbeat(conn, "sup-1", "host", 1, now_ms() - 3_500)  # 3 periods = 3 s
        heartbeat(conn, "sup-2", "host", 2, now_ms())
    assert_not_ready(client.get("/ready"), "heartbeat is stale")

    with sqlite_store.write() as conn:
        heartbeat(conn, "sup-1", "host", 1, now_ms())
    assert client.get("/ready").status_code == 200
