"""Entry point of the ``mrs-jobs`` console script."""

from __future__ import annotations

import typer

from mrs_jobs.cli import admin, jobs, usage

__all__ = ["app", "main"]

app = typer.Typer(
    help="mrs-jobs: a self-hosted job-execution service speaking the MRS API v2.",
    no_args_is_help=True,
    add_completion=False,
)
app.add_typer(admin.app, name="admin")
jobs.register(app)
usage.register(app)


@app.command()
def serve(
    host: str = typer.Option(None, help="Listen address (default MRS_JOBS_HOST or 127.0.0.1)."),
    port: int = typer.Option(None, help="Listen port (default MRS_JOBS_PORT or 8080; 0 = free)."),
    data_dir: str = typer.Option(None, help="Data directory (default MRS_JOBS_DATA_DIR)."),
    workers: int = typer.Option(
        None,
        min=1,
        help="API processes (default MRS_JOBS_WORKERS or 1): more than 1 starts that many HTTP "
        "processes on one socket, the supervisor staying in this one (docs/deploy.md).",
    ),
) -> None:
    """Start the API server and the job supervisor on the configured store."""
    from mrs_jobs.server import run_server
    from mrs_jobs.settings import get_settings

    overrides: dict[str, object] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if workers is not None:
        overrides["workers"] = workers
    raise typer.Exit(run_server(get_settings(**overrides)))


@app.command()
def supervise(
    data_dir: str = typer.Option(None, help="Data directory (default MRS_JOBS_DATA_DIR)."),
) -> None:
    """Run only the job supervisor (no HTTP API) on the configured store, until SIGTERM.

    Pairs with API servers started with MRS_JOBS_RUN_SUPERVISOR=false (see docs/deploy.md).
    """
    from mrs_jobs.settings import get_settings
    from mrs_jobs.supervise import run_supervise

    overrides: dict[str, object] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    raise typer.Exit(run_supervise(get_settings(**overrides)))


engines = typer.Typer(help="Install and inspect the local engines.", no_args_is_help=True)
app.add_typer(engines, name="engines")


@engines.command("install")
def engines_install(
    what: str = typer.Argument("flink", help="flink (Spark comes with the package)."),
) -> None:
    """Install an engine into <data dir>/engines (Flink: its own venv, about 0.85 GB)."""
    from mrs_jobs.engines.install import engines_install_command
    from mrs_jobs.settings import get_settings

    raise typer.Exit(engines_install_command(what, get_settings().data_dir))


@app.command("db-upgrade")
def db_upgrade() -> None:
    """Apply the store's migrations (serve does this on start too)."""
    from mrs_jobs.datadir import secure_data_dir
    from mrs_jobs.settings import get_settings
    from mrs_jobs.store import Store

    settings = get_settings()
    secure_data_dir(settings)
    store = Store(settings.effective_database_url)
    store.migrate()
    store.dispose()
    typer.echo("store is at the newest schema")


def main() -> None:
    app()
