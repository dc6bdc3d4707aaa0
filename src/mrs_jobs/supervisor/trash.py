"""The purge's trash: job directories moved aside in O(1), removed once their rows are gone.

Removing a job's directory file by file costs far more than deleting its rows (hundreds of
microseconds to milliseconds per job on ext4, against ~10 us for a rename), so the purge
renames each directory into ``<data dir>/trash`` before it deletes the job's rows, and empties
the trash afterwards. Whatever a crash interrupts, nothing is left for long: a directory
still in place keeps its row (purged again next pass), one in the trash is removed by the next
pass's :meth:`Trash.empty`, whoever's it was. The data dir has one supervisor (its lock), so
everything in the trash is ours to remove.

No symlink is followed: ``rename`` moves a symlink itself, a directory is removed with
``shutil.rmtree`` (which never follows one inside it), anything else is unlinked. A directory
that cannot be renamed there (another filesystem, a name taken) is removed in place, as before.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import stat
from pathlib import Path

__all__ = ["Trash"]

log = logging.getLogger(__name__)


class Trash:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._ok = False

    def take(self, name: str, workdir: Path) -> None:
        """Move ``workdir`` (not followed if a symlink) into the trash as ``name``, or remove
        it in place when it cannot be moved; nothing to do when it does not exist."""
        if self._ready():
            try:
                os.rename(workdir, self.path / name)
                return
            except FileNotFoundError:
                if not os.path.lexists(workdir):
                    return  # nothing there (purged before, or its files are on another disk)
                self._ok = False  # the trash went away meanwhile: made again next time
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    log.debug(
                        "purge.trash_refused", extra={"path": str(workdir), "error": str(exc)}
                    )
        _remove(workdir)

    def empty(self, limit: int = 0) -> int:
        """Remove what is in the trash (at most ``limit`` entries if > 0); returns how many."""
        if not self._is_dir():
            return 0
        with os.scandir(self.path) as it:
            names = [entry.name for entry in it]
        if limit:
            names = names[:limit]
        for name in names:
            _remove(self.path / name)
        return len(names)

    def _ready(self) -> bool:
        """The trash is a real directory (made 0700 if missing); never a symlink."""
        if not self._ok:
            try:
                self.path.mkdir(mode=0o700)
            except OSError:
                pass
            self._ok = self._is_dir()
        return self._ok

    def _is_dir(self) -> bool:
        try:
            return stat.S_ISDIR(os.lstat(self.path).st_mode)
        except OSError:
            return False


def _remove(path: Path) -> None:
    """A directory with its contents (no symlink followed), or any other entry itself."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.unlink(path)
        except OSError:
            pass
