"""One directory level of files, as MRS's ``FileStatusV2`` (the v2 files API).

Local directories are read here; which paths may be read at all is the caller's rule, handed
in as ``allowed`` (a resolved path -> bool), so this module knows nothing of clusters. A
symlink is never followed blindly: it is resolved and shown as its target only when
``allowed`` accepts the target; otherwise (or when it dangles) it is left out.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

__all__ = [
    "LOCAL_BLOCK_SIZE",
    "MAX_ENTRIES",
    "FileStatus",
    "ListingTooLarge",
    "local_entries",
    "page",
    "with_children",
]

# What Hadoop's local file system reports (fs.local.block.size, replication 1).
LOCAL_BLOCK_SIZE = 32 * 1024 * 1024
# A directory with more entries is refused rather than read into memory and sorted.
MAX_ENTRIES = 100_000
SORT_KEYS = ("path_suffix", "length", "modification_time")

Allowed = Callable[[Path], bool]


class ListingTooLarge(Exception):
    """The directory holds more than ``MAX_ENTRIES`` entries."""


@dataclass(frozen=True)
class FileStatus:
    """MRS's FileStatusV2 fields, with MRS's JSON names and types."""

    path_suffix: str
    owner: str
    group: str
    permission: str
    replication: int
    block_size: int
    length: int
    type: str  # FILE | DIRECTORY
    children_num: int
    access_time: int  # epoch ms
    modification_time: int  # epoch ms
    # Where a local entry really is (a symlink's target), to count a directory's children.
    real: Path | None = field(default=None, compare=False, repr=False)

    def to_mrs(self) -> dict[str, object]:
        return {
            "path_suffix": self.path_suffix,
            "owner": self.owner,
            "group": self.group,
            "permission": self.permission,
            "replication": self.replication,
            "block_size": self.block_size,
            "length": self.length,
            "type": self.type,
            "children_num": self.children_num,
            "access_time": self.access_time,
            "modification_time": self.modification_time,
        }


def _owner(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _children(path: Path, allowed: Allowed) -> int:
    """How many entries a directory holds that a listing of it would show (0 if unreadable)."""
    try:
        with os.scandir(path) as it:
            return sum(1 for e in it if _shown(Path(e.path), e.is_symlink(), allowed) is not None)
    except OSError:
        return 0


def _status(name: str, st: os.stat_result, real: Path) -> FileStatus:
    is_dir = stat.S_ISDIR(st.st_mode)
    return FileStatus(
        path_suffix=name,
        owner=_owner(st.st_uid),
        group=_group(st.st_gid),
        permission=format(stat.S_IMODE(st.st_mode), "o"),
        replication=0 if is_dir else 1,
        block_size=0 if is_dir else LOCAL_BLOCK_SIZE,
        length=0 if is_dir else st.st_size,
        type="DIRECTORY" if is_dir else "FILE",
        children_num=0,  # filled in for the page only (with_children)
        access_time=int(st.st_atime * 1000),
        modification_time=int(st.st_mtime * 1000),
        real=real,
    )


def _shown(path: Path, is_link: bool, allowed: Allowed) -> Path | None:
    """The resolved path an entry stands for, or None when it is not to be shown."""
    try:
        real = path.resolve(strict=True) if is_link else path
    except (OSError, RuntimeError):  # dangling, a loop
        return None
    return real if allowed(real) else None


def _entry(path: Path, name: str, allowed: Allowed, *, is_link: bool) -> FileStatus | None:
    real = _shown(path, is_link, allowed)
    if real is None:
        return None
    try:
        st = os.stat(real, follow_symlinks=False)
    except OSError:  # gone meanwhile
        return None
    if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
        return None  # sockets, devices, fifos: not files in MRS's sense
    return _status(name, st, real)


def local_entries(real: Path, allowed: Allowed) -> list[FileStatus]:
    """The entries of directory ``real`` (already resolved and allowed), or ``real`` itself
    when it is a file (with an empty ``path_suffix``, as WebHDFS answers for a file).

    Raises FileNotFoundError, NotADirectoryError/PermissionError (OSError) and
    ListingTooLarge."""
    st = os.stat(real, follow_symlinks=False)
    if stat.S_ISREG(st.st_mode):
        return [_status("", st, real)]
    if not stat.S_ISDIR(st.st_mode):
        raise NotADirectoryError(str(real))
    out: list[FileStatus] = []
    with os.scandir(real) as it:
        for i, e in enumerate(it):
            if i >= MAX_ENTRIES:
                raise ListingTooLarge(str(real))
            found = _entry(Path(e.path), e.name, allowed, is_link=e.is_symlink())
            if found is not None:
                out.append(found)
    return out


def page(
    entries: Iterable[FileStatus], *, sort_key: str, descending: bool, number: int, limit: int
) -> tuple[int, list[FileStatus]]:
    """(how many entries, the ``number``-th page of ``limit`` of them) in the asked order;
    ties are ordered by name, the same way in both directions."""
    if sort_key not in SORT_KEYS:
        raise ValueError(sort_key)
    rows = sorted(entries, key=lambda f: f.path_suffix)
    if sort_key != "path_suffix":
        rows.sort(key=lambda f: getattr(f, sort_key), reverse=descending)
    elif descending:
        rows.reverse()
    start = (number - 1) * limit
    return len(rows), rows[start : start + limit]


def with_children(rows: list[FileStatus], allowed: Allowed) -> list[FileStatus]:
    """``rows`` with each local directory's ``children_num`` counted (only what a listing of
    it would show)."""
    return [
        replace(r, children_num=_children(r.real, allowed))
        if r.type == "DIRECTORY" and r.real is not None
        else r
        for r in rows
    ]
