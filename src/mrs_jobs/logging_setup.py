"""Service logging: plain text, or one JSON object per line with request and job context.

The code logs an event name and passes its fields through ``extra=``::

    log.info("job.launched", extra={"job_id": job.id, "pid": handle.pid})

Text mode prints ``job.launched job_id=... pid=...``; JSON mode (:class:`JsonFormatter`) writes
the event as ``event`` and each field as a key, with ``request_id`` / ``project_id`` /
``job_id`` from :func:`log_context`, which the API's request middleware binds for the duration
of a request. Values of fields that name a secret (contract §3) are masked in both.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import MappingProxyType
from typing import IO, Any

from mrs_jobs.domain.render import MASK, is_secret_key

__all__ = [
    "CONTEXT_FIELDS",
    "TEXT_FORMAT",
    "JsonFormatter",
    "TextFormatter",
    "configure_logging",
    "current_log_context",
    "fields_of",
    "log_context",
]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

#: Fields a record may carry through ``extra=`` or the context, copied as they are.
CONTEXT_FIELDS = ("event", "request_id", "project_id", "cluster_id", "job_id")
_RESERVED = frozenset({"time", "level", "logger", "message", "exception", "stack"})
#: What every LogRecord has by itself: anything else on a record came through ``extra=``.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}

_EMPTY: Mapping[str, str] = MappingProxyType({})
_context: ContextVar[Mapping[str, str]] = ContextVar("mrs_jobs_log_context", default=_EMPTY)

_EVENT = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+")


@contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Bind fields (None ones skipped) to every record logged inside the block, in this task."""
    merged = dict(_context.get())
    merged.update({k: v for k, v in fields.items() if v is not None})
    token = _context.set(MappingProxyType(merged))
    try:
        yield
    finally:
        _context.reset(token)


def current_log_context() -> Mapping[str, str]:
    return _context.get()


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a record was given through ``extra=``, secret ones masked."""
    return {
        key: MASK if is_secret_key(key) and value not in (None, "") else value
        for key, value in record.__dict__.items()
        if key not in _STANDARD and not key.startswith("_")
    }


def _with_fields(message: str, fields: Mapping[str, Any]) -> str:
    return " ".join([message, *(f"{k}={v}" for k, v in fields.items())])


class TextFormatter(logging.Formatter):
    """``TEXT_FORMAT`` with the record's fields after its message: ``event key=value ...``."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        fields = fields_of(record)
        if not fields:
            return super().formatMessage(record)
        shown = logging.makeLogRecord(record.__dict__)
        shown.message = _with_fields(record.message, fields)
        return super().formatMessage(shown)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, event, ids and fields."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        fields = fields_of(record)
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": _with_fields(message, fields),
        }
        if _EVENT.fullmatch(message):
            out["event"] = message
        out.update(_context.get())
        # What the record says about itself wins over the request's context.
        out.update({k: v for k, v in fields.items() if k not in _RESERVED})
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure_logging(level: str, fmt: str = "text", stream: IO[str] | None = None) -> None:
    """Root logging for ``serve``: ``fmt`` is ``text`` or ``json``, to stderr by default."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler])
