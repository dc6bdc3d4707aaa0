"""The filters of ``delete`` and ``kill`` by filter, checked before anything is asked of the
service, and turned into list API queries.

``--state`` takes a state or a result, so that ``--state FAILED`` means every job that failed
(MRS ends a failing application FINISHED with the result FAILED; a job that could not run is
FAILED/FAILED): FAILED, KILLED and SUCCEEDED select by ``job_result``; NEW, NEW_SAVING,
SUBMITTED, ACCEPTED, RUNNING and FINISHED by ``job_state``; LIVE is the five live states and
ENDED the three terminal ones. Repeated ``--state`` values add up (OR); other filters AND.
Imports nothing heavy: ``mrs-jobs --help`` loads it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated

import typer

from mrs_jobs.cli.common import JOB_TYPES, UsageError, parse_time

__all__ = [
    "Before",
    "DryRun",
    "Filters",
    "LIVE_STATES",
    "NameContainsFilter",
    "NameFilter",
    "QueueFilter",
    "STATES",
    "Since",
    "StateFilter",
    "TypeFilter",
    "UserFilter",
    "build_filters",
    "parse_before",
]

_PANEL = "Select by filter (instead of ids)"
LIVE_STATES = ("NEW", "NEW_SAVING", "SUBMITTED", "ACCEPTED", "RUNNING")
_BY_STATE = {s: [{"job_state": s}] for s in (*LIVE_STATES, "FINISHED")}
_BY_RESULT = {r: [{"job_result": r}] for r in ("FAILED", "KILLED", "SUCCEEDED")}
STATES: dict[str, list[dict[str, str]]] = {
    **_BY_STATE,
    **_BY_RESULT,
    "LIVE": [{"job_state": s} for s in LIVE_STATES],
    "ENDED": [{"job_state": s} for s in ("FINISHED", "FAILED", "KILLED")],
}
_AGE = re.compile(r"\d+[smhdw]")
_AGE_LIKE = re.compile(r"\d+[A-Za-z]+")
_NAME_CONTAINS_MAX = 64

StateFilter = Annotated[
    list[str] | None,
    typer.Option(
        "--state",
        "-s",
        help="A state, or FAILED / KILLED / SUCCEEDED for every job with that result, or "
        "LIVE / ENDED (repeatable: any of them).",
        rich_help_panel=_PANEL,
        show_default=False,
    ),
]
Before = Annotated[
    str | None,
    typer.Option(
        help="Submitted before this: an age (30s, 15m, 12h, 7d: that long ago), epoch ms or an "
        "ISO date.",
        rich_help_panel=_PANEL,
        show_default=False,
    ),
]
Since = Annotated[
    str | None,
    typer.Option(
        help="Submitted at or after this: an age, epoch ms or an ISO date.",
        rich_help_panel=_PANEL,
        show_default=False,
    ),
]
NameFilter = Annotated[
    str | None,
    typer.Option("--name", help="Exact job name.", rich_help_panel=_PANEL, show_default=False),
]
NameContainsFilter = Annotated[
    str | None,
    typer.Option(
        "--name-contains",
        help="Names holding this text, any case.",
        rich_help_panel=_PANEL,
        show_default=False,
    ),
]
TypeFilter = Annotated[
    str | None,
    typer.Option(
        "--type", "-t", help="Job type (any case).", rich_help_panel=_PANEL, show_default=False
    ),
]
UserFilter = Annotated[
    str | None,
    typer.Option(help="Submitting user.", rich_help_panel=_PANEL, show_default=False),
]
QueueFilter = Annotated[
    str | None, typer.Option(help="Queue.", rich_help_panel=_PANEL, show_default=False)
]
DryRun = Annotated[
    bool,
    typer.Option(
        "--dry-run", help="Show what would be done; change nothing.", rich_help_panel=_PANEL
    ),
]


@dataclass(frozen=True)
class Filters:
    """List API queries: one per ``--state`` alternative, each with the common filters."""

    alternatives: tuple[dict[str, str], ...]
    common: dict[str, str] = field(default_factory=dict)
    words: tuple[str, ...] = ()  # the filters as the user gave them, for messages

    def queries(self) -> list[dict[str, str]]:
        return [{**self.common, **alt} for alt in self.alternatives]

    def describe(self) -> str:
        return ", ".join(self.words)


def parse_before(text: str, now: datetime | None = None) -> int:
    """``--before``: the last millisecond before an age (``7d`` ago) or a moment."""
    return _moment("--before", text, now) - 1


def _moment(option: str, text: str, now: datetime | None) -> int:
    text = text.strip()
    if text.startswith("-"):
        raise UsageError(f"{option} {text!r}: an age or a time cannot be negative")
    if _AGE_LIKE.fullmatch(text) and not _AGE.fullmatch(text):
        raise UsageError(
            f"{option} {text!r}: an age is a whole number and a unit s, m, h, d or w (7d, 12h)"
        )
    try:
        return parse_time(text, now=now)
    except UsageError as exc:
        raise UsageError(f"{option}: {exc}") from None


def _alternatives(states: list[str], kill: bool) -> tuple[dict[str, str], ...]:
    allowed = [*LIVE_STATES, "LIVE"] if kill else list(STATES)
    chosen: list[dict[str, str]] = []
    for raw in states or (["LIVE"] if kill else []):
        value = raw.strip().upper()
        if value not in allowed:
            why = "kill selects only live jobs; " if kill and value in STATES else ""
            raise UsageError(f"--state {raw!r}: {why}one of {', '.join(allowed)}")
        chosen.extend(q for q in STATES[value] if q not in chosen)
    return tuple(chosen) or ({},)


def build_filters(
    *,
    states: list[str] | None,
    before: str | None,
    since: str | None,
    name: str | None,
    name_contains: str | None,
    job_type: str | None,
    user: str | None = None,
    queue: str | None = None,
    kill: bool = False,
    now: datetime | None = None,
) -> Filters | None:
    """The checked filters; None when none was given (then the command wants ids)."""
    given = {
        "state": ",".join(states or []) or None,
        "before": before,
        "since": since,
        "name": name,
        "name-contains": name_contains,
        "type": job_type,
        "user": user,
        "queue": queue,
    }
    words = tuple(f"--{k} {v}" for k, v in given.items() if v not in (None, ""))
    if not words:
        return None
    common: dict[str, str] = {}
    if before:
        common["submitted_time_end"] = str(parse_before(before, now))
    if since:
        common["submitted_time_begin"] = str(_moment("--since", since, now))
    if before and since and int(common["submitted_time_begin"]) > int(common["submitted_time_end"]):
        raise UsageError(f"--since {since!r} is not before --before {before!r}: nothing can match")
    if name:
        common["job_name"] = name
    if name_contains:
        if len(name_contains) > _NAME_CONTAINS_MAX:
            raise UsageError(f"--name-contains takes at most {_NAME_CONTAINS_MAX} characters")
        common["job_name_contains"] = name_contains
    if job_type:
        known = {t.lower(): t for t in JOB_TYPES}
        if job_type.lower() not in known:
            raise UsageError(f"--type {job_type!r}: one of {', '.join(JOB_TYPES)}")
        common["job_type"] = known[job_type.lower()]
    if user:
        common["user"] = user
    if queue:
        common["queue"] = queue
    return Filters(_alternatives(states or [], kill), common, words)
