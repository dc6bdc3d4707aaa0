"""Who is calling, passed from the API layer into every use case."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mrs_jobs.domain.policies import FULL_ACCESS, Policy

__all__ = ["Caller", "Waker"]

Waker = Callable[[], None]


@dataclass(frozen=True)
class Caller:
    project_id: str
    credential_id: str | None
    user_name: str
    request_id: str | None = None
    #: What the credential may do (the operator's own commands act with full access).
    policy: Policy = field(default=FULL_ACCESS, repr=False)
    #: The action the request was allowed as (api/permissions.py); audit rows record it.
    action: str | None = None

    @property
    def decision(self) -> dict[str, str | None]:
        """An audit row's permission and decision for what this caller was allowed to do."""
        return {"permission": self.action, "decision": "allow" if self.action else None}

    @property
    def actor(self) -> str:
        """Who this is, as a job's history names the cause of a change."""
        if self.request_id:
            return f"request {self.request_id} by {self.user_name}"
        return self.user_name
