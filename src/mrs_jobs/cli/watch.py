"""Polling a job: ``wait`` (with a progress bar) and ``logs -f`` (imported only by commands)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
    """Wait until the job is terminal: a progress bar on a terminal, state lines otherwise.

    Through the event stream (a long-poll answered when the job changes) where the server has
    it; else by asking for the job every ``interval`` s.
    """
    from mrs_jobs.cli.stream import JobEvents

    stream = JobEvents(api, job_id)
    streaming = _patient(stream.open)
    with _display(job_id, show) as display:
        started = time.monotonic()
        job = _show(api, job_id)
        while True:
            display(job)
            if job.get("job_state") in TERMINAL:
                return job
            _check_timeout(job, started, timeout)
            if not streaming:
                time.sleep(interval)
                job = _show(api, job_id)
                continue
            wait = _wait_for(display, started, timeout, interval)
            job = _next_state(api, stream, job, wait, refresh=display.wants_progress)


def _wait_for(display: Any, started: float, timeout: float | None, interval: float) -> float:
    """How long the next long-poll may wait: shorter on a terminal (its bar shows progress,
    which is not an event) and never past the timeout."""
    from mrs_jobs.cli.stream import LONG_POLL_SECONDS

    wait = float(LONG_POLL_SECONDS)
    if display.wants_progress:
        wait = max(interval, 5.0)
    if timeout is not None:
        wait = min(wait, max(1.0, timeout - (time.monotonic() - started)))
    return wait


def _next_state(
    api: ApiClient, stream: Any, job: dict[str, Any], wait: float, *, refresh: bool
) -> dict[str, Any]:
    """The job after the next long-poll: read again once it ended (its result, elapsed time
    and diagnostics) or, with ``refresh`` (a progress bar), when nothing happened; else its
    new state."""
    events = _patient(lambda: stream.next(wait))
    if not events:
        return _show(api, stream.job_id) if refresh else job
    last = events[-1]
    if last["to_state"] in TERMINAL:
        return _show(api, stream.job_id)
    return {**job, "job_state": last["to_state"]}


class _Lines:
    """State lines on stderr: on each change, and a "still" line while nothing changes."""

    wants_progress = False

    def __init__(self, job_id: str, show: bool) -> None:
        from mrs_jobs.cli.output import console

        self.err = console(stderr=True)
        self.job_id, self.show = job_id, show
        self.started = self.said = time.monotonic()
        self.last: tuple[str, int] | None = None

    def __call__(self, job: dict[str, Any]) -> None:
        from mrs_jobs.cli.output import fmt_duration

        seen = (_label(job), int(float(job.get("job_progress") or 0)) // 10)
        now = time.monotonic()
        if self.show and (seen != self.last or now - self.said >= STILL_EVERY_S):
            elapsed = fmt_duration(int((now - self.started) * 1000))
            line = f"{self.job_id}: {seen[0]} {float(job.get('job_progress') or 0):.0f}%"
            self.err.print(line if seen != self.last else f"{line} (still, after {elapsed})")
            self.last, self.said = seen, now


class _Bar:
    """A progress bar on a terminal (progress is read with the job, not streamed)."""

    wants_progress = True

    def __init__(self, bar: Any, job_id: str) -> None:
        self.bar = bar
        self.task = bar.add_task(job_id, total=100)

    def __call__(self, job: dict[str, Any]) -> None:
        completed = float(job.get("job_progress") or 0)
        if job.get("job_state") in TERMINAL and job.get("job_result") == "SUCCEEDED":
            completed = 100.0
        self.bar.update(self.task, description=_label(job), completed=completed)


@contextmanager
def _display(job_id: str, show: bool) -> Iterator[_Lines | _Bar]:
    from mrs_jobs.cli.output import console

    err = console(stderr=True)
    if not (show and err.is_terminal):
        yield _Lines(job_id, show)
        return
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
        yield _Bar(bar, job_id)


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

    Whether it ended comes from the event stream where the server has it (the wait between
    two reads of the log is a long-poll that answers when the job changes), else from asking
    for the job each time. Once the job is seen terminal, one more read drains what it wrote
    in its last moments.
    """
    stream, state = _open_stream(api, job_id) if follow else (None, None)
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
        if stream is None:
            state = _show(api, job_id).get("job_state")
        if state in TERMINAL:
            ended = True
            continue
        if chunk.size == 0 and not waiting_said:  # say why nothing shows, once
            waiting_said = True
            print(f"(the job is {state}; its {kind} is empty so far: waiting)", file=sys.stderr)
        if stream is None:
            time.sleep(interval)
            continue
        for event in _patient(lambda: stream.next(interval)):  # type: ignore[union-attr]
            state = event["to_state"]


def _open_stream(api: ApiClient, job_id: str) -> tuple[Any, str | None]:
    """The job's event stream and its state now; (None, None) when the server has none."""
    from mrs_jobs.cli.stream import JobEvents

    stream = JobEvents(api, job_id)
    if not _patient(stream.open):
        return None, None
    return stream, _show(api, job_id).get("job_state")
