"""Who may do what: IAM-shaped policies and the actions the API's routes are declared with.

A credential carries one policy: a system policy by name (MRS's three) or a custom document in
IAM's shape::

    {"Version": "1.1",
     "Statement": [{"Effect": "Allow", "Action": ["mrs:job:*"]},
                   {"Effect": "Deny", "Action": ["mrs:job:batchDelete"]}]}

An action is allowed when some Allow statement matches it and no Deny statement does (Deny
wins; nothing matching: denied). ``*`` in a pattern matches any run of characters and matching
ignores case, as in IAM. ``Resource`` and ``Condition`` are refused, not ignored: ignoring a
condition would grant more than the document says.

Every route of the API is declared with exactly one action (:data:`ACTIONS`); the owner scope
of a cluster (``owner_scope``) adds the two ``…Any`` actions, checked by the services against
the job's submitting user.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from mrs_jobs.errors import InvalidParameter

__all__ = [
    "ACTIONS",
    "FULL_ACCESS",
    "NO_ACCESS",
    "OWNER_ACTIONS",
    "SYSTEM_POLICIES",
    "Policy",
    "parse_policy",
]

#: What each action lets a caller do; every route declares one of these (api/permissions.py).
ACTIONS: dict[str, str] = {
    "mrs:job:submit": "submit a job",
    "mrs:job:list": "list jobs, read their event stream and usage",
    "mrs:job:get": "show a job, its log, events and SQL result",
    "mrs:job:stop": "kill a job",
    "mrs:job:delete": "delete one job (MRS v1.1)",
    "mrs:job:batchDelete": "delete jobs in batches",
    "mrs:sql:execute": "run an SQL statement",
    "mrs:sql:get": "read an SQL statement's result",
    "mrs:sql:cancel": "cancel an SQL statement",
    "mrs:file:list": "list a cluster's files",
    "mrs:cluster:list": "list clusters",
    "mrs:cluster:get": "show a cluster",
    "mrs:credential:get": "read the calling credential's own policy",
}
#: Checked by the services on a cluster with ``owner_scope``: killing or deleting a job that
#: another user submitted needs these as well as mrs:job:stop / mrs:job:delete|batchDelete.
OWNER_ACTIONS: dict[str, str] = {
    "mrs:job:stopAny": "kill other users' jobs on a cluster with owner_scope",
    "mrs:job:deleteAny": "delete other users' jobs on a cluster with owner_scope",
}

_ACTION_PATTERN = re.compile(r"^[A-Za-z0-9*]{1,64}:[A-Za-z0-9*]{1,64}:[A-Za-z0-9*]{1,64}$")
_MAX_STATEMENTS = 100
_MAX_ACTIONS = 200


@dataclass(frozen=True)
class Statement:
    allow: bool
    patterns: tuple[re.Pattern[str], ...]

    def matches(self, action: str) -> bool:
        return any(p.fullmatch(action) for p in self.patterns)


@dataclass(frozen=True)
class Policy:
    """A parsed policy: ``name`` is the system policy's name, or ``custom``."""

    name: str
    document: dict[str, Any]
    statements: tuple[Statement, ...]

    def allows(self, action: str) -> bool:
        allowed = False
        for st in self.statements:
            if st.matches(action):
                if not st.allow:
                    return False  # Deny wins
                allowed = True
        return allowed

    @property
    def stored(self) -> str:
        """What the credentials row keeps: the system policy's name, or the document."""
        if self.name != "custom":
            return self.name
        return json.dumps(self.document, separators=(",", ":"), sort_keys=True)

    def allowed_actions(self) -> dict[str, bool]:
        return {a: self.allows(a) for a in (*ACTIONS, *OWNER_ACTIONS)}


def _doc(*statements: tuple[str, list[str]]) -> dict[str, Any]:
    return {
        "Version": "1.1",
        "Statement": [{"Effect": effect, "Action": acts} for effect, acts in statements],
    }


#: MRS's system policies. CommonOperations does everything with jobs, SQL and files but is not
#: granted the owner-scope actions (on a cluster with owner_scope its holders kill and delete
#: only their own jobs); ReadOnlyAccess reads and lists only.
SYSTEM_DOCUMENTS: dict[str, dict[str, Any]] = {
    "MRS FullAccess": _doc(("Allow", ["mrs:*:*"])),
    "MRS CommonOperations": _doc(
        ("Allow", ["mrs:*:*"]), ("Deny", ["mrs:job:stopAny", "mrs:job:deleteAny"])
    ),
    "MRS ReadOnlyAccess": _doc(("Allow", ["mrs:*:get*", "mrs:*:list*"])),
}


def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(p) for p in pattern.split("*")), re.IGNORECASE)


def _statements(document: Any) -> tuple[Statement, ...]:
    if not isinstance(document, dict):
        raise InvalidParameter("a policy must be a JSON object or a system policy's name.")
    unknown = set(document) - {"Version", "Statement"}
    if unknown:
        raise InvalidParameter(f"a policy takes Version and Statement only, not {sorted(unknown)}.")
    if document.get("Version") != "1.1":
        raise InvalidParameter('a policy\'s Version must be "1.1".')
    raw = document.get("Statement")
    if not isinstance(raw, list) or not 1 <= len(raw) <= _MAX_STATEMENTS:
        raise InvalidParameter(f"Statement must be a list of 1 to {_MAX_STATEMENTS} statements.")
    return tuple(_statement(i, st) for i, st in enumerate(raw))


def _statement(index: int, st: Any) -> Statement:
    where = f"Statement[{index}]"
    if not isinstance(st, dict):
        raise InvalidParameter(f"{where} must be an object.")
    unknown = set(st) - {"Effect", "Action"}
    if unknown:
        raise InvalidParameter(
            f"{where}: {sorted(unknown)} are not supported (Effect and Action only); "
            "a Resource or Condition would be ignored, granting more than written."
        )
    if st.get("Effect") not in ("Allow", "Deny"):
        raise InvalidParameter(f'{where}: Effect must be "Allow" or "Deny".')
    actions = st.get("Action")
    if isinstance(actions, str):
        actions = [actions]
    if not isinstance(actions, list) or not 1 <= len(actions) <= _MAX_ACTIONS:
        raise InvalidParameter(f"{where}: Action must be a list of 1 to {_MAX_ACTIONS} actions.")
    for a in actions:
        if not isinstance(a, str) or not _ACTION_PATTERN.match(a):
            raise InvalidParameter(
                f"{where}: {a!r} is not an action (service:resource:action, * as a wildcard)."
            )
    return Statement(st["Effect"] == "Allow", tuple(_compile(a) for a in actions))


def _system_name(text: str) -> str | None:
    """The system policy a name means: its full name, or without "MRS ", in any case."""
    key = text.strip().lower()
    for name in SYSTEM_DOCUMENTS:
        if key in (name.lower(), name.lower().removeprefix("mrs ")):
            return name
    return None


@lru_cache(maxsize=1024)
def parse_policy(text: str) -> Policy:
    """A policy from a system policy's name or a JSON document; InvalidParameter if neither.

    Cached by its text: credentials share a handful of policies, read on every request."""
    name = _system_name(text)
    if name is not None:
        doc = SYSTEM_DOCUMENTS[name]
        return Policy(name, doc, _statements(doc))
    try:
        doc = json.loads(text)
    except ValueError:
        names = ", ".join(SYSTEM_DOCUMENTS)
        raise InvalidParameter(
            f"a policy is one of {names}, or an IAM policy document (JSON)."
        ) from None
    return Policy("custom", doc, _statements(doc))


FULL_ACCESS = parse_policy("MRS FullAccess")
#: What a credential whose stored policy no longer parses gets: nothing (fail closed).
NO_ACCESS = Policy("none", {"Version": "1.1", "Statement": []}, ())
SYSTEM_POLICIES = tuple(SYSTEM_DOCUMENTS)
