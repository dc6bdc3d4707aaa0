"""Domain error -> (HTTP status, MRS error_code): the one table (contract §10)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from mrs_jobs.errors import (
    AuthError,
    BatchDeleteFailed,
    ClusterNotFound,
    ComponentMissing,
    DomainError,
    HistoryNotFound,
    HistoryNotReady,
    InvalidParameter,
    JobAlreadyEnded,
    JobNotFinished,
    JobNotFound,
    PermissionDenied,
    ProjectMismatch,
    QueueFull,
    SqlExecutionNotFound,
    StoreFailure,
    StoreUnavailable,
    WrongJobType,
)

__all__ = ["error_response", "install_error_handlers"]

log = logging.getLogger(__name__)

_TABLE: list[tuple[type[DomainError], int, str]] = [
    (InvalidParameter, 400, "12000002"),
    (ClusterNotFound, 400, "12000003"),
    (JobAlreadyEnded, 400, "0175"),
    (JobNotFound, 400, "0176"),
    (SqlExecutionNotFound, 400, "12000002"),
    (WrongJobType, 400, "0179"),
    (JobNotFinished, 400, "0180"),
    (AuthError, 401, "APIGW.0301"),
    (ProjectMismatch, 403, "12000052"),
    (PermissionDenied, 403, "APIGW.0302"),
    (HistoryNotFound, 404, "12000002"),
    (QueueFull, 429, "0202"),
    (BatchDeleteFailed, 500, "0161"),
    (StoreFailure, 500, "0193"),
    (StoreUnavailable, 503, "0202"),
    (HistoryNotReady, 503, "0202"),
]
_COMPONENT_CODES = {"Spark": "0057", "Hive": "0168", "Flink": "0169"}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error_code": code, "error_msg": message}, status_code=status, headers=headers
    )


def _for_domain(exc: DomainError) -> JSONResponse:
    if isinstance(exc, ComponentMissing):
        return error_response(400, _COMPONENT_CODES.get(exc.component, "12000002"), exc.message)
    for cls, status, code in _TABLE:
        if isinstance(exc, cls):
            headers = None
            if isinstance(exc, QueueFull | StoreUnavailable | HistoryNotReady):
                # The SDK drops a 429's body; Retry-After is what reaches the user.
                headers = {"Retry-After": str(exc.retry_after)}
            return error_response(status, code, exc.message, headers)
    return error_response(500, "0193", exc.message)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        msg = err.get("msg", "invalid")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "Invalid request: " + "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_request: Request, exc: DomainError) -> JSONResponse:
        return _for_domain(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(400, "12000002", _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error_response(404, "12000002", "The requested resource does not exist.")
        if exc.status_code == 405:
            # Keep the framework's Allow header: a 405 must say which methods are allowed.
            return error_response(
                405, "12000002", "The method is not allowed on this resource.", exc.headers
            )
        return error_response(exc.status_code, "12000002", str(exc.detail), exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return error_response(500, "0193", "Internal error; nothing was changed.")
