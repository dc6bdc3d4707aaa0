"""Webhook administration: subscriptions per project or cluster, and their delivery log.

``create-webhook`` prints the signing secret once (it is stored sealed); no other command
shows it. ``list-deliveries`` shows each delivery with every attempt: when, the status, the
error.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import typer

from mrs_jobs.cli.admin_common import admin_store, admin_store_and_key, fail, when

if TYPE_CHECKING:
    from mrs_jobs.services.webhooks import WebhookAdmin
    from mrs_jobs.store.webhooks import DeliveryRow, Webhook

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the webhook commands to the ``admin`` group."""
    app.command("create-webhook")(create_webhook)
    app.command("list-webhooks")(list_webhooks)
    app.command("disable-webhook")(disable_webhook)
    app.command("enable-webhook")(enable_webhook)
    app.command("delete-webhook")(delete_webhook)
    app.command("list-deliveries")(list_deliveries)


def _admin(with_key: bool = False) -> WebhookAdmin:
    from mrs_jobs.services.webhooks import WebhookAdmin
    from mrs_jobs.settings import get_settings

    allow = get_settings().webhook_allow_private
    if with_key:
        store, box = admin_store_and_key()
        return WebhookAdmin(store, box, allow_private=allow)
    return WebhookAdmin(admin_store(), None, allow_private=allow)


def _shown(wh: Webhook) -> dict[str, Any]:
    """A subscription as listed: everything but its secret."""
    return {
        "id": wh.id,
        "project_id": wh.project_id,
        "cluster_id": wh.cluster_id,
        "url": wh.url,
        "events": wh.events,
        "over_duration_s": wh.over_duration_s,
        "enabled": wh.enabled,
        "description": wh.description,
        "created": when(wh.created_ms),
    }


def create_webhook(
    project_id: str = typer.Argument(..., help="The project whose jobs' events are sent."),
    url: str = typer.Option(..., "--url", help="The receiver (http:// or https://)."),
    events: str = typer.Option(
        ..., "--events", help="Comma-separated event types, e.g. job.succeeded,job.failed."
    ),
    cluster: str = typer.Option(None, "--cluster", help="Only this cluster's jobs (its id)."),
    over_duration: int = typer.Option(
        None, "--over-duration", help="Send job.over_duration once a job runs this many seconds."
    ),
    description: str = typer.Option("", "--description", help="A note for operators."),
) -> None:
    """Subscribe a URL to job events; prints the signing secret, shown only now."""
    try:
        created = _admin(with_key=True).create(
            project_id,
            url,
            events.split(","),
            cluster_id=cluster,
            over_duration_s=over_duration,
            description=description,
        )
    except Exception as exc:
        fail(exc)
        return
    typer.echo(json.dumps(_shown(created.webhook) | {"secret": created.secret}, indent=2))


def list_webhooks(
    project_id: str = typer.Argument(None, help="Only this project's subscriptions."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """List subscriptions (never their secrets)."""
    try:
        rows = [_shown(w) for w in _admin().list(project_id)]
    except Exception as exc:
        fail(exc)
        return
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row))
        return
    cols = ["id", "project_id", "cluster_id", "enabled", "events", "url"]
    table = [
        [",".join(r[c]) if c == "events" else str(r[c] if r[c] is not None else "-") for c in cols]
        for r in rows
    ]
    widths = [max([len(h), *(len(t[i]) for t in table)]) for i, h in enumerate(cols)]
    for line in [cols, *table]:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())


def _set_enabled(webhook_id: str, enabled: bool) -> None:
    try:
        _admin().set_enabled(webhook_id, enabled)
    except Exception as exc:
        fail(exc)
        return
    typer.echo(f"{webhook_id} {'enabled' if enabled else 'disabled'}")


def disable_webhook(webhook_id: str = typer.Argument(...)) -> None:
    """Stop queuing events for a subscription; its pending deliveries wait until enabled."""
    _set_enabled(webhook_id, False)


def enable_webhook(webhook_id: str = typer.Argument(...)) -> None:
    """Queue events for a disabled subscription again and send what it has pending."""
    _set_enabled(webhook_id, True)


def delete_webhook(webhook_id: str = typer.Argument(...)) -> None:
    """Delete a subscription with its pending deliveries and its delivery log."""
    try:
        _admin().delete(webhook_id)
    except Exception as exc:
        fail(exc)
        return
    typer.echo(f"{webhook_id} deleted")


def _next_attempt(row: DeliveryRow) -> str | None:
    from mrs_jobs.store.webhooks import PAUSED_MS

    if row.state != "pending":
        return None
    return "when enabled" if row.next_at_ms >= PAUSED_MS else when(row.next_at_ms)


def _delivery(row: DeliveryRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "webhook_id": row.webhook_id,
        "msg_id": row.msg_id,
        "job_id": row.job_id,
        "event_type": row.event_type,
        "state": row.state,
        "attempts": row.attempts,
        "created": when(row.created_ms),
        "next_attempt": _next_attempt(row),
        "finished": when(row.finished_ms),
        "attempt_log": [
            {
                "at": when(a.at_ms),
                "at_ms": a.at_ms,
                "status": a.status,
                "error": a.error,
                "duration_ms": a.duration_ms,
            }
            for a in row.log
        ],
    }


def list_deliveries(
    webhook: str = typer.Option(None, "--webhook", help="Only this subscription's."),
    state: str = typer.Option(None, "--state", help="pending, delivered or dead."),
    job: str = typer.Option(None, "--job", help="Only this job's."),
    limit: int = typer.Option(100, min=1, max=10000, help="Newest this many."),
) -> None:
    """Deliveries, newest first, one JSON object per line with every attempt."""
    try:
        rows = _admin().deliveries(webhook_id=webhook, state=state, job_id=job, limit=limit)
    except Exception as exc:
        fail(exc)
        return
    for row in rows:
        typer.echo(json.dumps(_delivery(row)))
