"""``mrs-jobs usage``: what the cluster's ended jobs used, summed by job type, user or day.

A table over ``GET .../job-usage`` (docs/api.md "Job usage"). Ages (``7d``) go to the service
as they are; ISO dates and times are read here (local time unless they name a zone).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mrs_jobs.cli.common import UsageError, parse_time, with_api

if TYPE_CHECKING:
    from rich.table import Table

    from mrs_jobs.cli.client import ApiClient

__all__ = ["register", "usage", "usage_table"]

_AGE = re.compile(r"\d{1,6}[mhdw]")
_GROUPS = {"job_type": "JOB TYPE", "user": "USER", "day": "DAY (UTC)"}


def register(app: typer.Typer) -> None:
    """Add ``usage`` to the top-level ``mrs-jobs`` app."""
    app.command("usage", rich_help_panel="Jobs (over the HTTP API)")(usage)


def _moment(text: str | None, *, end: bool) -> str | None:
    """What the service reads: an age or epoch ms as given, an ISO date/time as epoch ms
    (a bare date as ``until``: the end of that day)."""
    if text is None or _AGE.fullmatch(text.strip()) or text.strip().isdigit():
        return None if text is None else text.strip()
    ms = parse_time(text, end=end)
    return str(ms + 1 if end and len(text.strip()) == 10 else ms)


def _number(value: Any, digits: int = 1) -> str:
    return "-" if value is None else f"{float(value):,.{digits}f}"


def _cells(row: dict[str, Any]) -> list[str]:
    peak = row.get("peak_memory_mb")
    return [
        str(row.get("group", "")),
        str(row.get("job_count", 0)),
        str(row.get("measured_job_count", 0)),
        _number(row.get("cpu_seconds")),
        "-" if peak is None else f"{peak:,}",
        _number(row.get("memory_mb_seconds"), 0),
    ]


def usage_table(data: dict[str, Any]) -> Table:
    """The roll-up as a table: one row per group, then the total."""
    from rich.table import Table

    from mrs_jobs.cli.output import fmt_time

    since, until = fmt_time(data.get("since")), fmt_time(data.get("until"))
    table = Table(title=f"Jobs ended from {since} to {until}", header_style="bold")
    table.add_column(_GROUPS.get(str(data.get("group_by")), "GROUP"))
    for name in ("JOBS", "MEASURED", "CPU SECONDS", "PEAK MB", "MEMORY MB·S"):
        table.add_column(name, justify="right")
    for row in data.get("groups") or []:
        table.add_row(*_cells(row))
    table.add_section()
    table.add_row(*_cells({**(data.get("total") or {}), "group": "total"}), style="bold")
    return table


@with_api
def usage(
    api: ApiClient,
    since: Annotated[
        str, typer.Option(help="Ended at or after: an age (30m, 12h, 7d, 2w), epoch ms or ISO.")
    ] = "7d",
    until: Annotated[
        str | None, typer.Option(help="Ended before: the same forms (default: now).")
    ] = None,
    by: Annotated[str, typer.Option("--by", help="job_type, user or day.")] = "job_type",
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON.")] = False,
) -> None:
    """What the cluster's ended jobs used (CPU seconds, memory), by job type, user or day."""
    from mrs_jobs.cli.output import console, print_json

    if by not in _GROUPS:
        raise UsageError(f"--by must be one of {', '.join(_GROUPS)}, not {by!r}")
    params = {"since": _moment(since, end=False), "until": _moment(until, end=True)}
    data = api.job_usage({**params, "group_by": by})
    if as_json:
        print_json(data)
    else:
        console().print(usage_table(data))
