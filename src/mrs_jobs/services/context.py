"""Who is calling, passed from the API layer into every use case."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Caller", "Waker"]

Waker = Callable[[], None]


@dataclass(frozen=True)
class Caller:
    project_id: str
    credential_id: str | None
    user_name: str
    request_id: str | None = None

    @property
    def actor(self) -> str:
        """Who this is, as a job's history names the cause of a change."""
        if self.request_id:
            return f"request {self.request_id} by {self.user_name}"
        return self.user_name
