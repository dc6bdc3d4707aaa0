"""Who a job's processes run as, the rlimits they run under, and its private directory.

Resolved by the supervisor (``supervisor/limits.py`` maps cluster settings to these), recorded
in ``launch.json`` and applied by the shim in the engine's child process.
"""

from __future__ import annotations

import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path

__all__ = ["JobUser", "ResourceLimits", "prepare_job_dir", "resolve_user"]


@dataclass(frozen=True)
class JobUser:
    """The OS identity an engine runs as (no supplementary groups)."""

    name: str
    uid: int
    gid: int

    def as_launch(self) -> dict[str, object]:
        return {"name": self.name, "uid": self.uid, "gid": self.gid}


@dataclass(frozen=True)
class ResourceLimits:
    """setrlimit values for the engine; None = inherited from the service."""

    address_space_bytes: int | None = None
    cpu_seconds: int | None = None
    open_files: int | None = None
    processes: int | None = None

    def as_launch(self) -> dict[str, int]:
        """The ``limits`` object of launch.json: rlimit name -> value (soft = hard)."""
        values = {
            "RLIMIT_AS": self.address_space_bytes,
            "RLIMIT_CPU": self.cpu_seconds,
            "RLIMIT_NOFILE": self.open_files,
            "RLIMIT_NPROC": self.processes,
        }
        return {k: v for k, v in values.items() if v is not None}

    def __bool__(self) -> bool:
        return bool(self.as_launch())


def resolve_user(value: str | int) -> JobUser:
    """A user name or numeric uid -> JobUser; ValueError if a name is unknown.

    A numeric uid without a passwd entry is accepted (containers) with its uid as gid.
    """
    text = str(value).strip()
    if not text:
        raise ValueError("empty user")
    if text.isdigit():
        uid = int(text)
        try:
            entry = pwd.getpwuid(uid)
        except KeyError:
            return JobUser(text, uid, uid)
        return JobUser(entry.pw_name, entry.pw_uid, entry.pw_gid)
    try:
        entry = pwd.getpwnam(text)
    except KeyError:
        raise ValueError(f"no such user {text!r}") from None
    return JobUser(entry.pw_name, entry.pw_uid, entry.pw_gid)


def _search_denied(directory: Path, user: JobUser) -> bool:
    """Whether ``user`` (no supplementary groups) lacks search permission on ``directory``."""
    st = directory.stat()
    if st.st_uid == user.uid:
        return not st.st_mode & stat.S_IXUSR
    if st.st_gid == user.gid:
        return not st.st_mode & stat.S_IXGRP
    return not st.st_mode & stat.S_IXOTH


def prepare_job_dir(job_dir: Path, user: JobUser | None) -> None:
    """Make ``job_dir`` private (0700) and, with a job user, hand it and its contents over.

    Called before the engine starts, when everything in the directory was written by the
    service (the engine's ``build``), so the walk is trusted; it still never follows a
    symlink. Raises PermissionError when the job user could not reach the directory because
    a parent denies it search permission (the data directory under /root, typically).
    """
    job_dir = Path(job_dir)
    os.chmod(job_dir, 0o700, follow_symlinks=False)
    if user is None:
        return
    for parent in job_dir.absolute().parents:
        if _search_denied(parent, user):
            raise PermissionError(
                f"the job user {user.name!r} cannot reach {job_dir}: {parent} is not searchable "
                "by it (put MRS_JOBS_DATA_DIR where that user can traverse)"
            )
    os.chown(job_dir, user.uid, user.gid, follow_symlinks=False)
    for root, dirs, files in os.walk(job_dir, followlinks=False):
        for name in dirs + files:
            os.chown(os.path.join(root, name), user.uid, user.gid, follow_symlinks=False)
