"""A Trino coordinator for tests: the recorded documents of tests/fixtures/recorded/trino/
(their own URLs under :data:`BASE`), and a coordinator whose query runs until it is deleted."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from support_recorded import load

BASE = "http://coordinator.example:8080"  # the host the recorded documents name
SELECT = ["select_post", "select_queued", "select_page_1", "select_page_2", "select_finished"]


@contextmanager
def long_query() -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """A coordinator whose query runs until it is deleted: the recorded documents of
    ``long_*.json``, the running one served again for every poll (after a long-poll pause, as
    a coordinator waits for data before it answers). Yields its URL and the requests seen."""
    post = load("trino/long_post.json")
    running = load("trino/long_running.json")
    cancel = load("trino/long_cancel.json")["request"]["path"]
    seen: list[tuple[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, doc: dict | None) -> None:
            data = b"" if doc is None else json.dumps(doc).replace(BASE, base).encode()
            self.send_response(status)
            if doc is not None:
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            seen.append(("POST", self.rfile.read(length).decode()))
            self._answer(200, post["response"]["body"])

        def do_GET(self) -> None:
            seen.append(("GET", self.path))
            if self.path != running["request"]["path"]:
                time.sleep(0.2)  # the coordinator's long poll
            self._answer(200, running["response"]["body"])

        def do_DELETE(self) -> None:
            seen.append(("DELETE", self.path))
            self._answer(204 if self.path == cancel else 404, None)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base, seen
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
