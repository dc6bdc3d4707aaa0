"""Administration commands; they use the store directly (the API has no admin surface)."""

from __future__ import annotations

import json

import typer

__all__ = ["app"]

app = typer.Typer(
    help="Create projects, credentials, tokens and clusters; read the audit.", no_args_is_help=True
)


def _tenants():  # type: ignore[no-untyped-def]
    from mrs_jobs.services.tenants import TenantService
    from mrs_jobs.settings import get_settings
    from mrs_jobs.store import Store

    store = Store(get_settings().effective_database_url)
    store.migrate()
    return TenantService(store)


def _fail(exc: Exception) -> None:
    from mrs_jobs.errors import DomainError

    if isinstance(exc, DomainError):
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2)
    raise exc


@app.command("create-project")
def create_project(
    name: str = typer.Argument(..., help="A display name."),
    project_id: str = typer.Option(None, help="Explicit id (1-64 letters/digits)."),
) -> None:
    """Create a project and print its id."""
    from mrs_jobs.domain.validation import validate_project_id

    try:
        if project_id:
            validate_project_id(project_id)
        typer.echo(_tenants().create_project(name, project_id))
    except Exception as exc:
        _fail(exc)


@app.command("create-aksk")
def create_aksk(
    project_id: str = typer.Argument(...),
    user: str = typer.Option("admin", help="User name shown in jobs' `user` field."),
) -> None:
    """Create an AK/SK pair; the SK is shown only now."""
    try:
        ak, sk = _tenants().create_aksk(project_id, user)
    except Exception as exc:
        _fail(exc)
        return
    typer.echo(json.dumps({"project_id": project_id, "ak": ak, "sk": sk}, indent=2))


@app.command("create-token")
def create_token(
    project_id: str = typer.Argument(...),
    user: str = typer.Option("admin", help="User name shown in jobs' `user` field."),
    ttl: int = typer.Option(86400, help="Lifetime in seconds."),
) -> None:
    """Create an X-Auth-Token; it is shown only now and stored as a hash."""
    try:
        typer.echo(_tenants().create_token(project_id, user, ttl))
    except Exception as exc:
        _fail(exc)


@app.command("create-cluster")
def create_cluster(
    project_id: str = typer.Argument(...),
    name: str = typer.Option("local", help="Cluster name."),
    components: str = typer.Option("Spark", help="Comma-separated: Spark,Hive,Flink,Hadoop."),
    max_running: int = typer.Option(10, help="Running-job slots."),
    max_queued: int = typer.Option(1000, help="Queue depth."),
    spark_master: str = typer.Option("local[2]", help="Spark master URL for this cluster."),
    input_root: list[str] = typer.Option(  # noqa: B008 - typer needs a call for lists
        [], help="Allowed local input roots (repeatable)."
    ),
) -> None:
    """Create a cluster and print its id."""
    config: dict[str, object] = {"spark_master": spark_master}
    if input_root:
        config["input_roots"] = input_root
    try:
        cid = _tenants().create_cluster(
            project_id,
            name,
            components=[c.strip() for c in components.split(",") if c.strip()],
            config=config,
            max_running=max_running,
            max_queued=max_queued,
        )
    except Exception as exc:
        _fail(exc)
        return
    typer.echo(cid)


@app.command("audit")
def audit(
    project_id: str = typer.Option(None, help="Only this project."),
    action: str = typer.Option(None, help="submit, kill or batch_delete."),
    limit: int = typer.Option(50),
) -> None:
    """Print audit records (newest first) as JSON lines."""
    from mrs_jobs.store.audit import list_audit

    store = _tenants().store
    with store.read() as conn:
        for rec in list_audit(conn, project_id=project_id, action=action, limit=limit):
            typer.echo(json.dumps(rec))
