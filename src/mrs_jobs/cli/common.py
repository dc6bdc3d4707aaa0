"""Plumbing shared by the client commands: connection options, errors, exit codes, parsing.

Nothing heavy is imported at module level: the HTTP client and Rich are loaded when a
command runs, so ``mrs-jobs --help`` stays instant.
"""

from __future__ import annotations

import functools
import inspect
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

if TYPE_CHECKING:
    from mrs_jobs.cli.client import ApiError

__all__ = [
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_JOB_FAILED",
    "EXIT_JOB_KILLED",
    "EXIT_OK",
    "EXIT_SIGPIPE",
    "EXIT_TIMEOUT",
    "EXIT_USAGE",
    "JOB_TYPES",
    "UsageError",
    "describe",
    "fail",
    "normalize_job_type",
    "parse_property",
    "parse_time",
    "stdin_is_tty",
    "with_api",
]

EXIT_OK = 0
EXIT_ERROR = 1  # an MRS error answer, or the service could not be reached
EXIT_USAGE = 2  # bad options, incomplete connection, refused confirmation (as click's own)
EXIT_JOB_FAILED = 3  # after --wait / wait: the job ended FAILED
EXIT_JOB_KILLED = 4  # after --wait / wait: the job ended KILLED
EXIT_TIMEOUT = 124  # wait --timeout ran out (as timeout(1))
EXIT_INTERRUPTED = 130  # Ctrl-C
EXIT_SIGPIPE = 141  # the reader of our output went away (as a shell reports SIGPIPE)

JOB_TYPES = (
    "MapReduce",
    "SparkSubmit",
    "HiveScript",
    "HiveSql",
    "DistCp",
    "SparkScript",
    "SparkSql",
    "Flink",
    "SparkPython",
)
_PANEL = "Connection"


class UsageError(Exception):
    """A problem with what the user typed; exit 2."""


def fail(message: str, code: int = EXIT_ERROR) -> typer.Exit:
    """Print ``message`` on stderr and return the exit to raise."""
    typer.echo(message, err=True)
    return typer.Exit(code)


def describe(exc: ApiError) -> str:
    """``Error <code>: <message> (HTTP <status>, request id <id>)``, the stderr line."""
    detail = f"HTTP {exc.status}" + (f", request id {exc.request_id}" if exc.request_id else "")
    return f"Error {exc.code}: {exc.message} ({detail})"


@contextmanager
def _errors() -> Iterator[None]:
    """Turn every expected failure into one stderr line and a script-friendly exit code."""
    from mrs_jobs.cli.client import ApiError, TransportError
    from mrs_jobs.cli.connection import ConfigError

    try:
        yield
    except ApiError as exc:
        raise fail(describe(exc)) from None
    except TransportError as exc:
        raise fail(f"Error: {exc}") from None
    except ConfigError as exc:
        raise fail(f"Error: {exc}", EXIT_USAGE) from None
    except UsageError as exc:
        raise fail(f"Error: {exc}", EXIT_USAGE) from None
    except KeyboardInterrupt:
        raise fail("Interrupted.", EXIT_INTERRUPTED) from None
    except BrokenPipeError:
        # `mrs-jobs logs ID | head`: the reader left; stop quietly, as shell tools do.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise typer.Exit(EXIT_SIGPIPE) from None


_CONNECTION_OPTIONS = [
    ("endpoint", "--endpoint", "Service URL, e.g. http://127.0.0.1:8080 (env MRS_JOBS_ENDPOINT)."),
    ("project_id", "--project", "Project id (env MRS_JOBS_PROJECT_ID)."),
    ("cluster_id", "--cluster", "Cluster id (env MRS_JOBS_CLUSTER_ID)."),
    ("ak", "--ak", "Access key (env MRS_JOBS_AK)."),
    ("sk", "--sk", "Secret key (env MRS_JOBS_SK)."),
    ("token", "--token", "X-Auth-Token instead of AK/SK (env MRS_JOBS_TOKEN)."),
    (
        "profile",
        "--profile",
        "Profile (table) in ~/.config/mrs-jobs/profiles.toml; default: `default` "
        "(env MRS_JOBS_PROFILE).",
    ),
]

F = TypeVar("F", bound=Callable[..., Any])


def with_api(func: F) -> F:
    """Give a command the connection options and call it with a ready ``api`` client.

    The command declares ``api`` as its first parameter; the wrapper shows Typer the
    command's other parameters plus the connection options, resolves the connection
    (flags > environment > profile > bootstrap.json), and maps errors to exit codes.
    """
    # ``api``'s annotation names a class imported only for type checkers: evaluate the rest.
    signature = inspect.signature(func)
    own = [
        p.replace(annotation=_evaluate(p.annotation, func.__globals__))
        for name, p in signature.parameters.items()
        if name != "api"
    ]
    extra = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[
                str | None,
                typer.Option(flag, help=text, rich_help_panel=_PANEL, show_default=False),
            ],
        )
        for name, flag, text in _CONNECTION_OPTIONS
    ]

    @functools.wraps(func)
    def wrapper(**kwargs: Any) -> Any:
        flags = {name: kwargs.pop(name) for name, _, _ in _CONNECTION_OPTIONS}
        profile = flags.pop("profile")
        with _errors():
            from mrs_jobs.cli.client import ApiClient
            from mrs_jobs.cli.connection import resolve

            conn = resolve(flags, profile=profile)
            with ApiClient(conn) as api:
                return func(api, **kwargs)

    params = own + extra
    wrapper.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper  # type: ignore[return-value]


def _evaluate(annotation: Any, namespace: dict[str, Any]) -> Any:
    if isinstance(annotation, str):
        return eval(annotation, namespace)  # noqa: S307 - our own annotations, as inspect does
    return annotation


def normalize_job_type(value: str) -> str:
    """Accept any case (``sparksubmit``); unknown names go to the server, which explains."""
    for name in JOB_TYPES:
        if name.lower() == value.lower():
            return name
    return value


def parse_property(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"--property wants KEY=VALUE, got {text!r}")
    return key.strip(), value


_AGO = re.compile(r"(\d+)([smhdw])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(text: str, *, end: bool = False, now: datetime | None = None) -> int:
    """Epoch milliseconds from ``1735732800000``, an ISO date/datetime, or ``2h`` (ago).

    A datetime without a zone is local time. A bare date is the start of that day, or its
    last millisecond when ``end`` (so ``--until 2025-01-31`` includes the 31st).
    """
    text = text.strip()
    if text.isdigit():
        return int(text)
    match = _AGO.fullmatch(text)
    if match:
        delta = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        return int(((now or datetime.now().astimezone()) - delta).timestamp() * 1000)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"cannot read time {text!r}: give epoch milliseconds, an ISO date or datetime "
            "(2025-01-31, 2025-01-31T08:00, ...+02:00) or an age like 30m, 2h, 7d"
        ) from None
    if end and len(text) == 10:  # a bare date
        moment = datetime.combine(moment.date(), time.max)
    if moment.tzinfo is None:
        moment = moment.astimezone()  # local time
    return int(moment.timestamp() * 1000)


def stdin_is_tty() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False
