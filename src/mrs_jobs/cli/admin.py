"""Administration commands; they use the store directly (the API has no admin surface)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import typer

from mrs_jobs.cli import admin_clusters, admin_credentials, admin_purge, admin_webhooks
from mrs_jobs.cli.admin_common import admin_store, admin_store_and_key, fail, when
from mrs_jobs.cli.admin_credentials import POLICY_HELP, policy_name, read_policy

if TYPE_CHECKING:
    from mrs_jobs.services.credentials import CredentialService

__all__ = ["app"]

app = typer.Typer(
    help="Create projects, credentials, tokens and clusters; read the audit.", no_args_is_help=True
)


def _credentials(with_key: bool = False) -> CredentialService:
    """The credential service; ``with_key`` loads the SK-sealing key (AK/SK commands only)."""
    from mrs_jobs.services.credentials import CredentialService

    if with_key:
        return CredentialService(*admin_store_and_key())
    return CredentialService(admin_store())


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
        from mrs_jobs.services.projects import ProjectService

        typer.echo(ProjectService(admin_store()).create_project(name, project_id))
    except Exception as exc:
        fail(exc)


@app.command("create-aksk")
def create_aksk(
    project_id: str = typer.Argument(...),
    user: str = typer.Option("admin", help="User name shown in jobs' `user` field."),
    policy: str = typer.Option("MRS FullAccess", help=POLICY_HELP),
) -> None:
    """Create an AK/SK pair; the SK is shown only now (it is stored sealed)."""
    stored = read_policy(policy)
    try:
        issued = _credentials(with_key=True).issue_aksk(project_id, user, stored)
    except Exception as exc:
        fail(exc)
        return
    out = {"id": issued.id, "project_id": project_id, "user": user}
    typer.echo(json.dumps(out | {"ak": issued.ak, "sk": issued.sk}, indent=2))


@app.command("create-token")
def create_token(
    project_id: str = typer.Argument(...),
    user: str = typer.Option("admin", help="User name shown in jobs' `user` field."),
    ttl: int = typer.Option(86400, help="Lifetime in seconds."),
    policy: str = typer.Option("MRS FullAccess", help=POLICY_HELP),
) -> None:
    """Create an X-Auth-Token; it is shown only now and stored as a hash."""
    stored = read_policy(policy)
    try:
        typer.echo(_credentials().create_token(project_id, user, ttl, stored))
    except Exception as exc:
        fail(exc)


@app.command("list-credentials")
def list_credentials(
    project_id: str = typer.Option(None, "--project", help="Only this project."),
    kind: str = typer.Option(None, help="aksk or token."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """List credentials: id, project, kind, user, AK, created, expires, disabled, policy.

    Never a secret; the policy is its name, or `custom` (show-credential shows the document)."""
    try:
        creds = _credentials().list_credentials(project_id, kind)
    except Exception as exc:
        fail(exc)
        return
    rows = [
        {
            "id": c.id,
            "project_id": c.project_id,
            "kind": c.kind,
            "user": c.user_name,
            "ak": c.access_key,
            "created": when(c.created_ms),
            "expires": when(c.expires_ms),
            "disabled": c.disabled,
            "policy": policy_name(c),
        }
        for c in creds
    ]
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row))
        return
    cols = ["id", "project_id", "kind", "user", "ak", "created", "expires", "disabled", "policy"]
    table = [[str(r[k]) if r[k] is not None else "-" for k in cols] for r in rows]
    widths = [max([len(h), *(len(t[i]) for t in table)]) for i, h in enumerate(cols)]
    for line in [cols, *table]:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip())


@app.command("list-tokens")
def list_tokens(
    project_id: str = typer.Option(None, "--project", help="Only this project."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line."),
) -> None:
    """List tokens (same as list-credentials --kind token)."""
    list_credentials(project_id=project_id, kind="token", as_json=as_json)


def _set_disabled(credential_id: str, disabled: bool) -> None:
    try:
        _credentials().set_disabled(credential_id, disabled)
    except Exception as exc:
        fail(exc)
        return
    typer.echo(f"{credential_id} {'disabled' if disabled else 'enabled'}")


@app.command("disable-credential")
def disable_credential(credential_id: str = typer.Argument(...)) -> None:
    """Refuse a credential (401) from now on; enable-credential undoes it."""
    _set_disabled(credential_id, True)


@app.command("enable-credential")
def enable_credential(credential_id: str = typer.Argument(...)) -> None:
    """Accept a disabled credential again (an expired one stays expired)."""
    _set_disabled(credential_id, False)


@app.command("delete-credential")
def delete_credential(credential_id: str = typer.Argument(...)) -> None:
    """Delete a credential for good; its AK or token is refused (401) from now on."""
    try:
        _credentials().delete_credential(credential_id)
    except Exception as exc:
        fail(exc)
        return
    typer.echo(f"{credential_id} deleted")


@app.command("rotate-aksk")
def rotate_aksk(
    credential_id: str = typer.Argument(..., help="Id of the AK/SK pair to replace."),
    grace: int | None = typer.Option(
        None, help="Seconds the old pair stays valid; default: until disabled or deleted."
    ),
) -> None:
    """Issue a new AK/SK pair for the same project and user; the new SK is shown only now.

    The old pair keeps working (clients in flight are not cut off) until it is disabled or
    deleted, or until --grace seconds have passed.
    """
    try:
        issued = _credentials(with_key=True).rotate_aksk(credential_id, grace)
    except Exception as exc:
        fail(exc)
        return
    out = {
        "id": issued.id,
        "project_id": issued.project_id,
        "user": issued.user_name,
        "ak": issued.ak,
        "sk": issued.sk,
        "replaces": credential_id,
    }
    typer.echo(json.dumps(out, indent=2))


@app.command("reencrypt-secrets")
def reencrypt_secrets() -> None:
    """Reseal stored SKs with the current key (after a key rotation); prints how many.

    Also reseals the secret property values of live jobs, and masks those that jobs ended
    before values were sealed still hold in plain text (that count goes to stderr)."""
    from mrs_jobs.services.job_secrets import mask_ended_job_secrets, seal_live_job_secrets
    from mrs_jobs.services.sealed_keys import reencrypt_secrets as reseal_keys

    try:
        store, box = admin_store_and_key()
        typer.echo(reseal_keys(store, box))
        seal_live_job_secrets(store, box)
        masked = mask_ended_job_secrets(store)
        typer.echo(f"ended jobs masked: {masked}", err=True)
    except Exception as exc:
        fail(exc)


@app.command("audit")
def audit(
    project_id: str = typer.Option(None, help="Only this project."),
    action: str = typer.Option(
        None, help="submit, kill, batch_delete…; a refused request's is its permission."
    ),
    decision: str = typer.Option(
        None, help="allow or deny: only requests the policy check allowed / refused."
    ),
    limit: int = typer.Option(50),
) -> None:
    """Print audit records (newest first) as JSON lines.

    Each carries `permission` (the action the request was checked for, e.g. mrs:job:submit)
    and `decision` (allow or deny); rows written before policies existed have null there."""
    if decision is not None and decision not in ("allow", "deny"):
        typer.echo("error: --decision is allow or deny.", err=True)
        raise typer.Exit(2)
    with admin_store().read() as conn:
        for rec in _audit_rows(conn, project_id, action, decision, limit):
            typer.echo(json.dumps(rec))


def _audit_rows(
    conn: Any, project_id: str | None, action: str | None, decision: str | None, limit: int
) -> list[dict[str, Any]]:
    """store.audit.list_audit, with the decision filter applied in the query (before limit)."""
    from sqlalchemy import select

    from mrs_jobs.store.audit import list_audit
    from mrs_jobs.store.tables import audit as audit_table

    if decision is None:
        return list_audit(conn, project_id=project_id, action=action, limit=limit)
    q = select(audit_table).where(audit_table.c.decision == decision)
    if project_id:
        q = q.where(audit_table.c.project_id == project_id)
    if action:
        q = q.where(audit_table.c.action == action)
    rows = [
        dict(r._mapping) for r in conn.execute(q.order_by(audit_table.c.id.desc()).limit(limit))
    ]
    return [r | {"detail": json.loads(r["detail"])} for r in rows]


admin_clusters.register(app)
admin_credentials.register(app)
admin_purge.register(app)
admin_webhooks.register(app)
