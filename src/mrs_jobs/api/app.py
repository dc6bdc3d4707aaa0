"""The FastAPI application factory: wiring only, no behaviour of its own."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from mrs_jobs import __version__
from mrs_jobs.api.credcache import CredentialCache
from mrs_jobs.api.errors import error_response, install_error_handlers
from mrs_jobs.api.instrument import InstrumentMiddleware
from mrs_jobs.api.middleware import BodyTooLarge, RequestContextMiddleware
from mrs_jobs.api.ratelimit import RateLimited, RateLimiter
from mrs_jobs.api.replay import ReplayCache
from mrs_jobs.api.routes import clusters as cluster_routes
from mrs_jobs.api.routes import events as event_routes
from mrs_jobs.api.routes import files as file_routes
from mrs_jobs.api.routes import history as history_routes
from mrs_jobs.api.routes import jobs as job_routes
from mrs_jobs.api.routes import jobs_v11 as job_v11_routes
from mrs_jobs.api.routes import logs as log_routes
from mrs_jobs.api.routes import ops as ops_routes
from mrs_jobs.api.routes import permissions as permission_routes
from mrs_jobs.api.routes import sql_execution as sql_routes
from mrs_jobs.api.routes import usage as usage_routes
from mrs_jobs.secretbox import load_secret_box
from mrs_jobs.services.authn import Authenticator
from mrs_jobs.services.batch_delete import BatchDeleteService
from mrs_jobs.services.clusters import ClusterService
from mrs_jobs.services.context import Waker
from mrs_jobs.services.feed import FeedService
from mrs_jobs.services.feed_hub import FeedHub
from mrs_jobs.services.files import FileService
from mrs_jobs.services.jobs import JobService
from mrs_jobs.services.jobs_v11 import JobsV11Service
from mrs_jobs.services.logs import LogService
from mrs_jobs.services.metrics import Metrics
from mrs_jobs.services.observability import ObservabilityService
from mrs_jobs.services.permissions import PermissionService
from mrs_jobs.services.spark_history import SparkHistoryService
from mrs_jobs.services.sql_execution import SqlExecutionService
from mrs_jobs.services.usage import UsageService
from mrs_jobs.settings import Settings
from mrs_jobs.store import Store
from mrs_jobs.store.db import API_THREADS
from mrs_jobs.web import routes as web_routes

if TYPE_CHECKING:
    from mrs_jobs.engines.spark_history import HistoryServers
    from mrs_jobs.store.async_reads import AsyncReads

__all__ = ["AppContext", "create_app"]


@dataclass
class AppContext:
    settings: Settings
    store: Store
    authn: Authenticator
    jobs: JobService
    batch_delete: BatchDeleteService
    logs: LogService
    clusters: ClusterService
    files: FileService
    observability: ObservabilityService
    metrics: Metrics
    history: SparkHistoryService
    jobs_v11: JobsV11Service
    sql: SqlExecutionService
    usage: UsageService
    feed: FeedService
    permissions: PermissionService


_ROUTES = (
    log_routes,
    job_routes,
    cluster_routes,
    job_v11_routes,
    file_routes,
    usage_routes,
    event_routes,
    permission_routes,
    sql_routes,
    ops_routes,
    history_routes,
    web_routes,
)


def create_app(
    settings: Settings,
    store: Store,
    *,
    runnable_types: frozenset[str],
    wake: Waker = lambda: None,
    supervisor_id: str | None = None,
    history: HistoryServers | None = None,
) -> FastAPI:
    """Build the app over an already migrated store; ``wake`` nudges the supervisor.

    ``supervisor_id``: the supervisor this process runs, whose heartbeat ``/ready`` checks.
    ``history``: its engines' Spark history servers (ended local Spark jobs' pages).
    """
    app = FastAPI(
        title="mrs-jobs",
        version=__version__,
        description="MapReduce Service (MRS) API v2 job management, self-hosted.",
        docs_url=None,
        redoc_url=None,
        lifespan=_lifespan,
    )
    hub = FeedHub(store)  # the job event stream's one watcher (services/feed_hub.py)

    def committed() -> None:  # a change was committed here: wake the supervisor and the hub
        wake()
        hub.nudge()  # (also told by the store's commit listener while the app runs)

    observability = ObservabilityService(
        store, supervisor_id=supervisor_id, heartbeat_seconds=settings.heartbeat_seconds
    )
    metrics = Metrics(observability, version=__version__)
    box = load_secret_box(settings)  # seals SKs and the secret properties of submits
    # PostgreSQL: a show's read runs on the event loop's own connections (opened by _lifespan)
    reads = None if store.dialect.is_sqlite else _async_reads(store)
    jobs = JobService(
        store, runnable_types=runnable_types, wake=committed, secrets=box, reads=reads
    )
    batch_delete = BatchDeleteService(store, wake=committed)
    app.state.ctx = AppContext(
        settings=settings,
        store=store,
        authn=Authenticator(store, box),
        jobs=jobs,
        batch_delete=batch_delete,
        logs=LogService(store),
        clusters=ClusterService(store, settings),
        files=FileService(store, settings),
        observability=observability,
        metrics=metrics,
        history=SparkHistoryService(history),
        jobs_v11=JobsV11Service(store, jobs, batch_delete),
        sql=SqlExecutionService(store, settings, runnable_types=runnable_types, wake=committed),
        usage=UsageService(store),
        feed=FeedService(store, hub),
        permissions=PermissionService(store),
    )
    metrics.registry.register(hub.collector())
    install_error_handlers(app)
    _install_limits(app, settings)

    for routes in _ROUTES:  # in this order: the first route that matches a path answers
        app.include_router(routes.router)

    # Inside RequestContextMiddleware (added after it), so the request id already exists.
    app.add_middleware(InstrumentMiddleware, metrics=metrics)
    app.add_middleware(
        RequestContextMiddleware,
        max_body_bytes=settings.max_body_bytes,
        access_log=bool(settings.access_log),
    )
    return app


def _install_limits(app: FastAPI, settings: Settings) -> None:
    """Abuse limits, read by api/auth.py (docs/security.md), and the answers they give."""
    app.state.rate_limiter = RateLimiter(
        per_second=settings.rate_limit_per_second,
        burst=settings.rate_limit_burst,
        auth_failures_per_second=settings.auth_failure_per_second,
        auth_failures_burst=settings.auth_failure_burst,
    )
    app.state.credential_cache = CredentialCache(ttl=settings.credential_cache_seconds)
    app.state.replay_cache = (
        ReplayCache(max_entries=settings.replay_cache_size) if settings.replay_protection else None
    )

    @app.exception_handler(RateLimited)
    async def _rate_limited(_request: Request, exc: RateLimited) -> JSONResponse:
        return error_response(429, "0202", exc.message, {"Retry-After": str(exc.retry_after)})

    @app.exception_handler(BodyTooLarge)
    async def _too_large(_request: Request, _exc: BodyTooLarge) -> JSONResponse:
        return error_response(
            413, "12000002", f"The request body is over {settings.max_body_bytes} bytes."
        )


def _async_reads(store: Store) -> AsyncReads:
    # imported here: psycopg and its pool cost a SQLite service ~9 MB of RSS (bench P5)
    from mrs_jobs.store.async_reads import AsyncReads

    return AsyncReads(store.url)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """The stream's hub polls while the server runs (it also starts on a first waiter)."""
    # The API's worker threads (every run_in_threadpool): as many as the store keeps
    # connections for (store/db.py API_THREADS).
    anyio.to_thread.current_default_thread_limiter().total_tokens = API_THREADS
    hub = app.state.ctx.feed.hub
    hub.start(pinned=True)
    # every commit of this process, the in-process supervisor's too, reaches stream clients at
    # once (a change by another process waits for the hub's next tick)
    unlisten = app.state.ctx.store.listen_commits(hub.nudge)
    reads = app.state.ctx.jobs.reads
    if reads is not None:
        await reads.open()
    # What start-up built (modules, the app, compiled statements: most of the heap) stays
    # for the process's life: out of the cyclic collector's sight, whose full collections
    # over it stopped every thread for ~100 ms every few seconds under load (bench P16:
    # submit p99 at half the maximum rate 96 -> 14.5 ms on SQLite).
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        unlisten()
        hub.stop()
        if reads is not None:
            await reads.close()
        gc.unfreeze()  # (several apps in one process: the tests)
