"""``mrs-jobs admin purge``: remove ended jobs by filter, server-side, for operators.

Shows how many jobs match and the oldest few, asks (or ``--yes``), then marks them deleted in
chunks (``services/admin_purge.py``); the running service's supervisor removes their records
and files. Only ended jobs are ever taken: kill live ones first (``mrs-jobs kill``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from mrs_jobs.cli.admin_common import admin_store, fail, when

if TYPE_CHECKING:
    from mrs_jobs.services.admin_purge import PurgePlan

__all__ = ["purge", "register"]


def register(app: typer.Typer) -> None:
    """Add ``purge`` to the ``admin`` group."""
    app.command("purge")(purge)


def purge(
    cluster: str = typer.Option(None, "--cluster", help="Only jobs of this cluster (its id)."),
    state: list[str] = typer.Option(  # noqa: B008
        [], "--state", help="FINISHED, FAILED or KILLED (repeatable or comma-separated)."
    ),
    before: str = typer.Option(
        None, "--before", help="Ended before: an age (7d, 12h, 30m, 2w) or an ISO date/time."
    ),
    name_contains: str = typer.Option(
        None, "--name-contains", help="Only jobs whose name contains this (any case)."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what matches; change nothing."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
    chunk: int = typer.Option(500, min=1, max=500, help="Jobs per transaction."),
) -> None:
    """Purge ended jobs by filter: count and sample first, then in chunks (never a live job)."""
    from mrs_jobs.services.admin_purge import AdminPurge

    try:
        service = AdminPurge(admin_store())
        plan = service.plan(
            cluster_id=cluster, states=state, before=before, name_contains=name_contains
        )
    except Exception as exc:
        fail(exc)
        return
    _show(plan)
    if dry_run:
        typer.echo("dry run: nothing changed")
        return
    if plan.count == 0:
        return
    if not yes and not typer.confirm(f"Purge {plan.count} ended jobs?", default=False):
        typer.echo("nothing changed", err=True)
        raise typer.Exit(1)
    total = plan.count

    def progress(done: int) -> None:
        typer.echo(f"\rpurged {done}/{max(total, done)}", nl=False, err=True)

    done = service.run(plan, chunk=chunk, progress=progress)
    typer.echo("", err=True)
    typer.echo(
        f"purged {done} ended jobs (their records and files are removed by the running "
        "service's supervisor within seconds)"
    )


def _show(plan: PurgePlan) -> None:
    typer.echo(f"{plan.count} ended jobs match")
    for row in plan.sample:
        name = str(row["job_name"])[:40]
        ended = when(int(row["finished_ms"]))
        typer.echo(f"  {row['id']}  {row['state']:<8}  {ended}  {row['cluster_id']}  {name}")
    if plan.count > len(plan.sample):
        typer.echo(f"  ... and {plan.count - len(plan.sample)} more")
