"""A job-usage roll-up request (``GET .../job-usage``): its window and its grouping.

``since`` and ``until`` are each an epoch time in milliseconds or an age before now: a whole
number and a unit ``m`` (minutes), ``h``, ``d`` or ``w`` (``7d``: seven days ago). The window
is ``[since, until)`` on the jobs' ``finished_time``; by default the last 7 days up to now.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from mrs_jobs.domain.validation import check_query
from mrs_jobs.errors import InvalidParameter

__all__ = ["DEFAULT_SINCE", "GROUPS", "UsageQuery", "moment"]

GROUPS = ("user", "job_type", "day")
DEFAULT_SINCE = "7d"
_KNOWN = frozenset({"since", "until", "group_by"})
_AGE_RE = re.compile(r"(\d{1,6})([mhdw])")
_MS_RE = re.compile(r"\d{1,15}")  # up to year 33658: every value fits a 64-bit integer
_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}


def moment(name: str, raw: str, now_ms: int) -> int:
    """An epoch time in ms from ``raw`` (epoch ms, or an age like ``7d`` before ``now_ms``)."""
    shown = raw if len(raw) <= 24 else raw[:20] + "..."
    if _MS_RE.fullmatch(raw):
        return int(raw)
    age = _AGE_RE.fullmatch(raw)
    if age is None:
        raise InvalidParameter(
            f"{name} must be epoch milliseconds or an age like 30m, 12h, 7d or 2w; got {shown!r}."
        )
    return max(0, now_ms - int(age.group(1)) * _UNIT_MS[age.group(2)])


@dataclass(frozen=True)
class UsageQuery:
    """A validated roll-up request: jobs that ended in ``[since_ms, until_ms)``, by ``group``."""

    since_ms: int
    until_ms: int
    group: str = "job_type"

    @classmethod
    def parse(cls, params: Mapping[str, str], now_ms: int) -> UsageQuery:
        check_query(params, _KNOWN)
        group = params.get("group_by") or "job_type"
        if group not in GROUPS:
            raise InvalidParameter(
                f"group_by must be one of {', '.join(GROUPS)}; got {group[:40]!r}."
            )
        until = moment("until", params.get("until") or str(now_ms), now_ms)
        since = moment("since", params.get("since") or DEFAULT_SINCE, now_ms)
        if since >= until:
            raise InvalidParameter(f"since ({since}) must be before until ({until}).")
        return cls(since, until, group)
