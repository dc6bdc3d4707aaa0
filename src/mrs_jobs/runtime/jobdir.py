"""The job directory's files: every name, and each file read or written as a record.

A job directory is the service's second store, next to the database: what an engine wrote at
build time (its record, its private configs), what the runtime wrote (the launch record, the
logs, the exit status) and what the job's process wrote back (progress, SQL results). This
module owns the names and the formats, as ``store/`` owns the tables.

When jobs run as their own user, that user owns the directory and may replace any file in it
with a symlink: files are read without following one (``fsutil``), capped, and the private
files (0600, possibly secret) are written by :func:`write_private` only, which never follows a
symlink either.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mrs_jobs.fsutil import read_capped
from mrs_jobs.runtime.launch import LaunchSpec

__all__ = [
    "append_log",
    "DISTCP_CONFIG",
    "ENGINE_RECORD",
    "EXIT",
    "JOB_LOGS",
    "LAUNCH",
    "PROGRESS",
    "SHIM_STARTED",
    "SQL_RESULTS",
    "SQL_SPEC",
    "STDERR",
    "STDOUT",
    "SqlProgress",
    "drop_secret_files",
    "read_engine_record",
    "read_json",
    "read_launch",
    "read_sql_progress",
    "read_sql_results",
    "write_engine_record",
    "write_json_atomic",
    "write_private",
]

# Written by the runtime (launch record, shim) -------------------------------------------
LAUNCH = "launch.json"  # argv, environment (may hold secrets), box: 0600
EXIT = "exit.json"  # how the run ended, written last by the shim
#: Written by the shim before it starts the engine: without it the engine provably never ran.
SHIM_STARTED = "shim.started"
STDOUT = "stdout.log"
STDERR = "stderr.log"
JOB_LOGS = (STDOUT, STDERR)
# Written by an engine's build() ---------------------------------------------------------
ENGINE_RECORD = "engine.json"  # what the engine needs later to follow the job; no secrets
SQL_SPEC = "sql.json"  # an SQL job's statements and the server's password: 0600
DISTCP_CONFIG = "distcp.json"  # a copy's paths and object-store keys: 0600
# Written by the job's own process -------------------------------------------------------
PROGRESS = "progress.json"  # DistCp's and SQL jobs' progress
SQL_RESULTS = "sql_results.json"  # rows per statement of an SQL job

_RECORD_CAP = 4 * 1024 * 1024


def write_private(path: Path, data: str | bytes) -> None:
    """Write a new ``path`` with mode 0600 whatever the umask or a file that was there: an
    old file (or a symlink planted in its place) is removed, never followed."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        os.fchmod(fh.fileno(), 0o600)
        fh.write(data.encode("utf-8") if isinstance(data, str) else data)


def append_log(workdir: Path, name: str, text: str) -> bool:
    """Append ``text`` to the job's log ``name`` (one of :data:`JOB_LOGS`), never through a
    symlink and never to anything but a regular file; False when it could not."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(workdir / name, flags, 0o600)
    except OSError:
        return False
    with os.fdopen(fd, "ab") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            return False
        fh.write(text.encode("utf-8", errors="replace"))
    return True


def write_json_atomic(path: Path, data: Any) -> None:
    """Replace ``path`` with ``data`` as JSON in one step (readers never see half a file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write_private(tmp, json.dumps(data) + "\n")
    os.replace(tmp, path)


def read_json(path: Path, cap: int = _RECORD_CAP) -> Any:
    """The JSON value of a regular file (not a symlink, at most ``cap`` bytes); None when it
    is missing, too large or not JSON."""
    raw = read_capped(path, cap)
    if raw is None:
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except ValueError:
        return None


def _object(value: Any) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def write_engine_record(workdir: Path, engine: str, **fields: Any) -> None:
    """``engine.json``: what an engine's build() recorded to follow the job (no secrets)."""
    write_private(workdir / ENGINE_RECORD, json.dumps({"engine": engine, **fields}) + "\n")


def read_engine_record(workdir: Path) -> dict[str, Any]:
    """What build() recorded in ``engine.json`` ({} when absent or unreadable). The job's
    user may write the file: whatever can be taken from the cluster is taken from there."""
    return _object(read_json(workdir / ENGINE_RECORD)) or {}


def read_launch(workdir: Path) -> LaunchSpec | None:
    """The launch record the runtime wrote (None when missing or unreadable)."""
    data = _object(read_json(workdir / LAUNCH))
    try:
        return (
            None
            if data is None
            else LaunchSpec(
                argv=list(data["argv"]),
                env=dict(data["env"]),
                cwd=str(data["cwd"]),
                notes=list(data.get("notes", [])),
                detached=bool(data.get("detached", False)),
            )
        )
    except (KeyError, TypeError, ValueError):
        return None


def read_sql_results(workdir: Path) -> dict[str, list[dict[str, str]]] | None:
    """Per-statement rows an SQL job process left in its directory (see runners/sql.py)."""
    return _object(read_json(workdir / SQL_RESULTS, 64 * 1024 * 1024))


@dataclass(frozen=True)
class SqlProgress:
    """Statements done out of the total, as an SQL job's process reports them."""

    done: int = 0
    total: int = 1

    @property
    def percent(self) -> float:
        return 100.0 * self.done / max(1, self.total)


def read_sql_progress(workdir: Path) -> SqlProgress | None:
    data = _object(read_json(workdir / PROGRESS))
    try:
        return None if data is None else SqlProgress(int(data["done"]), int(data["total"]))
    except (KeyError, TypeError, ValueError):
        return None


def drop_secret_files(workdir: Path, names: Iterable[str]) -> None:
    """Remove files and directories that may hold secrets (``names`` relative to
    ``workdir``; a symlink is removed, never followed); logs and results stay."""
    for name in dict.fromkeys(names):
        path = workdir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                path.unlink()
