"""The everyday client commands (submit, list, show, kill, delete, logs, wait, sql-result).

They talk to the HTTP API only, so they work against any mrs-jobs (or MRS-compatible)
endpoint. Exit codes: 0 ok; 1 an MRS error or an unreachable service (``Error <code>:
<message>`` on stderr); 2 bad usage or incomplete connection settings; after ``--wait`` /
``wait``: 3 the job FAILED, 4 it was KILLED, 124 ``--timeout`` ran out; 130 Ctrl-C;
``sql-result``: 3 a statement failed.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from mrs_jobs.cli.common import (
    EXIT_ERROR,
    EXIT_JOB_FAILED,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    UsageError,
    describe,
    fail,
    normalize_job_type,
    parse_property,
    parse_time,
    stdin_is_tty,
    with_api,
)
from mrs_jobs.cli.filters import (
    Before,
    DryRun,
    NameContainsFilter,
    NameFilter,
    QueueFilter,
    Since,
    StateFilter,
    TypeFilter,
    UserFilter,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from mrs_jobs.cli.client import ApiClient

__all__ = ["register"]

_PANEL = "Jobs (over the HTTP API)"
_MAX_BATCH = 1000

JsonFlag = Annotated[bool, typer.Option("--json", help="Print the API's JSON as it came.")]
Interval = Annotated[
    float, typer.Option(min=0.05, help="Seconds between polls.", show_default=True)
]
Timeout = Annotated[
    float | None,
    typer.Option(min=0, help="Give up after this many seconds (exit 124); the job keeps running."),
]


def register(app: typer.Typer) -> None:
    """Add the client commands to the top-level ``mrs-jobs`` app."""
    for name, func in [
        ("submit", submit),
        ("list", list_jobs),
        ("show", show),
        ("history", history),
        ("kill", kill),
        ("delete", delete),
        ("logs", logs),
        ("wait", wait),
        ("sql-result", sql_result),
    ]:
        app.command(name, rich_help_panel=_PANEL)(func)


def _wait_and_exit(
    api: ApiClient, job_id: str, *, interval: float, timeout: float | None, quiet: bool
) -> None:
    """Wait for the job, print how it ended, and exit with the code its result maps to."""
    from mrs_jobs.cli.output import fmt_duration
    from mrs_jobs.cli.watch import WaitTimeout, exit_code_for, wait_for_job

    try:
        job = wait_for_job(api, job_id, interval=interval, timeout=timeout, show=not quiet)
    except WaitTimeout as exc:
        state = exc.job.get("job_state")
        raise fail(f"Timed out waiting for job {job_id} (still {state}).", EXIT_TIMEOUT) from None
    code = exit_code_for(job)
    if not quiet:
        typer.echo(
            f"{job_id} {job.get('job_state')} {job.get('job_result')} "
            f"(elapsed {fmt_duration(job.get('elapsed_time'))})"
        )
        if code and job.get("diagnostics"):
            typer.echo(f"Diagnostics: {job['diagnostics']}", err=True)
    raise typer.Exit(code)


@with_api
def submit(
    api: ApiClient,
    job_type: Annotated[
        str, typer.Option("--type", "-t", help="SparkSubmit, SparkSql, Flink, ... (any case).")
    ],
    name: Annotated[str, typer.Option("--name", "-n", help="Job name (1-64 of A-Za-z0-9_-).")],
    arguments: Annotated[
        list[str] | None,
        typer.Argument(
            help="Job arguments, verbatim (put them after `--`), after any --arg values.",
            show_default=False,
        ),
    ] = None,
    arg: Annotated[
        list[str] | None,
        typer.Option("--arg", "-a", help="One argument (repeatable), before the positional ones."),
    ] = None,
    prop: Annotated[
        list[str] | None,
        typer.Option("--property", "-p", help="KEY=VALUE job property (repeatable)."),
    ] = None,
    wait_: Annotated[
        bool,
        typer.Option("--wait", "-w", help="Wait for the end; exit 0 only if SUCCEEDED."),
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only the job id (no progress).")
    ] = False,
    interval: Interval = 1.0,
    timeout: Timeout = None,
) -> None:
    """Submit a job and print its id.

    Example: mrs-jobs submit --type SparkSubmit --name pi -- /tmp/pi.py 10
    """
    properties = dict(parse_property(p) for p in prop or [])
    args = [*(arg or []), *(arguments or [])]
    job_id = api.submit(normalize_job_type(job_type), name, args, properties)
    typer.echo(job_id if quiet else f"Submitted job {job_id}")
    if wait_:
        _wait_and_exit(api, job_id, interval=interval, timeout=timeout, quiet=quiet)


@with_api
def list_jobs(
    api: ApiClient,
    name: Annotated[str | None, typer.Option("--name", help="Exact job name.")] = None,
    name_contains: Annotated[
        str | None, typer.Option("--name-contains", help="Names holding this text, any case.")
    ] = None,
    job_id: Annotated[str | None, typer.Option("--id", help="Job id.")] = None,
    user: Annotated[str | None, typer.Option(help="Submitting user.")] = None,
    queue: Annotated[str | None, typer.Option(help="Queue.")] = None,
    job_type: Annotated[str | None, typer.Option("--type", "-t", help="Job type.")] = None,
    state: Annotated[
        str | None, typer.Option("--state", "-s", help="SUBMITTED, RUNNING, FINISHED, ...")
    ] = None,
    result: Annotated[
        str | None, typer.Option(help="UNDEFINED, SUCCEEDED, FAILED or KILLED.")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="Submitted at or after: epoch ms, ISO date/datetime, or 2h / 7d ago."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(help="Submitted at or before (a bare date includes the whole day)."),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, max=1000, help="Page size (10).")] = None,
    page: Annotated[int | None, typer.Option(min=1, help="1-based page number.")] = None,
    asc: Annotated[bool, typer.Option("--asc", help="Oldest first (default newest).")] = False,
    as_json: JsonFlag = False,
) -> None:
    """List jobs, newest first, with every filter of the API."""
    params: dict[str, Any] = {
        "job_name": name,
        "job_name_contains": name_contains,
        "job_id": job_id,
        "user": user,
        "queue": queue,
        "job_type": normalize_job_type(job_type) if job_type else None,
        "job_state": state.upper() if state else None,
        "job_result": result.upper() if result else None,
        "submitted_time_begin": parse_time(since) if since else None,
        "submitted_time_end": parse_time(until, end=True) if until else None,
        "limit": limit,
        "offset": page,
        "sort_by": "asc" if asc else None,
    }
    data = api.list(params)
    if as_json:
        from mrs_jobs.cli.output import print_json

        print_json(data)
        return
    from mrs_jobs.cli.output import console, job_table

    out = console()
    jobs = data.get("job_list") or []
    total = int(data.get("total_record") or 0)
    if jobs:
        out.print(job_table(jobs, out.width))
    size, number = limit or 10, page or 1
    first = (number - 1) * size + 1
    if not jobs:
        out.print("No jobs." if total == 0 else f"No jobs on page {number} ({total} in all).")
    else:
        pages = -(-total // size)
        out.print(
            f"{first}-{first + len(jobs) - 1} of {total} jobs (page {number} of {pages})",
            style="dim",
            highlight=False,
        )


@with_api
def show(
    api: ApiClient,
    job_id: Annotated[str, typer.Argument(help="Job id.", show_default=False)],
    as_json: JsonFlag = False,
) -> None:
    """Show one job."""
    from mrs_jobs.cli.output import job_detail

    _print(api.show(job_id), as_json, lambda data: job_detail(data.get("job_detail") or {}))


@with_api
def history(
    api: ApiClient,
    job_id: Annotated[str, typer.Argument(help="Job id.", show_default=False)],
    as_json: JsonFlag = False,
) -> None:
    """Show every state change of a job: when, from what to what, why, and who caused it."""
    from mrs_jobs.cli.output import event_table

    _print(api.events(job_id), as_json, lambda data: event_table(data.get("job_events") or []))


def _print(data: dict[str, Any], as_json: bool, render: Callable[[dict[str, Any]], Any]) -> None:
    """The API's answer as JSON, or rendered for a person."""
    from mrs_jobs.cli.output import console, print_json

    if as_json:
        print_json(data)
    else:
        console().print(render(data))


@with_api
def kill(
    api: ApiClient,
    job_ids: Annotated[
        list[str] | None,
        typer.Argument(help="Job ids (or select live jobs by filter).", show_default=False),
    ] = None,
    wait_: Annotated[
        bool, typer.Option("--wait", "-w", help="Wait until the jobs have really ended.")
    ] = False,
    interval: Interval = 1.0,
    state: StateFilter = None,
    before: Before = None,
    since: Since = None,
    name: NameFilter = None,
    name_contains: NameContainsFilter = None,
    job_type: TypeFilter = None,
    user: UserFilter = None,
    queue: QueueFilter = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="By filter: do not ask for confirmation.")
    ] = False,
    dry_run: DryRun = False,
) -> None:
    """Kill live jobs (asynchronous: they reach KILLED once their processes are gone).

    By filter (no ids): the live jobs it selects (--state: a live state or LIVE, the default),
    after a look at them and a confirmation. Example: mrs-jobs kill --state RUNNING --before 2h
    """
    from mrs_jobs.cli.filters import build_filters

    filters = build_filters(
        states=state,
        before=before,
        since=since,
        name=name,
        name_contains=name_contains,
        job_type=job_type,
        user=user,
        queue=queue,
        kill=True,
    )
    _ids_or_filters(job_ids, filters, dry_run)
    if filters is not None:
        from mrs_jobs.cli.cleanup import kill_by_filter

        code, killed = kill_by_filter(api, filters, yes=yes, dry_run=dry_run)
    else:
        code, killed = _kill_ids(api, job_ids or [])
    if wait_:
        from mrs_jobs.cli.watch import wait_for_job

        for job_id in killed:
            job = wait_for_job(api, job_id, interval=interval, show=False)
            typer.echo(f"{job_id} {job.get('job_state')} {job.get('job_result')}")
    raise typer.Exit(code)


def _ids_or_filters(job_ids: list[str] | None, filters: Any, dry_run: bool) -> None:
    """Ids and filters are two ways to choose; one of them, not both."""
    if job_ids and filters is not None:
        raise UsageError(f"give job ids or filters ({filters.describe()}), not both")
    if not job_ids and filters is None:
        raise UsageError("no job ids given (or filters such as --state FAILED --before 7d)")
    if dry_run and filters is None:
        raise UsageError("--dry-run goes with filters")


def _kill_ids(api: ApiClient, job_ids: list[str]) -> tuple[int, list[str]]:
    from mrs_jobs.cli.client import ApiError

    code = EXIT_OK
    killed = []
    for job_id in job_ids:
        try:
            api.kill(job_id)
        except ApiError as exc:
            typer.echo(describe(exc), err=True)
            code = EXIT_ERROR
            continue
        killed.append(job_id)
        typer.echo(f"Kill requested for job {job_id}")
    return code, killed


@with_api
def delete(
    api: ApiClient,
    job_ids: Annotated[
        list[str] | None,
        typer.Argument(
            help="Job ids (up to 1000); `-` reads them from stdin (needs --yes). Or filters.",
            show_default=False,
        ),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    state: StateFilter = None,
    before: Before = None,
    since: Since = None,
    name: NameFilter = None,
    name_contains: NameContainsFilter = None,
    job_type: TypeFilter = None,
    user: UserFilter = None,
    queue: QueueFilter = None,
    dry_run: DryRun = False,
) -> None:
    """Delete jobs in one all-or-nothing batch; live ones are killed first.

    By filter (no ids): every job it selects, read first through the list API, shown, then
    deleted in batches of 1,000 after a confirmation. Example: mrs-jobs delete --state FAILED
    --before 7d
    """
    from mrs_jobs.cli.filters import build_filters

    filters = build_filters(
        states=state,
        before=before,
        since=since,
        name=name,
        name_contains=name_contains,
        job_type=job_type,
        user=user,
        queue=queue,
    )
    _ids_or_filters(job_ids, filters, dry_run)
    if filters is not None:
        from mrs_jobs.cli.cleanup import delete_by_filter

        raise typer.Exit(delete_by_filter(api, filters, yes=yes, dry_run=dry_run))
    _delete_ids(api, job_ids or [], yes)


def _delete_ids(api: ApiClient, job_ids: list[str], yes: bool) -> None:
    """One all-or-nothing batch of the ids given (or read from stdin)."""
    if job_ids == ["-"]:
        job_ids = sys.stdin.read().split()
    ids = list(dict.fromkeys(job_ids))  # the API counts repeats once; so does the prompt
    if not ids:
        raise UsageError("no job ids given")
    if len(ids) > _MAX_BATCH:
        raise UsageError(f"{len(ids)} ids: one batch takes at most {_MAX_BATCH}; split the list")
    if not yes:
        if not stdin_is_tty():
            raise fail("Error: refusing to delete without confirmation: pass --yes.", EXIT_USAGE)
        typer.echo(f"About to delete {len(ids)} job(s) (live ones are killed first):", err=True)
        for job_id in ids:
            typer.echo(f"  {job_id}", err=True)
        if not typer.confirm("Delete them?", default=False, err=True):
            raise fail("Nothing deleted.", EXIT_USAGE)
    api.batch_delete(ids)
    typer.echo(f"Deleted {len(ids)} job(s).")


@with_api
def logs(
    api: ApiClient,
    job_id: Annotated[str, typer.Argument(help="Job id.", show_default=False)],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing until the job has ended.")
    ] = False,
    kind: Annotated[
        str, typer.Option("--type", "-t", help="stdout or stderr (Spark logs to stderr).")
    ] = "stdout",
    tail: Annotated[
        int | None, typer.Option(min=1, help="Start this many bytes before the end.")
    ] = None,
    interval: Interval = 1.0,
) -> None:
    """Print a job's stdout (or stderr) log; -f follows it while the job runs."""
    from mrs_jobs.cli.watch import follow_log

    if kind not in ("stdout", "stderr"):
        raise UsageError("--type must be stdout or stderr")
    offset = -tail if tail else 0
    follow_log(
        api, job_id, kind, sys.stdout.buffer, offset=offset, follow=follow, interval=interval
    )


@with_api
def wait(
    api: ApiClient,
    job_id: Annotated[str, typer.Argument(help="Job id.", show_default=False)],
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress, no output.")] = False,
    interval: Interval = 1.0,
    timeout: Timeout = None,
) -> None:
    """Wait for a job to end; exit 0 if it SUCCEEDED, 3 if it FAILED, 4 if KILLED."""
    _wait_and_exit(api, job_id, interval=interval, timeout=timeout, quiet=quiet)


@with_api
def sql_result(
    api: ApiClient,
    job_id: Annotated[str, typer.Argument(help="Job id of a finished SQL job.")],
    as_json: JsonFlag = False,
) -> None:
    """Print the rows of each statement of a SparkSql/SparkScript/HiveSql/HiveScript job.

    A statement that failed is shown with its error; then the exit code is 3."""
    from mrs_jobs.cli.output import console, failed_statement, print_json, sql_result_tables

    data = api.sql_result(job_id)
    results = data.get("sql_results") or {}
    if as_json:
        print_json(data)
    else:
        console().print(sql_result_tables(results))
    failed = failed_statement(results)
    if failed is not None:
        raise fail(f"Error: statement {failed} failed.", EXIT_JOB_FAILED)
