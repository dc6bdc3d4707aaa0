"""uvicorn's HTTP protocol with a request-head timeout, a head-size cap and the connection guard.

uvicorn closes idle keep-alive connections, but a client that connects and then sends nothing,
or trickles a request head byte by byte, is never timed out; each such connection holds a slot
of ``limit_concurrency``. This protocol closes a connection whose request head has not been
fully received ``head_timeout`` seconds after the connection opened or the last response ended,
or whose head grows past ``max_head_bytes``, and tells the guard (``api/connguard.py``) when a
connection opens, gets a complete head, goes idle and closes, so the guard can close waiting
ones first when connections run out.

A connection is *waiting* while it has no request in progress: no request yet, or the last
response complete (a pipelined request already parsed counts as in progress).

The parser is httptools (C, llhttp) when it is installed, as it is with the project's pinned
dependencies: it parses a request head in a fraction of h11's time (bench/README.md, "Issue
21"). h11, pure Python, is the fallback; the same guard wraps either.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from mrs_jobs.api.connguard import ConnectionGuard

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools is a pinned dependency
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

__all__ = ["GuardedProtocol", "protocol_with_head_timeout"]

DEFAULT_MAX_HEAD_BYTES = 16384


class GuardedProtocol:
    """Mixed in before uvicorn's protocol class (h11 or httptools: the same hooks)."""

    head_timeout: float = 10.0
    max_head_bytes: int = DEFAULT_MAX_HEAD_BYTES
    guard: ConnectionGuard | None = None
    peer: str = ""
    # Set by uvicorn's protocol classes:
    cycle: Any
    client: Any
    connections: set[Any]
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # type: ignore[misc]
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self.peer = self.client[0] if self.client else ""
        self._arm()
        if self.guard is not None:
            self.guard.opened(self)

    def _waiting(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
        self._head_bytes = 0
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._waiting() and not self.transport.is_closing():
            self.transport.close()  # no complete request head in time

    def shed(self) -> None:
        """Closed by the guard to make room (only ever while waiting)."""
        # Uncounted at once: uvicorn would count it until the loop's next turn runs
        # connection_lost, and answer a request parsed meanwhile with 503.
        self.connections.discard(self)
        if not self.transport.is_closing():
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        waiting = self._head_timer is not None
        super().data_received(data)  # type: ignore[misc]
        if not self._waiting():
            if waiting:
                self._disarm()  # a whole request head arrived
                if self.guard is not None:
                    self.guard.busy(self)
            return
        if waiting:
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head_bytes and not self.transport.is_closing():
                self.transport.close()  # a head this large is refused, as h11's cap did

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        if self.transport.is_closing() or not self._waiting():
            return  # closing, or a pipelined request is already in progress
        self._disarm()
        self._arm()
        if self.guard is not None:
            self.guard.idle(self)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self.guard is not None:
            self.guard.closed(self)
        super().connection_lost(exc)  # type: ignore[misc]


def protocol_with_head_timeout(
    seconds: float, guard: ConnectionGuard | None = None, *, parser: str = "auto"
) -> type[asyncio.Protocol]:
    """The guarded protocol class: httptools' when installed (``parser="auto"``), or ``"h11"``."""
    base: type = H11Protocol
    if parser != "h11" and HttpToolsProtocol is not None:
        base = HttpToolsProtocol
    attrs = {"head_timeout": seconds, "guard": guard}
    return type(f"Guarded{base.__name__}", (GuardedProtocol, base), attrs)
