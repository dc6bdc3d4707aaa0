"""A request-head timeout for uvicorn's h11 server (slow-client protection).

uvicorn closes idle keep-alive connections, but a client that connects and then sends nothing,
or trickles a request head byte by byte, is never timed out; each such connection holds a slot
of ``limit_concurrency``. This protocol closes a connection whose request head has not been
fully received ``head_timeout`` seconds after the connection opened or the last response ended.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["HeadTimeoutH11Protocol", "protocol_with_head_timeout"]


class HeadTimeoutH11Protocol(H11Protocol):
    head_timeout: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def _arm(self) -> None:
        self._waiting_cycle: Any = self.cycle
        self._head_timer: asyncio.TimerHandle | None = self.loop.call_later(
            self.head_timeout, self._head_timed_out
        )

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.cycle is self._waiting_cycle and not self.transport.is_closing():
            self.transport.close()  # no complete request head in time

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.cycle is not self._waiting_cycle and self._head_timer is not None:
            self._head_timer.cancel()  # a whole request head arrived
            self._head_timer = None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)


def protocol_with_head_timeout(seconds: float) -> type[HeadTimeoutH11Protocol]:
    return type("HeadTimeoutH11", (HeadTimeoutH11Protocol,), {"head_timeout": seconds})
