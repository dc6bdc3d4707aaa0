"""DistCp's plan and progress: which files are copied where, which directories are made, and
the progress file the engine reads (see :mod:`mrs_jobs.engines.runners.distcp` for the rules).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mrs_jobs.engines.runners.distcp_sides import PROGRESS_INTERVAL, CopyError, Info
from mrs_jobs.runtime import jobdir

__all__ = ["CopyRunner", "Planner", "Progress", "Task"]


class CopyRunner(Protocol):
    """What a plan needs of the copy that runs it (``runners/distcp.Runner``): declared here,
    so the plan does not import the runner that imports it."""

    cfg: dict[str, Any]
    update: bool
    overwrite: bool
    progress: Progress

    def side_for(self, spec: dict[str, Any]) -> Any: ...

    def check_stop(self) -> None: ...

    def _info(self, side: Any, path: str, shown: str) -> Info | None: ...


@dataclass
class Task:
    src_side: Any
    src: str
    dst: str
    size: int
    shown: str


class Progress:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock = threading.Lock()
        self.phase = "listing"
        self.files_total = self.files_done = self.files_skipped = 0
        self.bytes_total = self.bytes_done = self.bytes_skipped = 0
        self.dirs_created = 0
        self.started = time.time()
        self._written_at = 0.0
        self._final = False
        self._write_lock = threading.Lock()

    def add_bytes(self, n: int) -> None:
        with self.lock:
            self.bytes_done += n

    def file_done(self) -> None:
        with self.lock:
            self.files_done += 1

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "phase": self.phase,
                "files_total": self.files_total,
                "files_done": self.files_done,
                "files_skipped": self.files_skipped,
                "bytes_total": self.bytes_total,
                "bytes_done": self.bytes_done,
                "bytes_skipped": self.bytes_skipped,
                "dirs_created": self.dirs_created,
                "started_at": self.started,
                "updated_at": time.time(),
                "pid": os.getpid(),
            }

    def write(self, *, force: bool = False, final: bool = False) -> None:
        """Replace the progress file atomically; at most every PROGRESS_INTERVAL unless forced.

        After a ``final`` write (the outcome), nothing else is written.
        """
        with self._write_lock:
            now = time.monotonic()
            if self._final or (not force and now - self._written_at < PROGRESS_INTERVAL):
                return
            self._final = final
            try:
                jobdir.write_json_atomic(self.path, self.snapshot())
            except OSError:
                pass  # progress is best effort
            self._written_at = now


def _mtime(info: Info, coarse: bool) -> int:
    ns = info.mtime_ns or 0
    return ns // 1_000_000_000 if coarse else ns


def _shown(tshown: str, rel: str) -> str:
    return f"{tshown.rstrip('/')}/{rel}" if rel else tshown


@dataclass
class _Listing:
    """What lands under the target: relative path -> (info, side, source path, shown)."""

    tshown: str
    files: dict[str, tuple[Info, Any, str, str]] = field(default_factory=dict)
    dirs: dict[str, str] = field(default_factory=dict)  # relative dir -> source shown

    def add_file(self, rel: str, info: Info, side: Any, path: str, shown: str) -> None:
        if rel in self.files or rel in self.dirs:
            other = self.files[rel][3] if rel in self.files else self.dirs[rel]
            raise CopyError(
                f"duplicate target path {_shown(self.tshown, rel)} (from {other} and {shown})"
            )
        self.files[rel] = (info, side, path, shown)

    def add_dir(self, rel: str, shown: str) -> None:
        if rel in self.files:
            raise CopyError(
                f"duplicate target path {_shown(self.tshown, rel)} "
                f"(from {self.files[rel][3]} and {shown})"
            )
        self.dirs.setdefault(rel, shown)


class Planner:
    """One plan of a runner's copy: sources checked and listed, the target compared."""

    def __init__(self, runner: CopyRunner) -> None:
        self.runner = runner
        self.target = runner.cfg["target"]
        self.tside = runner.side_for(self.target)
        self.tpath: str = self.target["path"]
        self.tshown: str = self.target["uri"]

    def plan(self) -> tuple[list[str], list[Task], Any]:
        infos = self._sources()
        tinfo = self.runner._info(self.tside, self.tpath, self.tshown)
        if self.target["kind"] == "local":
            real = Path(self.tpath).resolve()
            if not self.tside.allowed(real, write=True):
                raise CopyError(f"target {self.tshown} is not an allowed path to write")
        target_is_dir = len(infos) > 1 or any(info.is_dir for _, _, info in infos)
        if target_is_dir and tinfo is not None and not tinfo.is_dir:
            raise CopyError(f"target {self.tshown} is a file, but the copy needs a directory there")
        listing = self._listing(infos, tinfo)
        existing: dict[str, Info] = {}  # what already exists at the target
        if tinfo is not None:
            if tinfo.is_dir:
                for rel, einfo, _ in self.tside.walk(self.tpath, self.tshown, as_target=True):
                    existing[rel] = einfo
            existing[""] = tinfo
        tasks = self._tasks(listing, existing)
        if target_is_dir and tinfo is None:
            listing.dirs.setdefault("", self.tshown)
        make_paths = [self.tside.join(self.tpath, r) for r in sorted(self._dirs(listing, existing))]
        if self.target["kind"] == "local":
            real = Path(self.tpath).resolve()
            self.tside.target_base = real if target_is_dir else real.parent
        return make_paths, tasks, self.tside

    def _sources(self) -> list[tuple[dict[str, Any], Any, Info]]:
        infos = []
        for s in self.runner.cfg["sources"]:
            side = self.runner.side_for(s)
            if s["kind"] == "local":
                real = Path(s["path"]).resolve()
                if not side.allowed(real):
                    raise CopyError(f"source {s['uri']} is not an allowed path to read")
                s = {**s, "path": str(real)}
            info = self.runner._info(side, s["path"], s["uri"])
            if info is None:
                raise CopyError(f"source not found: {s['uri']}")
            infos.append((s, side, info))
        return infos

    def _listing(self, infos: list, tinfo: Info | None) -> _Listing:
        """Where each source lands under the target (Hadoop DistCp's rule)."""
        n = len(infos)
        sync = self.runner.update or self.runner.overwrite
        listing = _Listing(self.tshown)
        for s, side, info in infos:
            self.runner.check_stop()
            if not info.is_dir:
                single = n == 1 and (tinfo is None or not tinfo.is_dir)
                listing.add_file("" if single else s["name"], info, side, s["path"], s["uri"])
                continue
            special = (n == 1 and tinfo is None) or sync
            base = "" if (special or s.get("root")) else s["name"]
            if base:
                listing.add_dir(base, s["uri"])
            for rel, einfo, epath in side.walk(s["path"], s["uri"]):
                self.runner.check_stop()
                trel = f"{base}/{rel}" if base else rel
                shown = f"{s['uri'].rstrip('/')}/{rel}"
                if einfo.is_dir:
                    listing.add_dir(trel, shown)
                else:
                    listing.add_file(trel, einfo, side, epath, shown)
        return listing

    def _tasks(self, listing: _Listing, existing: dict[str, Info]) -> list[Task]:
        """The files to copy: those the target lacks, or has older (-update), or all
        (-overwrite); the skipped ones are counted."""
        runner, progress, tasks = self.runner, self.runner.progress, []
        for rel, (info, side, path, shown) in listing.files.items():
            have = existing.get(rel)
            dst_shown = _shown(self.tshown, rel)
            if have is not None and have.is_dir:
                raise CopyError(f"cannot copy file {shown} onto directory {dst_shown}")
            if have is not None and not runner.overwrite:
                # Object stores keep whole seconds: compare at that precision when one is used.
                coarse = side.kind != "local" or self.tside.kind != "local"
                if not runner.update or (
                    have.size == info.size and _mtime(have, coarse) >= _mtime(info, coarse)
                ):
                    progress.files_skipped += 1
                    progress.bytes_skipped += info.size
                    continue
            tasks.append(Task(side, path, self.tside.join(self.tpath, rel), info.size, shown))
        for rel in listing.dirs:
            have = existing.get(rel)
            if have is not None and not have.is_dir:
                raise CopyError(
                    f"cannot create directory {_shown(self.tshown, rel)}: a file or symlink "
                    "is in the way"
                )
        return tasks

    def _dirs(self, listing: _Listing, existing: dict[str, Info]) -> list[str]:
        """Directories to create: all on a local target (parents of files are made anyway);
        on an object store only the empty ones (markers), the others being implicit."""
        if self.target["kind"] != "s3":
            return [r for r in listing.dirs if r not in existing]
        parents = set()  # ancestors of anything to be written: implicit
        for rel in [*listing.files, *listing.dirs]:
            parts = rel.split("/")
            parents.update("/".join(parts[:i]) for i in range(len(parts)))
        return [r for r in listing.dirs if r not in parents and r not in existing]
