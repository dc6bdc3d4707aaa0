"""Replay recorded REST exchanges (tests/fixtures/recorded/) and assert every request.

A fixture is ``{"source", "request": {method, path, query, headers, json}, "response": {status,
headers, body}}`` (``text`` instead of ``body`` for a plain-text answer or request body; neither
in a response without a body). :class:`Replay`
serves fixtures in order, either as an ``httpx.MockTransport`` or from a real local HTTP
server, and fails the test when a request differs from the recorded one in method, path,
query, any recorded header, or JSON body.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

RECORDED = Path(__file__).parent / "fixtures" / "recorded"


def load(name: str) -> dict[str, Any]:
    """A recorded exchange, e.g. ``load("yarn/app_running.json")``."""
    return json.loads((RECORDED / name).read_text(encoding="utf-8"))


class Replay:
    """Serves recorded exchanges in order; ``extra_headers`` are asserted on every request
    too (e.g. ``Authorization``), ``absent_headers`` must not be sent."""

    def __init__(
        self,
        *exchanges: dict[str, Any],
        extra_headers: dict[str, str] | None = None,
        absent_headers: tuple[str, ...] = (),
    ) -> None:
        self.pending = list(exchanges)
        self.extra_headers = extra_headers or {}
        self.absent_headers = absent_headers
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []
        self.errors: list[str] = []

    def check(self, method: str, url: str, headers: dict[str, str], body: bytes) -> dict:
        """Assert one request against the next exchange; its recorded response."""
        self.seen.append((method, url, headers, body))
        assert self.pending, f"unexpected request: {method} {url}"
        exchange = self.pending.pop(0)
        want = exchange["request"]
        parts = urlsplit(url)
        assert method == want["method"], (method, want["method"])
        assert parts.path == want["path"], (parts.path, want["path"])
        assert dict(parse_qsl(parts.query, keep_blank_values=True)) == want["query"], parts.query
        lower = {k.lower(): v for k, v in headers.items()}
        for key, value in {**want["headers"], **self.extra_headers}.items():
            assert lower.get(key.lower()) == value, f"header {key}: {lower.get(key.lower())!r}"
        for key in self.absent_headers:
            assert key.lower() not in lower, f"header {key} must not be sent"
        if "text" in want:  # a plain-text body (a Trino statement)
            assert body.decode("utf-8") == want["text"], body
        elif want["json"] is None:
            assert body == b"", body
        else:
            assert json.loads(body) == want["json"], body
        return exchange["response"]

    def handler(self, request: httpx.Request) -> httpx.Response:
        resp = self.check(request.method, str(request.url), dict(request.headers), request.read())
        if "text" in resp:
            body = resp["text"].encode()
        else:  # no body at all: e.g. 204 No Content
            body = json.dumps(resp["body"]).encode() if "body" in resp else b""
        return httpx.Response(resp["status"], headers=resp["headers"], content=body)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)

    def rebase(self, placeholder: str, base: str) -> None:
        """Put ``base`` (a replay server's URL) where the pending responses say
        ``placeholder``: for documents that name the server's own URLs (Trino's nextUri)."""
        self.pending = [json.loads(json.dumps(x).replace(placeholder, base)) for x in self.pending]

    def done(self) -> None:
        assert not self.errors, self.errors
        assert not self.pending, f"{len(self.pending)} recorded requests were not made"


@contextmanager
def serve(
    replay: Replay, redirect_first: str | None = None, tls: tuple[Path, Path] | None = None
) -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 replaying ``replay``; yields its base URL. With
    ``redirect_first`` (a base URL), the first request is answered 307 to that server instead
    (as a standby ResourceManager does); with ``tls`` (certificate, key) it speaks HTTPS."""
    state = {"redirect": redirect_first}

    class Handler(BaseHTTPRequestHandler):
        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if state["redirect"]:
                target, state["redirect"] = state["redirect"], None
                self.send_response(307)
                self.send_header("Location", target + self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            try:
                url = f"http://{self.headers.get('Host')}{self.path}"
                resp = replay.check(self.command, url, dict(self.headers.items()), body)
            except AssertionError as exc:
                replay.errors.append(str(exc))
                self.send_response(599)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if "text" in resp:
                data = resp["text"].encode()
            else:
                data = b"" if "body" not in resp else json.dumps(resp["body"]).encode()
            self.send_response(resp["status"])
            for key, value in resp["headers"].items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PUT = do_DELETE = do_POST = _any

        def log_message(self, *args: object) -> None:  # keep test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    scheme = "http"
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made with the openssl command."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def write_conf(directory: Path, core: dict[str, str], hdfs: dict[str, str]) -> str:
    """A Hadoop configuration directory with these core-site.xml and hdfs-site.xml properties."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, props in (("core-site.xml", core), ("hdfs-site.xml", hdfs)):
        body = "".join(
            f"<property><name>{k}</name><value>{v}</value></property>" for k, v in props.items()
        )
        (directory / name).write_text(f"<?xml version='1.0'?><configuration>{body}</configuration>")
    return str(directory)
