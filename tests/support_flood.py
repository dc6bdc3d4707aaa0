"""A bounded slow-head flood on loopback, for the front-door tests (issue 20).

``SlowHeadFlood`` keeps ``target`` connections open to a server, each having sent part of a
request head and then nothing; whatever the server closes is reopened, at most ``per_second``
new connections a second. Sources are loopback addresses (``127.0.0.2`` ...) so a test can
flood from one address or from many. It runs in its own thread and closes every socket on
``stop()``.
"""

from __future__ import annotations

import errno
import resource
import selectors
import socket
import threading
import time

__all__ = ["SlowHeadFlood", "ensure_open_files"]

PARTIAL_HEAD = b"GET /health HTTP/1.1\r\nHost: flood\r\nX-Slow: 1\r\n"


def ensure_open_files(needed: int) -> str | None:
    """Raise the soft open-files limit up to the hard one; a reason to skip if still short."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        want = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        soft = want
    if soft < needed:
        return f"needs {needed} open files, ulimit -n allows {soft} (hard limit {hard})"
    return None


class SlowHeadFlood:
    def __init__(
        self, host: str, port: int, *, target: int, sources: list[str], per_second: float = 500
    ) -> None:
        self.host, self.port = host, port
        self.target = target
        self.sources = sources
        self.per_second = per_second
        self.opened = 0  # connections made
        self.cut = 0  # connections the server closed
        self.failed = 0  # connects refused or reset
        self._sel = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slow-head-flood", daemon=True)

    @property
    def open_now(self) -> int:
        return len(self._sel.get_map())

    def start(self) -> SlowHeadFlood:
        self._thread.start()
        return self

    def wait_opened(self, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.opened < count and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        for key in list(self._sel.get_map().values()):
            self._drop(key.fileobj)  # type: ignore[arg-type]
        self._sel.close()

    def _run(self) -> None:
        started, made = time.monotonic(), 0
        while not self._stop.is_set():
            allowed = int((time.monotonic() - started) * self.per_second) - made
            while allowed > 0 and self.open_now < self.target:
                self._open(self.sources[made % len(self.sources)])
                made += 1
                allowed -= 1
            for key, _ in self._sel.select(timeout=0.02):
                sock: socket.socket = key.fileobj  # type: ignore[assignment]
                try:
                    data = sock.recv(4096)
                except OSError:
                    data = b""
                if not data:  # closed by the server (or a 503 followed by a close)
                    self.cut += 1
                    self._drop(sock)

    def _open(self, source: str) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind((source, 0))
            sock.settimeout(2)
            sock.connect((self.host, self.port))
            sock.sendall(PARTIAL_HEAD)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            self.failed += 1
            if exc.errno == errno.EMFILE:
                time.sleep(0.1)
            return
        self.opened += 1
        self._sel.register(sock, selectors.EVENT_READ)

    def _drop(self, sock: socket.socket) -> None:
        try:
            self._sel.unregister(sock)
        except (KeyError, ValueError):
            pass
        sock.close()
