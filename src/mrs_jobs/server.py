"""``mrs-jobs serve``: store, first-run bootstrap, supervisor and HTTP server in one process
(``--workers N``: N API processes, server_workers.py)."""

from __future__ import annotations

import fcntl
import logging
import os
import shlex
import signal
import socket
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING

from mrs_jobs.server_http import BACKLOG, Terminated, raise_terminated, uvicorn_server
from mrs_jobs.settings import Settings

if TYPE_CHECKING:
    from mrs_jobs.engines.registry import EngineRegistry
    from mrs_jobs.secretbox import SecretBox
    from mrs_jobs.store import Store
    from mrs_jobs.supervisor.containment import Containment
    from mrs_jobs.supervisor.loop import Supervisor

__all__ = ["run_server"]

log = logging.getLogger("mrs_jobs")


def _lock_sqlite(settings: Settings) -> IO[str] | None:
    """SQLite means one writing server: refuse a second one on the same file, clearly."""
    if settings.database_url and not settings.database_url.startswith("sqlite"):
        return None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    fh = open(settings.data_dir / "serve.lock", "a+")  # noqa: SIM115 - held for the lifetime
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise SystemExit(
            f"mrs-jobs: another server already uses the SQLite store in {settings.data_dir}; "
            "SQLite allows one server. Stop it, use another MRS_JOBS_DATA_DIR, or use "
            "PostgreSQL (MRS_JOBS_DATABASE_URL) for several instances."
        ) from None
    fh.seek(0)
    fh.truncate()
    fh.write(str(os.getpid()))
    fh.flush()
    return fh


def _cli_command(data_dir: Path) -> str:
    """How to run this installation's CLI against this service's data directory."""
    exe = Path(sys.executable).parent / "mrs-jobs"
    cli = str(exe) if exe.exists() else "mrs-jobs"
    if data_dir.expanduser().resolve() != (Path.home() / ".mrs-jobs").resolve():
        cli = f"MRS_JOBS_DATA_DIR={shlex.quote(str(data_dir))} {cli}"
    return cli


def _snippet(endpoint: str, project_id: str, cluster_id: str, bootstrap: Path) -> str:
    """What serve prints once up. Only the SDK snippet is indented 4 spaces: tests run the
    lines so indented as the snippet."""
    cli = _cli_command(bootstrap.parent)
    return f"""
mrs-jobs is running at {endpoint}
  project_id:   {project_id}
  cluster_id:   {cluster_id}
  credentials:  {bootstrap} (ak, sk; mode 0600)
  web console:  {endpoint}/console/
  a token:      {cli} admin create-token {project_id}
  command line: {cli} list   (submit, show, logs, wait, kill, delete; --help)
  API:          docs/api.md; a token works with curl: -H "X-Auth-Token: $TOKEN"

Call it with MRS's official Python SDK (pip install huaweicloudsdkmrs):

    import json
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkmrs.v2 import MrsClient, ShowJobExeListNewRequest
    b = json.load(open("{bootstrap}"))
    client = (MrsClient.new_builder()
              .with_credentials(BasicCredentials(b["ak"], b["sk"], b["project_id"]))
              .with_endpoints([b["endpoint"]]).build())
    print(client.show_job_exe_list_new(ShowJobExeListNewRequest(cluster_id=b["cluster_id"])))
"""


def _containment_or_exit(settings: Settings, store: Store) -> Containment:
    """Jobs are boxed here, or the operator accepted that they are not (else: exit, why)."""
    from mrs_jobs.services.projects import ProjectService
    from mrs_jobs.supervisor.containment import UncontainedRefused, startup_check

    try:
        return startup_check(settings, ProjectService(store).count())
    except UncontainedRefused as exc:
        store.dispose()
        raise SystemExit(f"mrs-jobs: {exc}") from None


def _open_store(settings: Settings) -> tuple[Store, SecretBox]:
    """The migrated store and the key, every stored secret checked to open (else: exit)."""
    from mrs_jobs.datadir import admit_job_users
    from mrs_jobs.secretbox import SecretKeyError, load_secret_box
    from mrs_jobs.services.job_secrets import seal_live_job_secrets
    from mrs_jobs.services.sealed_keys import check_secrets
    from mrs_jobs.store import Store

    store = Store(settings.effective_database_url)
    store.migrate()
    admit_job_users(settings, store)
    try:
        box = load_secret_box(settings)
        check_secrets(store, box)
        seal_live_job_secrets(store, box)
    except SecretKeyError as exc:
        store.dispose()
        raise SystemExit(f"mrs-jobs: secret key: {exc}") from None
    return store, box


def _listen(settings: Settings) -> tuple[socket.socket, str]:
    """The bound listening socket and the endpoint clients are told."""
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only when the
    # listening socket says TCP, else every response body waits ~40 ms for a delayed ACK.
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    # Listening now, before the greeting is printed: a client that calls as soon as it reads
    # "running at" waits in the backlog until uvicorn accepts, instead of being refused.
    sock.listen(BACKLOG)
    port = sock.getsockname()[1]
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return sock, settings.public_endpoint or f"http://{host}:{port}"


def _first_run(settings: Settings, store: Store, box: SecretBox, endpoint: str) -> str:
    """Bootstrap an empty store (or keep bootstrap.json's endpoint current); returns what to
    print once the service is up: how to call it."""
    from mrs_jobs.services.bootstrap import (
        bootstrap,
        update_bootstrap_endpoint,
        write_bootstrap_file,
    )

    path = settings.data_dir / "bootstrap.json"
    boot = bootstrap(
        store,
        box,
        max_running=settings.default_max_running,
        max_queued=settings.default_max_queued,
        parallelism=settings.local_parallelism,
        output_roots=settings.bootstrap_output_roots,
    )
    if boot is not None:
        write_bootstrap_file(path, endpoint, boot)
        info: dict[str, str] | None = {"project_id": boot.project_id, "cluster_id": boot.cluster_id}
    else:
        info = update_bootstrap_endpoint(path, endpoint)
    if info:
        return _snippet(endpoint, info["project_id"], info["cluster_id"], path)
    return f"mrs-jobs is running at {endpoint}"


def _run_workers(
    settings: Settings,
    sock: socket.socket,
    endpoint: str,
    supervisor: Supervisor | None,
    registry: EngineRegistry,
    greeting: str,
    store: Store,
    lock: IO[str] | None,
) -> int:
    """``serve --workers N`` (server_workers.py); this process keeps the store, the lock and
    the supervisor, and closes them after the API processes and the supervisor stopped."""
    from mrs_jobs.server_workers import run_workers

    try:
        run_workers(settings, sock, endpoint, supervisor, registry.job_types, greeting)
    finally:
        store.dispose()
        if lock is not None:
            lock.close()
    return 0


def run_server(settings: Settings) -> int:
    from mrs_jobs.api.app import create_app
    from mrs_jobs.datadir import secure_data_dir
    from mrs_jobs.engines.registry import EngineRegistry
    from mrs_jobs.logging_setup import configure_logging
    from mrs_jobs.supervisor.loop import Supervisor

    configure_logging(settings.log_level, settings.log_format, sys.stderr)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    secure_data_dir(settings)  # umask 0077 before the lock, the store or the key is written
    lock = _lock_sqlite(settings)
    store, box = _open_store(settings)
    sock, endpoint = _listen(settings)
    greeting = _first_run(settings, store, box, endpoint)  # before the containment check
    boxes = _containment_or_exit(settings, store) if settings.run_supervisor else None
    registry = EngineRegistry.from_settings(settings, boxes.policy if boxes else None, endpoint)
    supervisor = None
    if boxes is not None:
        supervisor = Supervisor(store, settings, registry, secrets=box, boxes=boxes)
    if settings.workers > 1:  # N API processes on this socket, the supervisor stays here
        return _run_workers(settings, sock, endpoint, supervisor, registry, greeting, store, lock)
    app = create_app(
        settings,
        store,
        runnable_types=registry.job_types,
        wake=supervisor.wake if supervisor else (lambda: None),
        supervisor_id=supervisor.id if supervisor else None,
        history=registry.history if supervisor else None,
    )
    if supervisor is not None:
        supervisor.start()
    print(greeting, flush=True)
    server = uvicorn_server(settings, app)
    # Open event streams end as soon as the server is told to stop (not after its grace time).
    app.state.ctx.feed.hub.stop_when(lambda: server.should_exit)
    # uvicorn shuts down gracefully on SIGTERM, then re-raises the signal under the handler that
    # was installed before it started: with the default one the process would die right there,
    # before the supervisor's orderly stop below. Ours turns it into an exception instead.
    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        server.run(sockets=[sock])
    except Terminated:
        log.info("server.stopped", extra={"signal": "TERM"})
    finally:
        signal.signal(signal.SIGTERM, previous)
        if supervisor is not None:
            supervisor.stop()
        store.dispose()
        if lock is not None:
            lock.close()
    return 0
