"""Reading files of a job directory safely.

When jobs run as their own user, that user owns the job directory and can replace any file in
it with a symlink (to a root-only file, or to ``/dev/zero``). The service reads those files as
itself, so it never follows a symlink there, reads regular files only, and caps what it reads.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["open_regular", "read_capped"]


def open_regular(path: Path) -> int | None:
    """An O_RDONLY descriptor on a regular file that is not a symlink; None otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd


def read_capped(path: Path, max_bytes: int = 64 * 1024 * 1024) -> bytes | None:
    """The file's bytes (None if missing, not a regular file, a symlink, or over the cap)."""
    fd = open_regular(path)
    if fd is None:
        return None
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(max_bytes + 1)
    return None if len(data) > max_bytes else data
