"""The FastAPI application factory: wiring only, no behaviour of its own."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from mrs_jobs import __version__
from mrs_jobs.api.errors import error_response, install_error_handlers
from mrs_jobs.api.middleware import BodyTooLarge, RequestContextMiddleware
from mrs_jobs.api.routes import jobs as job_routes
from mrs_jobs.api.routes import logs as log_routes
from mrs_jobs.services.batch_delete import BatchDeleteService
from mrs_jobs.services.context import Waker
from mrs_jobs.services.jobs import JobService
from mrs_jobs.services.logs import LogService
from mrs_jobs.services.tenants import TenantService
from mrs_jobs.settings import Settings
from mrs_jobs.store import Store

__all__ = ["AppContext", "create_app"]


@dataclass
class AppContext:
    settings: Settings
    store: Store
    tenants: TenantService
    jobs: JobService
    batch_delete: BatchDeleteService
    logs: LogService


def create_app(
    settings: Settings,
    store: Store,
    *,
    runnable_types: frozenset[str],
    wake: Waker = lambda: None,
) -> FastAPI:
    """Build the app over an already migrated store; ``wake`` nudges the supervisor."""
    app = FastAPI(
        title="mrs-jobs",
        version=__version__,
        description="MapReduce Service (MRS) API v2 job management, self-hosted.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.ctx = AppContext(
        settings=settings,
        store=store,
        tenants=TenantService(store),
        jobs=JobService(store, runnable_types=runnable_types, wake=wake),
        batch_delete=BatchDeleteService(store, wake=wake),
        logs=LogService(store),
    )
    install_error_handlers(app)

    @app.exception_handler(BodyTooLarge)
    async def _too_large(_request: Request, _exc: BodyTooLarge) -> JSONResponse:
        return error_response(
            413, "12000002", f"The request body is over {settings.max_body_bytes} bytes."
        )

    app.include_router(log_routes.router)
    app.include_router(job_routes.router)

    @app.get("/health", include_in_schema=False)
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    return app
