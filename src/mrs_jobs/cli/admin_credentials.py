"""Who may do what: the policy commands of ``mrs-jobs admin``.

``set-policy`` replaces a credential's policy; ``show-credential`` prints one credential (never
its SK or token hash) with its policy and the verdict on every action. ``create-aksk``,
``create-token`` (cli/admin.py) and ``set-policy`` take a policy the same three ways
(:func:`read_policy`): a system policy's name, a JSON document, or ``@file``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from mrs_jobs.cli.admin_common import admin_store, fail, when

if TYPE_CHECKING:
    from mrs_jobs.domain.policies import Policy
    from mrs_jobs.store.tenants import Credential

__all__ = ["POLICY_HELP", "policy_name", "read_policy", "register"]

POLICY_HELP = (
    "MRS FullAccess, MRS CommonOperations or MRS ReadOnlyAccess ('MRS ' may be left out), "
    "an IAM policy document (JSON), or @FILE to read the document from a file."
)


def register(app: typer.Typer) -> None:
    """Add the policy commands to the ``admin`` group."""
    app.command("set-policy")(set_policy)
    app.command("show-credential")(show_credential)


def read_policy(arg: str) -> str:
    """The policy ``arg`` names, checked: its stored form (a system name or compact JSON).

    ``@path`` reads the document from a file. A bad policy or an unreadable file ends the
    command (``error: …`` on stderr, exit 2) before anything is created or changed."""
    from mrs_jobs.domain.policies import parse_policy
    from mrs_jobs.errors import InvalidParameter

    text = arg
    if arg.startswith("@"):
        path = Path(arg[1:]).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            typer.echo(f"error: cannot read the policy file {str(path)!r}: {reason}", err=True)
            raise typer.Exit(2) from None
    try:
        return parse_policy(text).stored
    except InvalidParameter as exc:
        typer.echo(f"error: invalid policy: {exc.message}", err=True)
        raise typer.Exit(2) from None


def _policy_of(cred: Credential) -> Policy | None:
    """The credential's parsed policy; None if the stored text no longer parses (the server
    then allows it nothing)."""
    from mrs_jobs.domain.policies import parse_policy
    from mrs_jobs.errors import InvalidParameter

    try:
        return parse_policy(cred.policy)
    except InvalidParameter:
        return None


def policy_name(cred: Credential) -> str:
    """What ``list-credentials`` shows: the system policy's name, ``custom``, or ``invalid``."""
    policy = _policy_of(cred)
    return policy.name if policy is not None else "invalid"


def set_policy(
    credential_id: str = typer.Argument(..., help="The credential's id (list-credentials)."),
    policy: str = typer.Argument(..., help=POLICY_HELP),
) -> None:
    """Replace a credential's policy; prints the policy's name (or `custom`).

    A running server applies it within 5 s (its credential cache)."""
    from mrs_jobs.domain.policies import parse_policy
    from mrs_jobs.services.credentials import CredentialService

    checked = read_policy(policy)
    try:
        stored = CredentialService(admin_store()).set_policy(credential_id, checked)
    except Exception as exc:
        fail(exc)
        return
    typer.echo(parse_policy(stored).name)


def _shown(cred: Credential) -> dict[str, Any]:
    """One credential as shown: no secret (neither the sealed SK nor the token hash)."""
    from mrs_jobs.domain.policies import NO_ACCESS

    policy = _policy_of(cred)
    verdicts = (policy or NO_ACCESS).allowed_actions()
    if policy is None:
        shown_policy: dict[str, Any] = {"name": "invalid", "stored": cred.policy}
    else:
        shown_policy = {"name": policy.name, "document": policy.document}
    return {
        "id": cred.id,
        "project_id": cred.project_id,
        "kind": cred.kind,
        "user": cred.user_name,
        "ak": cred.access_key,
        "disabled": cred.disabled,
        "expires": when(cred.expires_ms),
        "created": when(cred.created_ms),
        "policy": shown_policy,
        "actions": verdicts,
    }


def _print_shown(shown: dict[str, Any]) -> None:
    fields = ["id", "project_id", "kind", "user", "ak", "disabled", "expires", "created"]
    width = max(len(f) for f in [*fields, "policy"])
    for f in fields:
        value = shown[f]
        typer.echo(f"{f.ljust(width)}  {'-' if value is None else value}")
    policy = shown["policy"]
    typer.echo(f"{'policy'.ljust(width)}  {policy['name']}")
    if "document" in policy:
        typer.echo(json.dumps(policy["document"], indent=2))
    else:
        typer.echo(
            f"(the stored policy does not parse; the server allows nothing)\n{policy['stored']}"
        )
    actions = shown["actions"]
    col = max(len("action"), *(len(a) for a in actions))
    typer.echo("")
    typer.echo(f"{'action'.ljust(col)}  allowed")
    for action, allowed in actions.items():
        typer.echo(f"{action.ljust(col)}  {'yes' if allowed else 'no'}")


def show_credential(
    credential_id: str = typer.Argument(..., help="The credential's id (list-credentials)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object."),
) -> None:
    """Show a credential (never its SK or token), its policy and what each action gets."""
    from mrs_jobs.errors import InvalidParameter
    from mrs_jobs.store.tenants import get_credential

    try:
        with admin_store().read() as conn:
            cred = get_credential(conn, credential_id)
        if cred is None:
            raise InvalidParameter(f"credential {credential_id} does not exist.")
    except Exception as exc:
        fail(exc)
        return
    shown = _shown(cred)
    if as_json:
        typer.echo(json.dumps(shown))
    else:
        _print_shown(shown)
