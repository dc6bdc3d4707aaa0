"""Reading files of a job directory safely.

When jobs run as their own user, that user owns the job directory and can replace any file in
it with a symlink (to a root-only file, or to ``/dev/zero``). The service reads those files as
itself, so it never follows a symlink there, reads regular files only, and caps what it reads.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["open_regular", "read_capped", "read_tail"]


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


def read_tail(path: Path, max_bytes: int) -> str:
    """The last ``max_bytes`` of a regular file as text, from its first whole line ("" if it
    is missing, a symlink or not a regular file)."""
    fd = open_regular(path)
    if fd is None:
        return ""
    with os.fdopen(fd, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > max_bytes:
            fh.seek(size - max_bytes)
        data = fh.read(max_bytes)
    if size > max_bytes:
        data = data[data.find(b"\n") + 1 :]
    return data.decode("utf-8", errors="replace")
