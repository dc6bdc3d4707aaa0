"""``mrs-jobs supervise``: the job supervisor alone, without the HTTP API.

For deployments that split roles: API servers run ``MRS_JOBS_RUN_SUPERVISOR=false mrs-jobs
serve`` and supervisor hosts run this, all on one PostgreSQL. It is the same Supervisor as in
``serve`` (same store, engine registry, reconcile on start, orderly stop honouring
``kill_jobs_on_shutdown``); only the HTTP server is left out.
"""

from __future__ import annotations

import fcntl
import logging
import signal
import sys
import threading
from types import FrameType
from typing import IO

from mrs_jobs.settings import Settings

__all__ = ["run_supervise"]

log = logging.getLogger("mrs_jobs")


def _lock_data_dir(settings: Settings) -> IO[str] | None:
    """One supervisor per data directory: its id (host + store + data dir) must be unique.

    On SQLite it is the same lock as ``serve`` takes (one writing process per store file).
    """
    from mrs_jobs.server import _lock_sqlite

    lock = _lock_sqlite(settings)
    if lock is not None:
        return lock
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    fh = open(settings.data_dir / "supervise.lock", "a+")  # noqa: SIM115 - held for the lifetime
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise SystemExit(
            f"mrs-jobs: another supervisor already runs on the data directory "
            f"{settings.data_dir}; each supervisor needs its own MRS_JOBS_DATA_DIR."
        ) from None
    return fh


def run_supervise(settings: Settings) -> int:
    """Run the supervisor until SIGTERM or SIGINT; 0 after an orderly stop."""
    from mrs_jobs.datadir import admit_job_users, secure_data_dir
    from mrs_jobs.engines.registry import EngineRegistry
    from mrs_jobs.logging_setup import configure_logging
    from mrs_jobs.secretbox import SecretKeyError, load_secret_box
    from mrs_jobs.services.job_secrets import seal_live_job_secrets
    from mrs_jobs.store import Store
    from mrs_jobs.supervisor.loop import Supervisor

    configure_logging(settings.log_level, settings.log_format, sys.stderr)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    secure_data_dir(settings)  # umask 0077 before the lock, the store or the key is written
    lock = _lock_data_dir(settings)
    store = Store(settings.effective_database_url)
    store.migrate()
    admit_job_users(settings, store)
    try:
        box = load_secret_box(settings)  # opens the jobs' sealed secret values
        seal_live_job_secrets(store, box)
    except SecretKeyError as exc:
        store.dispose()
        raise SystemExit(f"mrs-jobs: secret key: {exc}") from None

    stopping = threading.Event()
    received: list[str] = []

    def _on_signal(signum: int, _frame: FrameType | None) -> None:
        received.append(signal.Signals(signum).name)
        stopping.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    from mrs_jobs.server import _containment_or_exit

    boxes = _containment_or_exit(settings, store)
    registry = EngineRegistry.from_settings(settings, boxes.policy)
    supervisor = Supervisor(store, settings, registry, secrets=box, boxes=boxes)
    started = False
    try:
        supervisor.start()
        started = True
        print(f"mrs-jobs supervisor is running as {supervisor.id}", flush=True)
        while not stopping.wait(1.0):
            pass
        log.info("supervisor.stopping", extra={"signal": received[0] if received else "?"})
    finally:
        if started:
            supervisor.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        store.dispose()
        if lock is not None:
            lock.close()
    log.info("supervisor.stopped")
    return 0
