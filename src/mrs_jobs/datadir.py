"""The data directory kept private: 0700, every file the service creates in it 0600.

It holds the SQLite store (every project's sealed SKs and jobs), the sealing key,
bootstrap.json (an SK in plain text) and the job directories. Each entry point that starts the
service, the supervisor or an administration command calls :func:`secure_data_dir` before it
writes there: the process umask becomes 0077, so whatever is created afterwards (the store's
``-wal``/``-shm``, locks, job directories, engine files) is private from the first byte, and
an install made before this (a 0644 store, a 0755 directory) is tightened on its next start.

A job user (``MRS_JOBS_JOB_USER``, a cluster's ``run_as_user``) must reach its job directory
under ``<data dir>/jobs``: then the data and jobs directories are 0711 (search only: no
listing, no file of the service readable). Clusters are read from the store, so the entry
points call :func:`admit_job_users` once it is migrated.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from mrs_jobs.settings import Settings
    from mrs_jobs.store import Store

__all__ = ["PRIVATE_FILES", "admit_job_users", "secure_data_dir"]

log = logging.getLogger(__name__)

#: Files of the service at the top of the data directory (the SQLite ones wherever it is).
PRIVATE_FILES = ("secret.key", "bootstrap.json", "serve.lock", "supervise.lock")
_SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def secure_data_dir(settings: Settings) -> Path:
    """Set the umask to 0077, create the data directory if needed and tighten what exists.

    Call it before anything is written there. Modes that cannot be changed (a file of another
    owner) are logged, never fatal.
    """
    os.umask(0o077)
    data = settings.data_dir
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    dir_mode = _dir_mode(bool((settings.job_user or "").strip()))
    _chmod(data, dir_mode)
    for name in PRIVATE_FILES:
        _chmod(data / name, 0o600)
    for path in _sqlite_files(settings.effective_database_url):
        _chmod(path, 0o600)
    jobs = settings.jobs_dir
    if dir_mode != 0o700:  # made now, or the supervisor would make it 0700 (the umask)
        jobs.mkdir(exist_ok=True, mode=dir_mode)
    if jobs.is_dir() and not jobs.is_symlink():
        _chmod(jobs, dir_mode)
        _tighten_job_dirs(jobs)
    return data


def admit_job_users(settings: Settings, store: Store) -> None:
    """Make the data and jobs directories searchable (0711) if a cluster runs its jobs as
    another user (``run_as_user``); after :func:`secure_data_dir`, on the migrated store."""
    from mrs_jobs.store.tenants import list_clusters

    with store.read() as conn:
        wanted = any(str(c.config.get("run_as_user") or "").strip() for c in list_clusters(conn))
    if wanted:
        mode = _dir_mode(True)
        settings.jobs_dir.mkdir(parents=True, exist_ok=True, mode=mode)
        for directory in (settings.data_dir, settings.jobs_dir):
            _chmod(directory, mode)


def _dir_mode(job_user: bool) -> int:
    return 0o711 if job_user else 0o700


def _sqlite_files(url: str) -> list[Path]:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return []
    if parsed.database == ":memory:":
        return []
    return [Path(parsed.database + suffix) for suffix in _SQLITE_SUFFIXES]


def _tighten_job_dirs(jobs: Path) -> None:
    """Job directories are 0700 (their owner may be a job user); older ones may be looser."""
    with os.scandir(jobs) as entries:
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) & 0o077:
                _chmod(Path(entry.path), 0o700)


def _chmod(path: Path, mode: int) -> None:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode) or stat.S_IMODE(st.st_mode) == mode:
        return
    try:
        os.chmod(path, mode, follow_symlinks=False)
    except OSError as exc:
        fields = {"path": str(path), "mode": f"{mode:o}", "error": exc.strerror or str(exc)}
        log.warning("datadir.chmod_failed", extra=fields)
        return
    was = stat.S_IMODE(st.st_mode)
    log.info("datadir.tightened", extra={"path": str(path), "mode": f"{mode:o}", "was": f"{was:o}"})
