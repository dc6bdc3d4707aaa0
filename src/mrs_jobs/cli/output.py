"""Rich rendering of jobs and SQL results; times in local time (imported only by commands)."""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

__all__ = [
    "STATE_STYLES",
    "console",
    "failed_statement",
    "fmt_duration",
    "fmt_time",
    "job_detail",
    "job_table",
    "print_json",
    "sql_result_tables",
]

STATE_STYLES = {
    "NEW": "cyan",
    "NEW_SAVING": "cyan",
    "SUBMITTED": "cyan",
    "ACCEPTED": "blue",
    "RUNNING": "bold blue",
    "FINISHED": "green",
    "FAILED": "bold red",
    "KILLED": "yellow",
    "SUCCEEDED": "green",
    "UNDEFINED": "dim",
}


def console(stderr: bool = False) -> Console:
    """A console for stdout (or stderr); piped output gets wide lines instead of wrapped ids."""
    stream = sys.stderr if stderr else sys.stdout
    width = None
    if not stream.isatty() and not os.environ.get("COLUMNS"):
        width = 200
    return Console(file=stream, width=width, soft_wrap=False)


def print_json(data: Any) -> None:
    """The API's JSON, verbatim and indented, for jq and friends."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def fmt_time(ms: Any) -> str:
    """Epoch ms as local ``YYYY-MM-DD HH:MM:SS``; 0 (not known yet) as ``-``."""
    try:
        value = int(ms)
    except (TypeError, ValueError):
        return str(ms)
    if value <= 0:
        return "-"
    return datetime.fromtimestamp(value / 1000).strftime("%Y-%m-%d %H:%M:%S")


def fmt_duration(ms: Any) -> str:
    try:
        total = int(ms) / 1000
    except (TypeError, ValueError):
        return str(ms)
    if total <= 0:
        return "-"
    if total < 60:
        return f"{total:.1f}s"
    minutes, seconds = divmod(int(total), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {seconds:02d}s" if hours else f"{minutes}m {seconds:02d}s"


def _styled(value: Any) -> Text:
    text = str(value if value is not None else "")
    return Text(text, style=STATE_STYLES.get(text, ""))


def _progress(value: Any) -> str:
    try:
        return f"{float(value):.0f}%"
    except (TypeError, ValueError):
        return str(value)


# The list's columns, and the order in which a narrow terminal drops them (ids never go).
_LIST_COLUMNS = [
    "NAME / ID",
    "USER",
    "TYPE",
    "STATE",
    "RESULT",
    "PROGRESS",
    "SUBMITTED",
    "FINISHED",
]
_DROP_ORDER = ["USER", "FINISHED", "TYPE", "PROGRESS", "RESULT", "SUBMITTED"]


def _job_cells(job: dict[str, Any]) -> dict[str, Text]:
    name = Text(str(job.get("job_name", "")), style="bold")
    name.append("\n" + str(job.get("job_id", "")), style="dim")
    return {
        "NAME / ID": name,
        "USER": Text(str(job.get("user", ""))),
        "TYPE": Text(str(job.get("job_type", ""))),
        "STATE": _styled(job.get("job_state")),
        "RESULT": _styled(job.get("job_result")),
        "PROGRESS": Text(_progress(job.get("job_progress"))),
        "SUBMITTED": Text(fmt_time(job.get("submitted_time"))),
        "FINISHED": Text(fmt_time(job.get("finished_time"))),
    }


def job_table(jobs: list[dict[str, Any]], width: int = 200) -> Table:
    """Name and id first; on a narrow terminal whole columns go rather than cut ids."""
    rows = [_job_cells(job) for job in jobs]
    need = {
        col: max([len(col)] + [max(len(x) for x in r[col].plain.split("\n")) for r in rows])
        for col in _LIST_COLUMNS
    }
    shown = list(_LIST_COLUMNS)
    for col in _DROP_ORDER:
        if sum(need[c] for c in shown) + 2 * (len(shown) - 1) <= width:
            break
        shown.remove(col)
    table = Table(box=None, header_style="bold", pad_edge=False)
    for col in shown:
        table.add_column(col, justify="right" if col == "PROGRESS" else "left", no_wrap=True)
    for cells in rows:
        table.add_row(*(cells[c] for c in shown))
    return table


_DETAIL_FIELDS = [
    ("ID", "job_id"),
    ("Name", "job_name"),
    ("Type", "job_type"),
    ("State", "job_state"),
    ("Result", "job_result"),
    ("Attempt", "attempt"),
    ("Diagnostics", "diagnostics"),
    ("Progress", "job_progress"),
    ("User", "user"),
    ("Queue", "queue"),
    ("Submitted", "submitted_time"),
    ("Started", "started_time"),
    ("Finished", "finished_time"),
    ("Elapsed", "elapsed_time"),
    ("Arguments", "arguments"),
    ("Properties", "properties"),
    ("Launcher id", "launcher_id"),
    ("App id", "app_id"),
    ("Tracking URL", "tracking_url"),
    ("CPU seconds", "cpu_seconds"),
    ("Peak memory MB", "peak_memory_mb"),
]


def job_detail(job: dict[str, Any]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    known = {key for _, key in _DETAIL_FIELDS}
    for label, key in _DETAIL_FIELDS:
        value = job.get(key, "")
        if key.endswith("_time") and key != "elapsed_time":
            cell = Text(fmt_time(value))
        elif key == "elapsed_time":
            cell = Text(fmt_duration(value))
        elif key == "job_progress":
            cell = Text(_progress(value))
        elif key in ("job_state", "job_result"):
            cell = _styled(value)
        elif key == "diagnostics" and value:
            cell = Text(str(value), style="red" if job.get("job_result") != "SUCCEEDED" else "")
        else:
            cell = Text(str(value) if value not in (None, "") else "-")
        table.add_row(label, cell)
    for key, value in job.items():  # fields a newer service may add
        if key not in known:
            table.add_row(Text(key), Text(str(value)))
    return table


def event_table(events: list[dict[str, Any]]) -> Table:
    """A job's history, oldest first."""
    table = Table(box=None, pad_edge=False)
    for name in ("Time", "From", "To", "Reason", "Caused by"):
        table.add_column(name, overflow="fold")
    for event in events:
        table.add_row(
            fmt_time(event.get("event_time")),
            _styled(event.get("from_state") or "-"),
            _styled(event.get("to_state")),
            Text(str(event.get("reason") or "")),
            Text(str(event.get("caused_by") or "")),
        )
    return table


def _statement_key(key: str) -> tuple[int, str]:
    return (int(key), "") if key.isdigit() else (1 << 30, key)


def _failure(rows: list[dict[str, Any]]) -> str | None:
    """The error of a failed statement's record (``[{"result": "failed", "message": ...}]``)."""
    if len(rows) == 1 and isinstance(rows[0], dict) and rows[0].get("result") == "failed":
        if set(rows[0]) <= {"result", "message"}:
            return str(rows[0].get("message") or "")
    return None


def failed_statement(results: dict[str, list[dict[str, Any]]]) -> str | None:
    """The index of the statement that failed (the job stopped there), None if none did."""
    failed = [key for key, rows in results.items() if _failure(rows or []) is not None]
    return min(failed, key=_statement_key) if failed else None


def sql_result_tables(results: dict[str, list[dict[str, Any]]]) -> RenderableType:
    """One titled table per statement; a statement without a result set says so, a failed
    one shows its error."""
    parts: list[RenderableType] = []
    for key in sorted(results, key=_statement_key):
        rows = results[key] or []
        title = f"Statement {key}"
        if rows == [{"result": "succeed"}]:
            parts.append(Text.assemble((title, "bold"), ": succeed (no result set)"))
            continue
        error = _failure(rows)
        if error is not None:
            parts.append(Text.assemble((title, "bold"), ": ", ("failed", "bold red")))
            parts.append(Text(error or "(no message)"))
            continue
        columns: list[str] = []
        for row in rows:
            columns.extend(c for c in row if c not in columns)
        if not columns:
            parts.append(Text.assemble((title, "bold"), ": no rows"))
            continue
        parts.append(Text(title, style="bold"))  # not a table title: that wraps at its width
        table = Table()
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*(_cell(row.get(c)) for c in columns))
        parts.append(table)
        count = len(rows)
        parts.append(Text(f"{count} row{'s' if count != 1 else ''}", style="dim"))
    if not parts:
        parts.append(Text("No statements.", style="dim"))
    return Group(*parts)


def _cell(value: Any) -> Text:
    if value is None:
        return Text("NULL", style="dim italic")
    return Text(str(value))
