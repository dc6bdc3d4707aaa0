"""Polling a job: ``wait`` (with a progress bar) and ``logs -f`` (imported only by commands)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO, Any, TypeVar

from mrs_jobs.cli.client import ApiClient, ApiError, TransportError
from mrs_jobs.cli.common import EXIT_JOB_FAILED, EXIT_JOB_KILLED, EXIT_OK

__all__ = ["TERMINAL", "WaitTimeout", "exit_code_for", "follow_log", "wait_for_job"]

TERMINAL = frozenset({"FINISHED", "FAILED", "KILLED"})
LOG_CHUNK = 1024 * 1024  # the API's largest limit
RIDE_OUT_SECONDS = 60.0  # how long a wait survives an unreachable (restarting) service
STILL_EVERY_S = 30.0  # a line at least this often while nothing changes, so a wait looks alive

T = TypeVar("T")


class WaitTimeout(Exception):
    def __init__(self, job: dict[str, Any]) -> None:
        super().__init__("timed out")
        self.job = job


def exit_code_for(job: dict[str, Any]) -> int:
    """0 only for SUCCEEDED; FAILED (also FINISHED with a non-zero exit) 3; KILLED 4."""
    result = job.get("job_result")
    if result == "SUCCEEDED":
        return EXIT_OK
    if result == "KILLED" or job.get("job_state") == "KILLED":
        return EXIT_JOB_KILLED
    return EXIT_JOB_FAILED


def _patient(call: Callable[[], T]) -> T:
    """Retry while the service is unreachable or answers 5xx (a restart), for a while."""
    deadline: float | None = None
    while True:
        try:
            return call()
        except (TransportError, ApiError) as exc:
            if isinstance(exc, ApiError) and exc.status < 500:
                raise
            if deadline is None:
                deadline = time.monotonic() + RIDE_OUT_SECONDS
            elif time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def _show(api: ApiClient, job_id: str) -> dict[str, Any]:
    return dict(_patient(lambda: api.show(job_id))["job_detail"])


def _label(job: dict[str, Any]) -> str:
    state = str(job.get("job_state", "?"))
    result = job.get("job_result")
    if state in TERMINAL and result and result != state:
        state = f"{state} {result}"
    return f"{job.get('job_name', '')} {state}"


def wait_for_job(
    api: ApiClient,
    job_id: str,
    *,
    interval: float = 1.0,
    timeout: float | None = None,
    show: bool = True,
) -> dict[str, Any]:
    """Poll until the job is terminal; a progress bar on a terminal, state lines otherwise."""
    from mrs_jobs.cli.output import console, fmt_duration

    err = console(stderr=True)
    started = time.monotonic()
    if show and err.is_terminal:
        from rich.progress import (
            BarColumn,
            Progress,
            SpinnerColumn,
            TaskProgressColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        columns = (
            SpinnerColumn(),
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=err, transient=False) as bar:
            task = bar.add_task(job_id, total=100)
            while True:
                job = _show(api, job_id)
                done = job.get("job_state") in TERMINAL
                completed = float(job.get("job_progress") or 0)
                if done and job.get("job_result") == "SUCCEEDED":
                    completed = 100.0
                bar.update(task, description=_label(job), completed=completed)
                if done:
                    return job
                _check_timeout(job, started, timeout)
                time.sleep(interval)
    last: tuple[str, int] | None = None
    said = started
    while True:
        job = _show(api, job_id)
        seen = (_label(job), int(float(job.get("job_progress") or 0)) // 10)
        now = time.monotonic()
        if show and (seen != last or now - said >= STILL_EVERY_S):
            elapsed = fmt_duration(int((now - started) * 1000))
            line = f"{job_id}: {seen[0]} {float(job.get('job_progress') or 0):.0f}%"
            err.print(line if seen != last else f"{line} (still, after {elapsed})")
            last, said = seen, now
        if job.get("job_state") in TERMINAL:
            return job
        _check_timeout(job, started, timeout)
        time.sleep(interval)


def _check_timeout(job: dict[str, Any], started: float, timeout: float | None) -> None:
    if timeout is not None and time.monotonic() - started >= timeout:
        raise WaitTimeout(job)


def follow_log(
    api: ApiClient,
    job_id: str,
    kind: str,
    out: IO[bytes],
    *,
    offset: int = 0,
    follow: bool = False,
    interval: float = 1.0,
) -> None:
    """Copy the log to ``out``; with ``follow``, keep going until the job has ended.

    Once the job is seen terminal, one more read drains what it wrote in its last moments.
    """
    ended = waiting_said = False
    while True:
        at = offset
        chunk = _patient(lambda: api.log(job_id, kind, at, LOG_CHUNK))  # noqa: B023 - called now
        if chunk.data:
            out.write(chunk.data)
            out.flush()
        offset = chunk.next_offset
        if chunk.data and offset < chunk.size:
            continue  # more is there already
        if not follow or ended:
            return
        state = _show(api, job_id).get("job_state")
        if state in TERMINAL:
            ended = True
            continue
        if chunk.size == 0 and not waiting_said:  # say why nothing shows, once
            waiting_said = True
            print(f"(the job is {state}; its {kind} is empty so far: waiting)", file=sys.stderr)
        time.sleep(interval)
