"""The HTTP server of ``mrs-jobs serve``: uvicorn's settings and its SIGTERM, shared by the
one-process server (server.py) and each API process of ``serve --workers`` (server_workers.py).
"""

from __future__ import annotations

from types import FrameType
from typing import TYPE_CHECKING

from mrs_jobs.settings import Settings

if TYPE_CHECKING:
    import uvicorn
    from fastapi import FastAPI

__all__ = ["BACKLOG", "Terminated", "raise_terminated", "uvicorn_server"]

BACKLOG = 2048


class Terminated(Exception):
    """SIGTERM, raised in the main thread once uvicorn has shut down."""


def raise_terminated(_signum: int, _frame: FrameType | None) -> None:
    raise Terminated()


def uvicorn_server(settings: Settings, app: FastAPI, loop: str = "auto") -> uvicorn.Server:
    import uvicorn

    from mrs_jobs.api.connguard import ConnectionGuard, parse_networks
    from mrs_jobs.api.slowclient import protocol_with_head_timeout

    # log_config=None: uvicorn's own records go through the root handler, in the same format.
    # Slow or idle clients (docs/security.md): idle keep-alive connections close after 5 s, a
    # request head must arrive within request_head_timeout_seconds, and the connection guard
    # (api/connguard.py) keeps max_connections open by closing the oldest connections still
    # waiting for a request head, so uvicorn's 503 (limit_concurrency, one above the guard's
    # limit) answers only when every connection is busy.
    try:
        proxies = parse_networks(settings.trusted_proxies)
    except ValueError as exc:
        raise SystemExit(f"mrs-jobs: MRS_JOBS_TRUSTED_PROXIES: {exc}") from None
    guard = ConnectionGuard(
        max_connections=settings.max_connections,
        per_address=settings.max_waiting_connections_per_address,
        exempt=proxies,
    )
    app.state.ctx.metrics.registry.register(guard.collector())
    config = uvicorn.Config(
        app,
        loop=loop,
        log_level="warning",
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=10,
        timeout_keep_alive=5,
        limit_concurrency=settings.max_connections + 1,
        backlog=BACKLOG,
        h11_max_incomplete_event_size=16384,
        http=protocol_with_head_timeout(settings.request_head_timeout_seconds, guard),
        # X-Forwarded-For is believed only from configured proxies (uvicorn's default trusts
        # 127.0.0.1, which let any local process pick the address the rate limits key on).
        proxy_headers=bool(proxies),
        forwarded_allow_ips=[str(net) for net in proxies] or None,
    )
    return uvicorn.Server(config)
