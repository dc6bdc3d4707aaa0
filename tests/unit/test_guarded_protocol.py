"""The guarded HTTP protocol (api/slowclient.py) over both of uvicorn's parsers: httptools (the
default, C) and h11 (the fallback). Each closes a connection whose request head does not arrive
in time or grows past the cap, and serves ordinary keep-alive requests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from mrs_jobs.api.slowclient import protocol_with_head_timeout

HEAD_TIMEOUT = 0.5


async def _app(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


@pytest.fixture(params=["auto", "h11"])
def port(request: pytest.FixtureRequest) -> Iterator[int]:
    protocol = protocol_with_head_timeout(HEAD_TIMEOUT, parser=request.param)
    if request.param == "auto":
        assert "HttpTools" in protocol.__name__  # the pinned dependency is there
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(_app, http=protocol, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    yield sock.getsockname()[1]
    server.should_exit = True
    thread.join(10)


def _closed(conn: socket.socket, within: float) -> bool:
    """Whether the server closed ``conn`` within ``within`` seconds, answering nothing or an
    error (h11 answers a head over its own cap with 4xx before closing)."""
    conn.settimeout(within)
    got = b""
    try:
        while chunk := conn.recv(4096):
            got += chunk
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return got == b"" or got.startswith(b"HTTP/1.1 4")


def _answer(conn: socket.socket) -> bytes:
    """One whole response to ``GET /`` (head and its 2-byte body)."""
    got = b""
    while not got.endswith(b"\r\n\r\nok"):
        chunk = conn.recv(4096)
        assert chunk, got
        got += chunk
    return got


def test_keep_alive_requests_are_served(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        for _ in range(3):
            conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _answer(conn).startswith(b"HTTP/1.1 200")


def test_a_head_that_never_ends_is_closed_after_the_timeout(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # no blank line: the head goes on
        started = time.monotonic()
        assert _closed(conn, HEAD_TIMEOUT + 3)
        assert time.monotonic() - started < HEAD_TIMEOUT + 2


def test_an_idle_keep_alive_connection_gets_the_same_timeout(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _answer(conn).startswith(b"HTTP/1.1 200")
        conn.sendall(b"GET / HTTP/1.1\r\n")  # the next head, trickled and left unfinished
        assert _closed(conn, HEAD_TIMEOUT + 3)


def test_a_head_over_16_kib_is_refused(port: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
        filler = b"X-Filler: " + b"a" * 1000 + b"\r\n"
        try:
            for _ in range(20):  # 20 KB of header lines, no end of head
                conn.sendall(filler)
        except (BrokenPipeError, ConnectionResetError):
            return  # closed while sending: refused
        assert _closed(conn, HEAD_TIMEOUT / 2)  # well before the head timeout
