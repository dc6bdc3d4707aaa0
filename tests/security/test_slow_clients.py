"""Slow clients: a connection that never completes its request head is closed in time."""

from __future__ import annotations

import socket
import time

import pytest
from support_server import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = ServerProcess(
        tmp_path_factory.mktemp("slow") / "data", MRS_JOBS_REQUEST_HEAD_TIMEOUT_SECONDS="1.5"
    ).start()
    yield srv
    srv.stop()


def _closed_after(endpoint: str, payload: bytes, limit: float = 10.0) -> tuple[float, bytes]:
    host, port = endpoint.split("//", 1)[1].rsplit(":", 1)
    s = socket.create_connection((host, int(port)))
    s.sendall(payload)
    s.settimeout(limit)
    started, data = time.monotonic(), b""
    try:
        while chunk := s.recv(4096):
            data += chunk
    except TimeoutError:
        return float("inf"), data
    finally:
        s.close()
    return time.monotonic() - started, data


@pytest.mark.parametrize("payload", [b"", b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: 1"])
def test_incomplete_request_heads_are_cut_off(server, payload) -> None:
    seconds, data = _closed_after(server.endpoint, payload)
    assert seconds < 5 and data == b""


def test_a_complete_request_is_answered(server) -> None:
    seconds, data = _closed_after(server.endpoint, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 200") and seconds < 10
