"""``GET /spark-history/{cluster_id}/{app_id}``: strict ids (MRS-style 400), 404 for what this
service keeps no history of, 302 to the page once the cluster's server knows the app, 503 with
Retry-After while it does not. The server here is a small HTTP stand-in for the JVM's REST."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from api_helpers import assert_error
from fastapi.testclient import TestClient

from mrs_jobs.api.app import create_app
from mrs_jobs.engines.spark_history import HistoryServers
from mrs_jobs.runtime.process import read_start_ticks
from mrs_jobs.settings import Settings
from mrs_jobs.store import Store

APP = "local-1765000000000"


class _Rest(BaseHTTPRequestHandler):
    known: set[str] = set()

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        app_id = self.path.rsplit("/", 1)[-1]
        if self.path.startswith("/api/v1/applications/") and app_id in self.known:
            body, status = json.dumps({"id": app_id, "name": "x"}).encode(), 200
        else:
            body, status = b'{"message": "unknown"}', 404
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def rest() -> Iterator[ThreadingHTTPServer]:
    _Rest.known = set()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Rest)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def servers(tmp_path: Path, rest: ThreadingHTTPServer) -> HistoryServers:
    """Cluster c1's server 'runs' (this test process stands for it) and holds one app's log."""
    servers = HistoryServers(tmp_path / "clusters", "marker", base_url="http://x")
    directory = servers.directory("c1")
    servers.logs("c1").mkdir(parents=True)
    (servers.logs("c1") / APP).write_text("{}\n")
    state = {
        "pid": os.getpid(),
        "start_ticks": read_start_ticks(os.getpid()),
        "port": rest.server_address[1],
    }
    (directory / "state.json").write_text(json.dumps(state))
    return servers


def _client(tmp_path: Path, servers: HistoryServers | None) -> TestClient:
    settings = Settings(data_dir=tmp_path / "data", port=0)
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    store.migrate()
    app = create_app(settings, store, runnable_types=frozenset({"SparkSubmit"}), history=servers)
    app.state.ctx.history.wait_seconds = 1.0
    return TestClient(app, follow_redirects=False)


def test_redirects_to_the_page_once_the_server_knows_the_app(
    tmp_path: Path, servers: HistoryServers, rest: ThreadingHTTPServer
) -> None:
    client = _client(tmp_path, servers)
    _Rest.known.add(APP)
    r = client.get(f"/spark-history/c1/{APP}")
    assert r.status_code == 302, r.text
    port = rest.server_address[1]
    assert r.headers["location"] == f"http://127.0.0.1:{port}/history/{APP}/jobs/"


def test_not_loaded_yet_is_503_with_retry_after(tmp_path: Path, servers: HistoryServers) -> None:
    r = _client(tmp_path, servers).get(f"/spark-history/c1/{APP}")
    assert_error(r, 503, "0202")
    assert r.headers["retry-after"] == "5"


@pytest.mark.parametrize(
    "path",
    [
        "/spark-history/c1/local-1.inprogress",
        "/spark-history/c1/..",
        f"/spark-history/{'c' * 65}/{APP}",
        f"/spark-history/c1/{'a' * 129}",
        f"/spark-history/c%2E1/{APP}",
    ],
)
def test_ids_are_checked(tmp_path: Path, servers: HistoryServers, path: str) -> None:
    r = _client(tmp_path, servers).get(path)
    if r.status_code == 404:  # the router itself refused the path (a '..' segment)
        assert_error(r, 404, "12000002")
    else:
        assert_error(r, 400, "12000002")


def test_unknown_apps_and_clusters_are_404(tmp_path: Path, servers: HistoryServers) -> None:
    client = _client(tmp_path, servers)
    assert_error(client.get("/spark-history/c1/local-9"), 404, "12000002")
    assert_error(client.get(f"/spark-history/c2/{APP}"), 404, "12000002")
    # a process without a supervisor keeps no history
    assert_error(_client(tmp_path / "other", None).get(f"/spark-history/c1/{APP}"), 404, "12000002")
