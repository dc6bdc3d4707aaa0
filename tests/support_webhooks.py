"""A real webhook receiver for tests: a threaded HTTP server on 127.0.0.1 that keeps every
request (its headers, body and arrival time) and answers what the test's ``answer`` says.

``check_signature`` verifies a request the way a receiver following Standard Webhooks does,
written here from the convention (HMAC-SHA256 over ``id.timestamp.body``), not with the
service's code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Received", "Receiver", "check_signature", "stored_events"]


@dataclass(frozen=True)
class Received:
    msg_id: str
    timestamp: str
    signature: str
    body: str
    at: float  # time.time() on arrival
    host: str = ""  # the Host header

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


def check_signature(secret: str, got: Received) -> bool:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{got.msg_id}.{got.timestamp}.{got.body}".encode()
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = [s.split(",", 1)[1] for s in got.signature.split() if s.startswith("v1,")]
    return any(hmac.compare_digest(expected, s) for s in offered)


class Receiver:
    """``answer(received) -> (status, delay seconds)``; default: 200 at once."""

    def __init__(self, answer: Callable[[Received], tuple[int, float]] | None = None) -> None:
        self.answer = answer or (lambda r: (200, 0.0))
        self.received: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                size = int(self.headers.get("content-length", "0"))
                got = Received(
                    self.headers.get("webhook-id", ""),
                    self.headers.get("webhook-timestamp", ""),
                    self.headers.get("webhook-signature", ""),
                    self.rfile.read(size).decode(),
                    time.time(),
                    self.headers.get("host", ""),
                )
                with receiver._lock:
                    receiver.received.append(got)
                status, delay = receiver.answer(got)
                if delay:
                    time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender gave up (timed out)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.received)


def stored_events(store: Any, project: str, wanted: set[str]) -> dict[tuple[str, str], str]:
    """(job id, event id) -> type of every event of ``project`` in the store whose type is in
    ``wanted``: what a subscription to those types is owed."""
    from sqlalchemy import select

    from mrs_jobs.domain.events import event_type
    from mrs_jobs.store.tables import job_events

    cols = (job_events.c.job_id, job_events.c.seq, job_events.c.from_state)
    with store.read() as conn:
        rows = conn.execute(
            select(*cols, job_events.c.to_state, job_events.c.result).where(
                job_events.c.project_id == project
            )
        ).all()
    out = {}
    for r in rows:
        kind = event_type(r.from_state, r.to_state, r.result)
        if kind in wanted:
            out[(r.job_id, str(r.seq))] = kind
    return out
