"""Service logging: plain text, or one JSON object per line with request and job context.

The code logs ``event key=value ...`` messages (``job.launched job_id=... pid=...``). In JSON
mode :class:`JsonFormatter` turns the leading dotted word into ``event`` and each ``key=value``
into a field, and adds ``request_id`` / ``project_id`` / ``job_id`` from :func:`log_context`,
which the API's request middleware binds for the duration of a request. Values of keys that
name a secret (contract §3) are masked, in the fields and in the message.
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
    "configure_logging",
    "current_log_context",
    "log_context",
    "parse_message",
]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

#: Fields a record may carry through ``extra=`` or the context, copied as they are.
CONTEXT_FIELDS = ("event", "request_id", "project_id", "cluster_id", "job_id")
_RESERVED = frozenset({"time", "level", "logger", "message", "exception", "stack"})

_EMPTY: Mapping[str, str] = MappingProxyType({})
_context: ContextVar[Mapping[str, str]] = ContextVar("mrs_jobs_log_context", default=_EMPTY)

_EVENT = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+")
_KEY = re.compile(r"(?:(?<=\s)|^)([A-Za-z_][A-Za-z0-9_.]*)=")
_OPEN, _CLOSE = "([{", ")]}"


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


def _depths(text: str) -> list[int]:
    """Bracket nesting depth at each position, so ``status=Exit(code=0, signal=None)`` is
    one value and not three keys."""
    out, depth = [], 0
    for ch in text:
        if ch in _CLOSE:
            depth = max(0, depth - 1)
        out.append(depth)
        if ch in _OPEN:
            depth += 1
    return out


def parse_message(message: str) -> tuple[str | None, dict[str, str]]:
    """Split ``"job.launched job_id=abc pid=12"`` into its event and its key=value fields.

    A value runs to the next top-level `` key=`` (so a last ``reason=`` may contain spaces).
    """
    first = message.split(None, 1)[0] if message.strip() else ""
    event = first if "=" not in first and _EVENT.fullmatch(first) else None
    depth = _depths(message)
    keys = [m for m in _KEY.finditer(message) if depth[m.start()] == 0]
    fields: dict[str, str] = {}
    for i, m in enumerate(keys):
        end = keys[i + 1].start() if i + 1 < len(keys) else len(message)
        fields[m.group(1)] = message[m.end() : end].rstrip()
    return event, fields


def _mask(message: str, fields: dict[str, str]) -> str:
    for key, value in fields.items():
        if is_secret_key(key) and value:
            message = message.replace(f"{key}={value}", f"{key}={MASK}")
            fields[key] = MASK
    return message


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, event, ids and fields."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        event, fields = parse_message(message)
        message = _mask(message, fields)
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        if event:
            out["event"] = event
        out.update(_context.get())
        for name in CONTEXT_FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                out[name] = value
        # What the message says about itself wins over the request's context.
        out.update({k: v for k, v in fields.items() if k not in _RESERVED})
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False, default=str)


def configure_logging(level: str, fmt: str = "text", stream: IO[str] | None = None) -> None:
    """Root logging for ``serve``: ``fmt`` is ``text`` or ``json``, to stderr by default."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler])
