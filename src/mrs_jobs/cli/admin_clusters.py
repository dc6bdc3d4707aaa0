"""Cluster administration: create, update, list and show clusters of every kind.

Settings come from a JSON or TOML file (``--config``) and/or ``--set key=value`` pairs; they are
checked as a whole when saved (``domain/clusterconfig.py``), so a typo is refused here, not by
the first job. Secret-looking settings are masked when shown.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import typer

from mrs_jobs.cli.admin_common import admin_store, fail, when

if TYPE_CHECKING:
    from mrs_jobs.services.cluster_admin import ClusterAdmin

__all__ = ["create_cluster", "list_clusters", "register", "show_cluster", "update_cluster"]


def register(app: typer.Typer) -> None:
    """Add the cluster commands to the ``admin`` group."""
    app.command("create-cluster")(create_cluster)
    app.command("update-cluster")(update_cluster)
    app.command("list-clusters")(list_clusters)
    app.command("show-cluster")(show_cluster)


def _admin() -> ClusterAdmin:
    from mrs_jobs.services.cluster_admin import ClusterAdmin

    return ClusterAdmin(admin_store())


def _parse_sets(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; a value in [...] or {...} is JSON (e.g. input_roots)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            typer.echo(f"error: --set wants key=value, not {pair!r}", err=True)
            raise typer.Exit(2)
        value = value.strip()
        if value[:1] in ("[", "{"):
            try:
                out[key.strip()] = json.loads(value)
                continue
            except ValueError:
                typer.echo(f"error: the value of {key} is not valid JSON", err=True)
                raise typer.Exit(2) from None
        out[key.strip()] = value
    return out


def _settings_from(config: str | None, sets: list[str]) -> tuple[str | None, dict[str, Any]]:
    """(kind named in the file or None, settings) from --config and --set."""
    from mrs_jobs.domain.clusterconfig import load_config_file

    settings: dict[str, Any] = {}
    kind = None
    if config:
        settings = load_config_file(config)  # type: ignore[arg-type]
        kind = settings.pop("kind", None)
    settings.update(_parse_sets(sets))
    return kind, settings


def _masked(config: dict[str, Any]) -> dict[str, Any]:
    from mrs_jobs.domain.render import MASK, is_secret_key

    return {k: (MASK if is_secret_key(k) else v) for k, v in config.items()}


def _view(cluster: Any) -> dict[str, Any]:
    return {
        "id": cluster.id,
        "project_id": cluster.project_id,
        "name": cluster.name,
        "kind": cluster.kind,
        "components": cluster.components,
        "max_running": cluster.max_running,
        "max_queued": cluster.max_queued,
        "created": when(cluster.created_ms),
        "config": _masked(cluster.config),
    }


def create_cluster(
    project_id: str = typer.Argument(...),
    name: str = typer.Option("local", help="Cluster name."),
    kind: str = typer.Option(
        None, help="local (default), spark-standalone, yarn, k8s or flink-remote."
    ),
    config: str = typer.Option(None, help="Settings file (.json or .toml); may name its kind."),
    set_: list[str] = typer.Option(  # noqa: B008 - typer needs a call for lists
        [], "--set", help="A setting as key=value (repeatable; JSON for lists)."
    ),
    components: str = typer.Option("Spark", help="Comma-separated: Spark,Hive,Flink,Hadoop."),
    max_running: int = typer.Option(10, help="Running-job slots."),
    max_queued: int = typer.Option(1000, help="Queue depth."),
    spark_master: str = typer.Option(None, help="Spark master URL (local kind: local[2])."),
    input_root: list[str] = typer.Option(  # noqa: B008 - typer needs a call for lists
        [], help="Allowed local input roots (repeatable)."
    ),
    output_root: list[str] = typer.Option(  # noqa: B008 - typer needs a call for lists
        [],
        help="Local roots jobs may write under, and read (repeatable). With any root set, "
        "jobs write only under these.",
    ),
) -> None:
    """Create a cluster and print its id (see docs/deploy.md for each kind's settings)."""
    try:
        file_kind, settings = _settings_from(config, set_)
        if kind and file_kind and kind != file_kind:
            typer.echo(f"error: --kind {kind} but the config file says {file_kind}", err=True)
            raise typer.Exit(2)
        kind = kind or file_kind or "local"
        if spark_master:
            settings["spark_master"] = spark_master
        elif kind == "local":
            settings.setdefault("spark_master", "local[2]")
        if input_root:
            settings["input_roots"] = input_root
        if output_root:
            settings["output_roots"] = output_root
        cid = _admin().create_cluster(
            project_id,
            name,
            components=[c.strip() for c in components.split(",") if c.strip()],
            config=settings,
            max_running=max_running,
            max_queued=max_queued,
            kind=kind,
        )
    except typer.Exit:
        raise
    except Exception as exc:
        fail(exc)
        return
    typer.echo(cid)


def update_cluster(
    cluster_id: str = typer.Argument(...),
    kind: str = typer.Option(None, help="Change the kind (its settings are checked anew)."),
    config: str = typer.Option(None, help="Settings file (.json or .toml) merged in."),
    set_: list[str] = typer.Option(  # noqa: B008
        [], "--set", help="A setting as key=value (repeatable)."
    ),
    unset: list[str] = typer.Option([], help="A setting to remove (repeatable)."),  # noqa: B008
    replace: bool = typer.Option(False, help="Replace all settings instead of merging."),
    max_running: int = typer.Option(None, help="Running-job slots."),
    max_queued: int = typer.Option(None, help="Queue depth."),
) -> None:
    """Change a cluster's kind, settings or limits; prints it (secrets masked) as JSON.

    Jobs already running keep what they were launched with; queued jobs get the new settings.
    """
    try:
        file_kind, settings = _settings_from(config, set_)
        cluster = _admin().update_cluster(
            cluster_id,
            kind=kind or file_kind,
            settings=settings,
            unset=unset,
            replace_all=replace,
            max_running=max_running,
            max_queued=max_queued,
        )
    except Exception as exc:
        fail(exc)
        return
    typer.echo(json.dumps(_view(cluster), indent=1))


def list_clusters(
    project_id: str = typer.Option(None, help="Only this project."),
    as_json: bool = typer.Option(False, "--json", help="JSON lines with every setting."),
) -> None:
    """List clusters: id, project, name, kind, slots (settings with --json, secrets masked)."""
    for c in _admin().list_clusters(project_id):
        if as_json:
            typer.echo(json.dumps(_view(c)))
        else:
            slots = f"{c.max_running}/{c.max_queued}"
            typer.echo(f"{c.id}  {c.project_id}  {c.name}  {c.kind}  {slots}")


def show_cluster(cluster_id: str = typer.Argument(...)) -> None:
    """Print one cluster with its settings (secrets masked) as JSON."""
    cluster = _admin().get_cluster(cluster_id)
    if cluster is None:
        typer.echo(f"error: cluster {cluster_id} does not exist", err=True)
        raise typer.Exit(2)
    typer.echo(json.dumps(_view(cluster), indent=1))
