"""What a credential may do: its refusals in the audit, and its own policy as it may read it."""

from __future__ import annotations

from typing import Any

from mrs_jobs.services.context import Caller
from mrs_jobs.services.ownership import record_denial
from mrs_jobs.store import Store

__all__ = ["PermissionService"]


class PermissionService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def record_denial(
        self, caller: Caller, action: str, cluster_id: str | None, method: str
    ) -> None:
        """An audit row for a request refused by the caller's policy (nothing else changes)."""
        record_denial(self.store, caller, action, cluster_id, {"method": method})

    @staticmethod
    def describe(caller: Caller) -> dict[str, Any]:
        """The calling credential's policy and, for every action, whether it is allowed."""
        return {
            "credential_id": caller.credential_id,
            "user_name": caller.user_name,
            "policy": {"name": caller.policy.name, "document": caller.policy.document},
            "actions": caller.policy.allowed_actions(),
        }
