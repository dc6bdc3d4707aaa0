"""The two sides of a DistCp copy: local files and pyarrow file systems (object stores, HDFS).

A writer writes under a temporary name and renames it into place (local files) or completes the
upload (objects) only on success, so a copy that stops half-way leaves no partial file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CHUNK = 8 * 1024 * 1024
MIN_CHUNK = 256 * 1024
PROGRESS_INTERVAL = 0.5
STOP_GRACE = 0.6
MB = 1024 * 1024

# Unfinished object uploads: kept referenced so that their destructor (which would complete the
# upload under the final name) never runs; the process leaves through os._exit.
_ABANDONED: list[Any] = []


class CopyError(Exception):
    """A failure shown to the user (redacted before printing)."""


class Stopped(Exception):
    """The copy was asked to stop."""


@dataclass(frozen=True)
class Info:
    is_dir: bool
    size: int = 0
    mtime_ns: int | None = None


class _Temps:
    """Temporary local files being written, removed on a stop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._paths: set[str] = set()

    def add(self, path: str) -> None:
        with self._lock:
            self._paths.add(path)

    def discard(self, path: str) -> None:
        with self._lock:
            self._paths.discard(path)

    def remove_all(self) -> None:
        with self._lock:
            paths = list(self._paths)
            self._paths.clear()
        for p in paths:
            with contextlib.suppress(OSError):
                os.unlink(p)


TEMPS = _Temps()


class LocalWriter:
    def __init__(self, final: str, check_parent) -> None:
        self.final = final
        parent, name = os.path.split(final)
        check_parent(parent)  # before creating anything: existing symlinks are resolved
        os.makedirs(parent, exist_ok=True)
        check_parent(parent)
        self.tmp = os.path.join(parent, f".distcp.{name[:200]}.{secrets.token_hex(4)}.tmp")
        fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
        TEMPS.add(self.tmp)
        self.f = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> None:
        self.f.write(data)

    def commit(self) -> None:
        self.f.close()
        os.replace(self.tmp, self.final)
        TEMPS.discard(self.tmp)

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self.f.close()
        with contextlib.suppress(OSError):
            os.unlink(self.tmp)
        TEMPS.discard(self.tmp)


class LocalSide:
    """The local file system, confined to the roots (when any), never the service's files.

    ``roots``: where reads may be; ``write_roots`` (default: ``roots``): where writes may be;
    ``rooted`` (default: any roots given): False lets any path but the ``forbidden`` ones.
    """

    kind = "local"

    def __init__(
        self,
        roots: list[str],
        warn,
        *,
        write_roots: list[str] | None = None,
        rooted: bool | None = None,
        forbidden: list[str] | tuple[str, ...] = (),
    ) -> None:
        self.roots = [Path(r) for r in roots]
        self.write_roots = self.roots if write_roots is None else [Path(r) for r in write_roots]
        self.rooted = bool(self.roots or self.write_roots) if rooted is None else bool(rooted)
        self.forbidden = [Path(f) for f in forbidden]
        self.warn = warn
        self.target_base: Path | None = None  # set for the target side

    def allowed(self, real: Path, *, write: bool = False) -> bool:
        if any(real.is_relative_to(f) or f.is_relative_to(real) for f in self.forbidden):
            return False
        if not self.rooted:
            return True
        return any(real.is_relative_to(r) for r in (self.write_roots if write else self.roots))

    def info(self, path: str) -> Info | None:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        except NotADirectoryError:
            return None
        if stat.S_ISDIR(st.st_mode):
            return Info(True, 0, st.st_mtime_ns)
        if stat.S_ISREG(st.st_mode):
            return Info(False, st.st_size, st.st_mtime_ns)
        raise CopyError(f"{path} is not a regular file or directory")

    def join(self, root: str, rel: str) -> str:
        return os.path.join(root, rel) if rel else root

    def walk(
        self, root: str, shown: str, *, as_target: bool = False
    ) -> Iterator[tuple[str, Info, str]]:
        """(relative path, info, path to read) below ``root``; symlinks per the module doc.

        ``as_target``: listing what exists at the target, where a symlink or special file is
        just something in the way (reported as a file, never followed).
        """
        stack = [""]
        while stack:
            rel_dir = stack.pop()
            here = self.join(root, rel_dir)
            try:
                entries = sorted(os.scandir(here), key=lambda e: e.name)
            except OSError as exc:
                raise CopyError(f"cannot list {shown}/{rel_dir}: {exc.strerror or exc}") from None
            for e in entries:
                rel = f"{rel_dir}/{e.name}" if rel_dir else e.name
                try:
                    if as_target and (e.is_symlink() or not e.is_dir(follow_symlinks=False)):
                        st = e.stat(follow_symlinks=False)
                        yield rel, Info(False, st.st_size, st.st_mtime_ns), e.path
                    elif e.is_symlink():
                        real = Path(e.path).resolve()
                        if not real.is_file() or not self.allowed(real):
                            self.warn(f"skipped symlink {shown}/{rel} (not a file under the roots)")
                            continue
                        st = real.stat()
                        yield rel, Info(False, st.st_size, st.st_mtime_ns), str(real)
                    elif e.is_dir(follow_symlinks=False):
                        st = e.stat(follow_symlinks=False)
                        yield rel, Info(True, 0, st.st_mtime_ns), e.path
                        stack.append(rel)
                    elif e.is_file(follow_symlinks=False):
                        st = e.stat(follow_symlinks=False)
                        yield rel, Info(False, st.st_size, st.st_mtime_ns), e.path
                    else:
                        self.warn(f"skipped special file {shown}/{rel}")
                except FileNotFoundError:
                    continue  # vanished while listing

    def open_read(self, path: str):
        return open(path, "rb", buffering=0)  # noqa: SIM115 - closed by the caller

    def _check_target_dir(self, directory: str) -> None:
        if self.target_base is None:
            return
        real = Path(directory).resolve()
        if not (real == self.target_base or real.is_relative_to(self.target_base)):
            raise CopyError(f"target directory {directory} resolves outside the target")

    def writer(self, path: str) -> LocalWriter:
        return LocalWriter(path, self._check_target_dir)

    def mkdir(self, path: str) -> None:
        self._check_target_dir(path)
        try:
            os.makedirs(path, exist_ok=True)
        except FileExistsError:
            raise CopyError(f"cannot create directory {path}: a file is in the way") from None
        self._check_target_dir(path)


class ArrowWriter:
    def __init__(self, fs, final: str, via_temp: bool) -> None:
        self.fs = fs
        self.final = final
        self.path = final
        if via_temp:  # HDFS: a rename is cheap and atomic
            parent, _, name = final.rpartition("/")
            self.path = f"{parent}/.distcp.{name}.{secrets.token_hex(4)}.tmp"
        self.stream = fs.open_output_stream(self.path)

    def write(self, data: bytes) -> None:
        self.stream.write(data)

    def commit(self) -> None:
        self.stream.close()
        if self.path != self.final:
            self.fs.move(self.path, self.final)

    def abort(self) -> None:
        _ABANDONED.append(self.stream)  # never closed: the upload is never completed
        if self.path != self.final:
            with contextlib.suppress(Exception):
                self.stream.close()
                self.fs.delete_file(self.path)


class ArrowSide:
    """An object store (S3FileSystem) or HDFS (HadoopFileSystem) through pyarrow.fs."""

    def __init__(self, kind: str, fs) -> None:
        from pyarrow import fs as pafs

        self.kind = kind
        self.fs = fs
        self._ft = pafs.FileType
        self._selector = pafs.FileSelector

    def _info(self, fi) -> Info | None:
        if fi.type == self._ft.NotFound:
            return None
        if fi.type == self._ft.Directory:
            return Info(True, 0, fi.mtime_ns)
        if fi.type == self._ft.File:
            return Info(False, int(fi.size or 0), fi.mtime_ns)
        raise CopyError(f"{fi.path} is not a file or directory")

    def info(self, path: str) -> Info | None:
        return self._info(self.fs.get_file_info(path))

    def join(self, root: str, rel: str) -> str:
        if not rel:
            return root
        return f"{root.rstrip('/')}/{rel}"

    def walk(
        self, root: str, shown: str, *, as_target: bool = False
    ) -> Iterator[tuple[str, Info, str]]:
        prefix = root.rstrip("/") + "/"
        for fi in self.fs.get_file_info(self._selector(root, recursive=True)):
            path = fi.path
            if not path.startswith(prefix):
                idx = path.find(prefix)  # HDFS may answer with full URIs
                if idx < 0:
                    continue
                path = path[idx:]
            rel = path[len(prefix) :].strip("/")
            if not rel:
                continue
            info = self._info(fi)
            if info is not None:
                yield rel, info, self.join(root, rel)

    def open_read(self, path: str):
        return self.fs.open_input_stream(path)

    def writer(self, path: str) -> ArrowWriter:
        return ArrowWriter(self.fs, path, via_temp=self.kind == "hdfs")

    def mkdir(self, path: str) -> None:
        self.fs.create_dir(path, recursive=True)
