"""The greeting is printed only once a client can connect (the crash harness calls at once)."""

from __future__ import annotations

import socket
from pathlib import Path

from mrs_jobs.server import _listen
from mrs_jobs.settings import Settings


def test_the_socket_accepts_connections_before_the_server_loop_runs(tmp_path: Path) -> None:
    sock, endpoint = _listen(Settings(data_dir=tmp_path, host="127.0.0.1", port=0))
    try:
        port = sock.getsockname()[1]
        assert endpoint == f"http://127.0.0.1:{port}"
        # No uvicorn yet: a bound socket that is not listening refuses this connect.
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
    finally:
        sock.close()
