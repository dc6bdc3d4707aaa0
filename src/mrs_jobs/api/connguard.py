"""Which connections to close first when connections run out (slow-connection floods).

uvicorn refuses every new request with 503 once ``limit_concurrency`` connections are open, and
a connection that never finishes its request head costs its sender nothing: about a thousand
of them took the whole service down. The guard keeps that from happening:

- **Waiting connections** are those without a complete request head: new ones, and idle
  keep-alive ones between requests. Busy ones (a request being answered, an event stream) are
  never closed by the guard.
- **Per address**: one client address holds at most ``per_address`` waiting connections
  (loopback included); a new one past it closes that address's oldest, never-served first,
  once that one has waited ``grace`` seconds: a burst of clients connecting at once from one
  address (a test, a load generator, hundreds of event streams) is not cut while their heads
  are on the way. Addresses of trusted proxies are exempt (their connections carry many
  clients).
- **When full**: past ``max_connections`` open connections, a new connection closes the
  oldest waiting one anywhere (never-served first, then idle keep-alive), instead of being
  refused. Only when every connection is busy does the newcomer stay over the limit, and
  uvicorn answers its request with 503.

With a request head timeout (``api/slowclient.py``) the flood's connections also end on their
own. Closing is logged as ``connections.shed`` (counts by cause) at most every
:data:`REPORT_SECONDS`, so a flood shows in the log without flooding it. The guard is
bookkeeping only, called from the event loop by the protocol (``api/slowclient.py``); it never
blocks and keeps no history.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

__all__ = ["GRACE_SECONDS", "REPORT_SECONDS", "ConnectionGuard", "Guarded", "parse_networks"]

GRACE_SECONDS = 1.0
REPORT_SECONDS = 10.0

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Guarded(Protocol):
    """A connection as the guard sees it: its peer address, and a way to close it."""

    peer: str

    def shed(self) -> None: ...


def parse_networks(spec: str) -> list[Network]:
    """``"10.0.0.1, 192.168.0.0/16"`` -> networks (a bare address is a one-address network)."""
    parts = [part.strip() for part in spec.split(",")]
    return [ipaddress.ip_network(part, strict=False) for part in parts if part]


class ConnectionGuard:
    """Counts open connections and picks the ones to close. Event-loop thread only."""

    def __init__(
        self,
        *,
        max_connections: int,
        per_address: int,
        exempt: Iterable[Network] = (),
        grace: float = GRACE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_connections = max_connections
        self.per_address = per_address
        self.grace = grace
        self._clock = clock
        self._exempt = tuple(exempt)
        self._exempt_cache: dict[str, bool] = {}
        self.open = 0
        self._fresh: OrderedDict[Guarded, None] = OrderedDict()  # never served, oldest first
        self._idle: OrderedDict[Guarded, None] = OrderedDict()  # between requests
        # Per address: its waiting connections -> since when, oldest first.
        self._waiting_at: dict[str, OrderedDict[Guarded, float]] = {}
        self._shed_not_gone: set[Guarded] = set()  # closed by the guard, not yet lost
        self._unreported = {"address_cap": 0, "full": 0}
        self.shed_total = {"address_cap": 0, "full": 0}  # since start (the /metrics counter)
        self._reported_at: float | None = None

    def waiting(self, peer: str) -> int:
        return len(self._waiting_at.get(peer, ()))

    def opened(self, conn: Guarded) -> None:
        """A new connection: count it, then make room by closing others if needed."""
        self.open += 1
        now = self._clock()
        self._fresh[conn] = None
        self._waiting_at.setdefault(conn.peer, OrderedDict())[conn] = now
        if self.per_address > 0 and not self._is_exempt(conn.peer):
            at = self._waiting_at[conn.peer]
            while len(at) > self.per_address:
                victim = _oldest(at, self._fresh, conn)
                if now - at[victim] < self.grace:
                    break  # a burst arriving: their heads may be on the way
                self._shed(victim, "address_cap")
        while self.open > self.max_connections:
            victim = _first_other(self._fresh, conn) or _first_other(self._idle, conn)
            if victim is None:
                break  # every other connection is busy: uvicorn answers 503
            self._shed(victim, "full")

    def busy(self, conn: Guarded) -> None:
        """A complete request head arrived: the connection is no longer a candidate."""
        self._forget_waiting(conn)

    def idle(self, conn: Guarded) -> None:
        """A response ended and the connection stays open for the next request."""
        if conn in self._idle or conn in self._fresh:
            return
        self._idle[conn] = None
        self._waiting_at.setdefault(conn.peer, OrderedDict())[conn] = self._clock()

    def closed(self, conn: Guarded) -> None:
        """The connection is gone (counted once, whether the guard closed it or not)."""
        if conn in self._shed_not_gone:
            self._shed_not_gone.discard(conn)
        else:
            self.open -= 1
        self._forget_waiting(conn)

    def _shed(self, conn: Guarded, cause: str) -> None:
        self._forget_waiting(conn)
        self.open -= 1
        self._shed_not_gone.add(conn)
        conn.shed()
        self._unreported[cause] += 1
        self.shed_total[cause] += 1
        now = self._clock()
        if self._reported_at is None or now - self._reported_at >= REPORT_SECONDS:
            log.warning(
                "connections.shed",
                extra={**self._unreported, "open": self.open, "peer": conn.peer},
            )
            self._unreported = dict.fromkeys(self._unreported, 0)
            self._reported_at = now

    def collector(self) -> Collector:
        """``mrs_jobs_connections_shed_total{cause}`` and ``mrs_jobs_connections_open``."""
        return _GuardCollector(self)

    def _forget_waiting(self, conn: Guarded) -> None:
        self._fresh.pop(conn, None)
        self._idle.pop(conn, None)
        at = self._waiting_at.get(conn.peer)
        if at is not None:
            at.pop(conn, None)
            if not at:
                del self._waiting_at[conn.peer]

    def _is_exempt(self, peer: str) -> bool:
        if not self._exempt:
            return False
        known = self._exempt_cache.get(peer)
        if known is None:
            try:
                address = ipaddress.ip_address(peer)
            except ValueError:
                known = False
            else:
                known = any(address in net for net in self._exempt)
            if len(self._exempt_cache) > 10_000:
                self._exempt_cache.clear()
            self._exempt_cache[peer] = known
        return known


class _GuardCollector(Collector):
    def __init__(self, guard: ConnectionGuard) -> None:
        self.guard = guard

    def collect(self) -> Iterator[Metric]:
        shed = CounterMetricFamily(
            "mrs_jobs_connections_shed",
            "Connections closed by the guard while waiting for a request head, by cause: "
            "address_cap (an address past its waiting connections), full (the server at "
            "max_connections).",
            labels=["cause"],
        )
        for cause, count in sorted(self.guard.shed_total.items()):
            shed.add_metric([cause], count)
        yield shed
        yield GaugeMetricFamily(
            "mrs_jobs_connections_open", "Open HTTP connections.", value=self.guard.open
        )


def _first_other(conns: OrderedDict[Guarded, None], keep: Guarded) -> Guarded | None:
    for conn in conns:
        if conn is not keep:
            return conn
    return None


def _oldest(
    at: OrderedDict[Guarded, float], fresh: OrderedDict[Guarded, None], keep: Guarded
) -> Guarded:
    """An address's oldest never-served waiting connection, else its oldest idle one."""
    idle = None
    for conn in at:
        if conn is keep:
            continue
        if conn in fresh:
            return conn
        idle = idle or conn
    assert idle is not None  # the address holds more than one waiting connection
    return idle
