"""uvicorn's h11 protocol with a request-head timeout and the connection guard.

uvicorn closes idle keep-alive connections, but a client that connects and then sends nothing,
or trickles a request head byte by byte, is never timed out; each such connection holds a slot
of ``limit_concurrency``. This protocol closes a connection whose request head has not been
fully received ``head_timeout`` seconds after the connection opened or the last response ended,
and tells the guard (``api/connguard.py``) when a connection opens, gets a complete head, goes
idle and closes, so the guard can close waiting ones first when connections run out.

A connection is *waiting* while it has no request in progress: no request yet, or the last
response complete (a pipelined request already parsed counts as in progress).
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.h11_impl import H11Protocol

from mrs_jobs.api.connguard import ConnectionGuard

__all__ = ["GuardedH11Protocol", "protocol_with_head_timeout"]


class GuardedH11Protocol(H11Protocol):
    head_timeout: float = 10.0
    guard: ConnectionGuard | None = None
    peer: str = ""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer: asyncio.TimerHandle | None = None
        self.peer = self.client[0] if self.client else ""
        self._arm()
        if self.guard is not None:
            self.guard.opened(self)

    def _waiting(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
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
        super().data_received(data)
        if not self._waiting():
            self._disarm()  # a whole request head arrived
            if self.guard is not None:
                self.guard.busy(self)

    def on_response_complete(self) -> None:
        super().on_response_complete()
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
        super().connection_lost(exc)


def protocol_with_head_timeout(
    seconds: float, guard: ConnectionGuard | None = None
) -> type[GuardedH11Protocol]:
    attrs = {"head_timeout": seconds, "guard": guard}
    return type("GuardedH11", (GuardedH11Protocol,), attrs)
