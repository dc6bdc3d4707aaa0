"""Delete or kill the jobs a filter selects, through the public API only.

The selection is read first, whole, through the list API (oldest first, pinned at the newest
matching job when it starts, so jobs submitted meanwhile neither shift the pages nor join
it); only then is anything changed, so a job submitted after the selection is never touched.
Deletes go in batches of at most 1,000 ids; a job that vanished meanwhile (``0176``) is
counted as already gone and the rest of its batch is sent again. Kills go one by one; a job
that ended meanwhile (``0175``) is counted as already ended, not as an error. Imported only
when such a command runs (it loads Rich).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from mrs_jobs.cli.client import ApiError, TransportError
from mrs_jobs.cli.common import EXIT_ERROR, EXIT_OK, EXIT_USAGE, describe, fail, stdin_is_tty
from mrs_jobs.cli.filters import LIVE_STATES, Filters
from mrs_jobs.cli.output import console, job_table

if TYPE_CHECKING:
    from mrs_jobs.cli.client import ApiClient

__all__ = ["BATCH", "PAGE", "Tally", "delete_by_filter", "kill_by_filter", "select_jobs"]

PAGE = 1000  # the list API's largest page
BATCH = 1000  # batch delete's most ids
SAMPLE_ROWS = 5
_RETRIES = 5  # a 429 (rate limit) or 503 (store busy) is waited out this many times
T = TypeVar("T")


def _call(request: Callable[[], T]) -> T:
    """One request; a rate limit or a briefly unavailable store is waited out."""
    for attempt in range(_RETRIES):
        try:
            return request()
        except ApiError as exc:
            if exc.status not in (429, 503) or attempt == _RETRIES - 1:
                raise
            time.sleep(min(2.0**attempt, 5.0))
    raise AssertionError("unreachable")


def select_jobs(api: ApiClient, filters: Filters) -> dict[str, dict[str, Any]]:
    """Every job the filters select, by id, as the list API shows it (read before any change)."""
    chosen: dict[str, dict[str, Any]] = {}
    for query in filters.queries():
        _select_one(api, query, chosen)
    return chosen


def _select_one(api: ApiClient, query: dict[str, str], chosen: dict[str, dict[str, Any]]) -> None:
    first = _call(partial(api.list, {**query, "limit": 1}))  # newest first
    newest = first.get("job_list") or []
    if not newest:
        return
    # Pinned at the newest match (the service's clock): later submits are outside the window,
    # and oldest-first pages do not move when one arrives.
    pinned = {
        **query,
        "submitted_time_end": str(newest[0]["submitted_time"]),
        "sort_by": "asc",
        "limit": PAGE,
    }
    page = 1
    while True:
        data = _call(partial(api.list, {**pinned, "offset": page}))
        rows = data.get("job_list") or []
        for row in rows:
            chosen.setdefault(str(row["job_id"]), row)
        if len(rows) < PAGE:
            return
        page += 1


@dataclass
class Tally:
    """What became of each selected job."""

    done: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)  # deleted by someone else meanwhile
    ended: list[str] = field(default_factory=list)  # kill: it ended on its own meanwhile
    failed: dict[str, list[str]] = field(default_factory=dict)  # reason -> ids

    def fail(self, reason: str, ids: list[str]) -> None:
        self.failed.setdefault(reason, []).extend(ids)

    @property
    def failed_count(self) -> int:
        return sum(len(ids) for ids in self.failed.values())

    def report(self, total: int, done: str) -> None:
        """The summary line on stdout; failures and, after Ctrl-C, what is unknown on stderr."""
        typer.echo(f"{done}; {self.failed_count} failed.")
        for reason, ids in self.failed.items():
            shown = ", ".join(ids[:3]) + (", ..." if len(ids) > 3 else "")
            typer.echo(f"Failed: {len(ids)} job(s) ({shown}): {reason}", err=True)
        untried = total - len(self.done) - len(self.gone) - len(self.ended) - self.failed_count
        if untried > 0:
            typer.echo(f"Interrupted: {untried} job(s) not done or not confirmed.", err=True)


def _announce(jobs: dict[str, dict[str, Any]], filters: Filters, live_note: str) -> None:
    """The count, how many are live, and a few rows."""
    out = console()
    rows = list(jobs.values())
    live = sum(1 for row in rows if row.get("job_state") in LIVE_STATES)
    note = f" ({live} live{live_note})" if live else ""
    out.print(f"{len(rows)} job(s) match {filters.describe()}{note}.", highlight=False)
    out.print(job_table(rows[:SAMPLE_ROWS], out.width))
    if len(rows) > SAMPLE_ROWS:
        out.print(f"... and {len(rows) - SAMPLE_ROWS} more", style="dim", highlight=False)


def _confirm(question: str, verb: str, nothing: str) -> None:
    """Ask on a terminal; without one, refuse (``--yes`` skips this)."""
    if not stdin_is_tty():
        raise fail(f"Error: refusing to {verb} without confirmation: pass --yes.", EXIT_USAGE)
    if not typer.confirm(question, default=False, err=True):
        raise fail(nothing, EXIT_USAGE)


@contextmanager
def _progress(label: str, total: int) -> Iterator[Callable[[int], None]]:
    """A Rich progress bar on stderr; left on screen (or written once, when not a terminal)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console(stderr=True),
    )
    with progress:
        task = progress.add_task(label, total=total)
        yield lambda n: progress.advance(task, n)


def _missing(message: str, asked: list[str]) -> set[str]:
    """The ids a ``0176`` names ("The job does not exist: a, b"), of those asked."""
    _, _, names = message.partition(":")
    return {name.strip() for name in names.split(",")} & set(asked)


def _delete_batch(api: ApiClient, batch: list[str], tally: Tally) -> bool:
    """Delete one batch (all or nothing on the server); False when the service is gone."""
    remaining = list(batch)
    while remaining:
        try:
            _call(partial(api.batch_delete, remaining))
        except ApiError as exc:
            gone = _missing(exc.message, remaining) if exc.code == "0176" else set()
            if not gone:
                tally.fail(describe(exc), remaining)
                return True
            tally.gone.extend(i for i in remaining if i in gone)
            remaining = [i for i in remaining if i not in gone]
            continue
        except TransportError as exc:
            tally.fail(f"Error: {exc}", remaining)
            return False
        tally.done.extend(remaining)
        return True
    return True


def delete_by_filter(api: ApiClient, filters: Filters, *, yes: bool, dry_run: bool) -> int:
    """Select, show, ask, delete in batches; the exit code (1 if any batch failed)."""
    jobs = select_jobs(api, filters)
    if not jobs:
        typer.echo(f"No jobs match {filters.describe()}; nothing to delete.")
        return EXIT_OK
    _announce(jobs, filters, ", killed first")
    if dry_run:
        typer.echo(f"Dry run: would delete {len(jobs)} job(s); nothing changed.")
        return EXIT_OK
    if not yes:
        _confirm(f"Delete these {len(jobs)} job(s)?", "delete", "Nothing deleted.")
    ids, tally = list(jobs), Tally()
    try:
        with _progress("Deleting", len(ids)) as advance:
            for start in range(0, len(ids), BATCH):
                batch = ids[start : start + BATCH]
                if not _delete_batch(api, batch, tally):
                    tally.fail("not tried: the service could not be reached", ids[start + BATCH :])
                    break
                advance(len(batch))
    finally:  # also after Ctrl-C: what was done so far
        tally.report(len(ids), f"Deleted {len(tally.done)} job(s); {len(tally.gone)} already gone")
    return EXIT_ERROR if tally.failed else EXIT_OK


def _kill_one(api: ApiClient, job_id: str, tally: Tally) -> bool:
    """Ask for one kill; False when the service is gone."""
    try:
        _call(partial(api.kill, job_id))
    except ApiError as exc:
        if exc.code == "0175":
            tally.ended.append(job_id)
        elif exc.code == "0176":
            tally.gone.append(job_id)
        else:
            tally.fail(describe(exc), [job_id])
        return True
    except TransportError as exc:
        tally.fail(f"Error: {exc}", [job_id])
        return False
    tally.done.append(job_id)
    return True


def kill_by_filter(
    api: ApiClient, filters: Filters, *, yes: bool, dry_run: bool
) -> tuple[int, list[str]]:
    """Select live jobs, show, ask, kill each; the exit code and the ids a kill was asked for."""
    jobs = select_jobs(api, filters)
    if not jobs:
        typer.echo(f"No live jobs match {filters.describe()}; nothing to kill.")
        return EXIT_OK, []
    _announce(jobs, filters, "")
    if dry_run:
        typer.echo(f"Dry run: would kill {len(jobs)} job(s); nothing changed.")
        return EXIT_OK, []
    if not yes:
        _confirm(f"Kill these {len(jobs)} job(s)?", "kill", "Nothing killed.")
    ids, tally = list(jobs), Tally()
    try:
        with _progress("Killing", len(ids)) as advance:
            for index, job_id in enumerate(ids):
                if not _kill_one(api, job_id, tally):
                    tally.fail("not tried: the service could not be reached", ids[index + 1 :])
                    break
                advance(1)
    finally:  # also after Ctrl-C: what was done so far
        tally.report(
            len(ids),
            f"Kill requested for {len(tally.done)} job(s); {len(tally.ended)} already ended; "
            f"{len(tally.gone)} already gone",
        )
    return (EXIT_ERROR if tally.failed else EXIT_OK), tally.done
