"""Projects: the tenants every credential, cluster and job belongs to."""

from __future__ import annotations

import uuid

from sqlalchemy import Connection

from mrs_jobs.errors import InvalidParameter
from mrs_jobs.store import Store
from mrs_jobs.store.jobs import now_ms
from mrs_jobs.store.tenants import add_project, count_projects, get_project

__all__ = ["ProjectService", "require_project"]


def require_project(conn: Connection, project_id: str) -> None:
    """Refuse to attach anything to a project that does not exist."""
    if get_project(conn, project_id) is None:
        raise InvalidParameter(f"project {project_id} does not exist.")


class ProjectService:
    """Create and count projects (administration; the API has no project surface)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def create_project(self, name: str, project_id: str | None = None) -> str:
        pid = project_id or uuid.uuid4().hex
        with self.store.write() as conn:
            if get_project(conn, pid) is not None:
                raise InvalidParameter(f"project {pid} already exists.")
            add_project(conn, pid, name, now_ms())
        return pid

    def count(self) -> int:
        with self.store.read() as conn:
            return count_projects(conn)
