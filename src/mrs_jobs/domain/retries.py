"""(ours) Retries of a failed job: the job properties ``mrs.job.retries`` and
``mrs.job.retry.delay``, and the backoff between attempts.

A job runs at most ``1 + retries`` attempts. An attempt that failed with retries left goes back
to the queue (SUBMITTED) and is not claimed before ``delay × 2^(attempt-1)`` seconds have
passed, capped at :data:`MAX_BACKOFF_SECONDS`. Which failures retry is decided in
``domain/outcome.py`` (:func:`~mrs_jobs.domain.outcome.plan_retry`). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mrs_jobs.errors import InvalidParameter

__all__ = [
    "DEFAULT_RETRY_DELAY_SECONDS",
    "MAX_BACKOFF_SECONDS",
    "MAX_RETRIES",
    "MAX_RETRY_DELAY_SECONDS",
    "RETRIES_PROPERTY",
    "RETRY_DELAY_PROPERTY",
    "RetryPolicy",
    "retry_policy",
]

RETRIES_PROPERTY = "mrs.job.retries"  # (ours) attempts after the first, 0-10
RETRY_DELAY_PROPERTY = "mrs.job.retry.delay"  # (ours) seconds before the first retry
MAX_RETRIES = 10
DEFAULT_RETRY_DELAY_SECONDS = 10
MAX_RETRY_DELAY_SECONDS = 3600
#: No wait between two attempts is longer than an hour, however many attempts failed.
MAX_BACKOFF_SECONDS = 3600


@dataclass(frozen=True)
class RetryPolicy:
    """How often a failed job is tried again, and how long it waits first."""

    retries: int = 0
    delay_seconds: int = DEFAULT_RETRY_DELAY_SECONDS

    @property
    def attempts(self) -> int:
        """Attempts in all (the first and its retries)."""
        return 1 + self.retries

    def backoff_seconds(self, failed_attempt: int) -> int:
        """Seconds to wait after attempt ``failed_attempt`` (1-based) failed: the delay doubled
        for each earlier failure, at most :data:`MAX_BACKOFF_SECONDS`."""
        exponent = min(max(failed_attempt, 1) - 1, 20)  # 2^20 × 1 s is past the cap already
        return min(self.delay_seconds * 2**exponent, MAX_BACKOFF_SECONDS)


def _whole(raw: str, key: str, lo: int, hi: int) -> int:
    if not raw.isascii() or not raw.isdigit() or not lo <= int(raw) <= hi:
        raise InvalidParameter(f"properties[{key}] must be whole {_unit(key)} from {lo} to {hi}.")
    return int(raw)


def _unit(key: str) -> str:
    return "seconds" if key == RETRY_DELAY_PROPERTY else "numbers"


def retry_policy(properties: Mapping[str, str]) -> RetryPolicy:
    """The job's retry policy from its properties (none set: no retry). Raises
    :class:`InvalidParameter` for a value out of range, as a submit answers it (400)."""
    retries = properties.get(RETRIES_PROPERTY)
    delay = properties.get(RETRY_DELAY_PROPERTY)
    return RetryPolicy(
        retries=0 if retries is None else _whole(retries, RETRIES_PROPERTY, 0, MAX_RETRIES),
        delay_seconds=(
            DEFAULT_RETRY_DELAY_SECONDS
            if delay is None
            else _whole(delay, RETRY_DELAY_PROPERTY, 0, MAX_RETRY_DELAY_SECONDS)
        ),
    )
