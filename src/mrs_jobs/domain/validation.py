"""Validation of submitted jobs and list queries (contract §5, §6).

Everything here raises :class:`InvalidParameter` with a message that says which field and why.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from mrs_jobs.domain.jobtypes import JobType
from mrs_jobs.domain.states import JobResult, JobState
from mrs_jobs.errors import InvalidParameter

__all__ = [
    "ListQuery",
    "check_query",
    "query_int",
    "MAX_ARGUMENTS_CHARS",
    "MAX_BATCH_IDS",
    "MAX_NAME_SEARCH_CHARS",
    "MAX_PROPERTIES_CHARS",
    "STATE_SPELLINGS",
    "validate_cluster_id",
    "validate_project_id",
    "validate_submission",
    "job_timeout_seconds",
    "TIMEOUT_PROPERTY",
]

MAX_ARGUMENTS_CHARS = 150_000
MAX_PROPERTIES_CHARS = 2_048
MAX_BATCH_IDS = 1_000

TIMEOUT_PROPERTY = "mrs.job.timeout"  # (ours) seconds a launched job may run before it FAILs

_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_PROJECT_RE = re.compile(r"^[A-Za-z0-9]{1,64}$")
_CLUSTER_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# Control characters other than tab/newline/carriage return are refused; NUL always.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Query integers: plain ASCII digits only (int() would also take "1_0", " 5" or "٣").
_INT_RE = re.compile(r"-?[0-9]+")
_MAX_BIGINT = 2**63 - 1
#: MRS's list reference (and OTC's, and Airflow's MRS sensor) spells the first state ``New``;
#: every other state filter is matched in MRS's upper case exactly, so only this spelling is
#: read as well.
STATE_SPELLINGS = {"New": JobState.NEW.value}
#: (ours) The longest ``job_name_contains``: a job name is at most 64 characters.
MAX_NAME_SEARCH_CHARS = 64


def validate_project_id(value: str) -> str:
    if not _PROJECT_RE.fullmatch(value):
        raise InvalidParameter("project_id must be 1-64 letters or digits.")
    return value


def validate_cluster_id(value: str) -> str:
    if not _CLUSTER_RE.fullmatch(value):
        raise InvalidParameter("cluster_id must be 1-64 of [A-Za-z0-9_-].")
    return value


def _check_text(field: str, value: str) -> None:
    if _CONTROL_RE.search(value):
        raise InvalidParameter(f"{field} must not contain NUL or other control characters.")


# Job types whose arguments name files and URLs the engine opens (SQL types carry SQL text).
_PATH_TYPES = frozenset(
    {JobType.SPARK_SUBMIT, JobType.SPARK_PYTHON, JobType.MAPREDUCE, JobType.DISTCP, JobType.FLINK}
)
_NAME_MAX = 255  # bytes in one path component (Linux NAME_MAX)


def _check_paths(job_type: JobType, arguments: Sequence[str]) -> None:
    """Refuse at submit what no engine could open: a path component over 255 bytes in a path-
    or URL-like argument, and (DistCp, whose every operand is a URL) an unparseable URL."""
    for i, arg in enumerate(arguments):
        if not (arg.startswith("/") or "://" in arg or arg.startswith("file:")):
            continue
        if job_type is JobType.DISTCP and "://" in arg:
            try:
                parts = urlsplit(arg)
                _ = parts.port  # an invalid port raises only when read
            except ValueError as exc:
                raise InvalidParameter(f"arguments[{i}] is not a valid URL: {exc}.") from None
        longest = max((len(c.encode()) for c in arg.split("/")), default=0)
        if longest > _NAME_MAX:
            raise InvalidParameter(
                f"arguments[{i}] has a path component of {longest} bytes; the limit is {_NAME_MAX}."
            )


def validate_submission(
    job_type: str, job_name: str, arguments: Sequence[str], properties: Mapping[str, str]
) -> JobType:
    """Check a submit body's values; returns the parsed job type."""
    try:
        parsed = JobType(job_type)
    except ValueError:
        allowed = ", ".join(t.value for t in JobType)
        raise InvalidParameter(f"job_type must be one of {allowed}; got {job_type!r}.") from None
    if not _NAME_RE.fullmatch(job_name):
        raise InvalidParameter("job_name must be 1-64 characters of [A-Za-z0-9_-].")
    total = 0
    for i, arg in enumerate(arguments):
        _check_text(f"arguments[{i}]", arg)
        total += len(arg)
    if total > MAX_ARGUMENTS_CHARS:
        raise InvalidParameter(
            f"arguments total {total} characters; the limit is {MAX_ARGUMENTS_CHARS}."
        )
    if parsed in _PATH_TYPES:
        _check_paths(parsed, arguments)
    ptotal = 0
    for key, val in properties.items():
        if not key:
            raise InvalidParameter("properties keys must not be empty.")
        _check_text(f"properties key {key!r}", key)
        _check_text(f"properties[{key}]", val)
        ptotal += len(key) + len(val)
    if ptotal > MAX_PROPERTIES_CHARS:
        raise InvalidParameter(
            f"properties total {ptotal} characters; the limit is {MAX_PROPERTIES_CHARS}."
        )
    return parsed


def job_timeout_seconds(properties: Mapping[str, str]) -> int | None:
    raw = properties.get(TIMEOUT_PROPERTY)
    if raw is None:
        return None
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= 30 * 24 * 3600:
        raise InvalidParameter(
            f"properties[{TIMEOUT_PROPERTY}] must be whole seconds from 1 to 2592000."
        )
    return int(raw)


def check_query(params: Mapping[str, str], known: set[str] | frozenset[str]) -> None:
    """InvalidParameter for a query parameter the route does not know or a value holding a
    NUL or another control character."""
    unknown = sorted(set(params) - known)
    if unknown:
        raise InvalidParameter(f"unknown query parameter(s): {', '.join(unknown)}.")
    for name, raw in params.items():
        if _CONTROL_RE.search(raw):
            raise InvalidParameter(f"{name} must not contain NUL or other control characters.")


def query_int(params: Mapping[str, str], name: str, lo: int, hi: int) -> int | None:
    """The integer query parameter ``name`` (None when absent or empty), ASCII digits within
    ``lo``-``hi``: bounded so every value fits the store's 64-bit integers (a 400, never a
    500)."""
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    shown = raw if len(raw) <= 24 else raw[:20] + "..."
    if not _INT_RE.fullmatch(raw):
        raise InvalidParameter(f"{name} must be an integer; got {shown!r}.")
    value = int(raw) if len(raw) <= 20 else hi + 1
    if value < lo or value > hi:
        raise InvalidParameter(f"{name} must be {lo}-{hi}; got {shown}.")
    return value


@dataclass(frozen=True)
class ListQuery:
    """A validated list request (contract §6)."""

    job_name: str | None = None
    #: (ours) a part of the name, any case; matched literally (``%`` and ``_`` are not wildcards)
    job_name_contains: str | None = None
    job_id: str | None = None
    user: str | None = None
    queue: str | None = None
    job_type: str | None = None
    job_state: str | None = None
    job_result: str | None = None
    submitted_time_begin: int | None = None
    submitted_time_end: int | None = None
    limit: int = 10
    page: int = 1
    ascending: bool = False

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> ListQuery:
        known = {
            "job_name",
            "job_name_contains",
            "job_id",
            "user",
            "queue",
            "job_type",
            "job_state",
            "job_result",
            "submitted_time_begin",
            "submitted_time_end",
            "limit",
            "offset",
            "sort_by",
        }
        check_query(params, known)

        def as_int(name: str, lo: int, hi: int) -> int | None:
            return query_int(params, name, lo, hi)

        contains = params.get("job_name_contains") or None
        if contains is not None and len(contains) > MAX_NAME_SEARCH_CHARS:
            raise InvalidParameter(
                f"job_name_contains must be at most {MAX_NAME_SEARCH_CHARS} characters; "
                f"got {len(contains)}."
            )
        job_type = params.get("job_type") or None
        if job_type is not None and job_type not in {t.value for t in JobType}:
            raise InvalidParameter(f"job_type {job_type!r} is not a job type.")
        job_state = params.get("job_state") or None
        job_state = STATE_SPELLINGS.get(job_state or "", job_state)
        if job_state is not None and job_state not in {s.value for s in JobState}:
            raise InvalidParameter(f"job_state {job_state!r} is not a job state.")
        job_result = params.get("job_result") or None
        if job_result is not None and job_result not in {r.value for r in JobResult}:
            raise InvalidParameter(f"job_result {job_result!r} is not a job result.")
        sort_by = (params.get("sort_by") or "desc").lower()
        if sort_by not in ("asc", "desc"):
            raise InvalidParameter(f"sort_by must be asc or desc; got {params['sort_by']!r}.")
        limit = as_int("limit", 1, 1000)
        # (offset - 1) * limit must stay a 64-bit row offset whatever the limit.
        offset = as_int("offset", 0, _MAX_BIGINT // 1000)
        begin = as_int("submitted_time_begin", 0, _MAX_BIGINT)
        end = as_int("submitted_time_end", 0, _MAX_BIGINT)
        if begin is not None and end is not None and begin > end:
            raise InvalidParameter("submitted_time_begin must not be after submitted_time_end.")
        return cls(
            job_name=params.get("job_name") or None,
            job_name_contains=contains,
            job_id=params.get("job_id") or None,
            user=params.get("user") or None,
            queue=params.get("queue") or None,
            job_type=job_type,
            job_state=job_state,
            job_result=job_result,
            submitted_time_begin=begin,
            submitted_time_end=end,
            limit=10 if limit is None else limit,
            page=max(1, offset or 1),
            ascending=sort_by == "asc",
        )
