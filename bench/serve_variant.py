"""``mrs-jobs serve`` with prototype changes applied in-process, to measure them without
editing src/ (the service's code is not modified on disk).

    MRS_BENCH_PATCHES=nodelay[,purge_scan_once][,auth_cache][,analyze] python bench/serve_variant.py

- ``nodelay``: the listening socket is created with ``IPPROTO_TCP`` (as
  ``socket.socket(family, SOCK_STREAM, IPPROTO_TCP)`` in ``mrs_jobs/server.py`` would), so
  asyncio sets TCP_NODELAY on each accepted connection. Today the socket is created with
  protocol 0, asyncio's ``_set_nodelay`` skips it, and every response with a body waits for the
  client's delayed ACK (Nagle): ~40 ms per request.
- ``purge_scan_once``: the supervisor's purge sweeps stragglers with one /proc scan per pass
  instead of one per purged job (``Supervisor._sweep`` called per job in ``_purge``).
- ``auth_cache``: the AK lookup (a read transaction + AES-GCM open per request) is cached for
  5 seconds per access key.
- ``pk_lookup``: batch delete reads and marks its ids through the primary key only (scope
  checked in Python), see ``_pk_lookup``.
- ``analyze``: SQLite only: ``ANALYZE`` once before serving, so the planner has statistics
  (``sqlite_stat1``) and stops choosing ``ix_jobs_deleted`` / the scope index for queries that
  should use the primary key or the state index.
"""

from __future__ import annotations

import os
import socket as _socket
import sys
import time
import types


def _nodelay() -> None:
    import mrs_jobs.server as server

    def make(family: int = _socket.AF_INET, *args: object, **kwargs: object) -> _socket.socket:
        if args or kwargs:
            return _socket.socket(family, *args, **kwargs)  # type: ignore[arg-type]
        return _socket.socket(family, _socket.SOCK_STREAM, _socket.IPPROTO_TCP)

    shim = types.SimpleNamespace(
        **{k: getattr(_socket, k) for k in dir(_socket) if not k.startswith("__")}
    )
    shim.socket = make
    server.socket = shim  # type: ignore[attr-defined]


def _purge_scan_once() -> None:
    from mrs_jobs.supervisor import loop

    original_purge = loop.Supervisor._purge

    def _purge(self):  # type: ignore[no-untyped-def]
        marked = None

        def sweep_once(job_id: str) -> int:
            nonlocal marked
            if marked is None:  # one /proc scan for the whole pass
                marked = loop.find_marked_processes(loop.INSTANCE_VARIABLE, self.instance)
            killed = 0
            for pid, owner in marked.items():
                if owner == job_id:
                    try:
                        os.kill(pid, 9)
                        killed += 1
                    except (ProcessLookupError, PermissionError):
                        pass
            return killed

        self._sweep = sweep_once
        try:
            return original_purge(self)
        finally:
            del self._sweep

    loop.Supervisor._purge = _purge


def _auth_cache() -> None:
    from mrs_jobs.services import tenants

    original = tenants.TenantService.credential_for_ak
    cache: dict[str, tuple[float, object]] = {}

    def credential_for_ak(self, access_key: str):  # type: ignore[no-untyped-def]
        now = time.monotonic()
        hit = cache.get(access_key)
        if hit is not None and now - hit[0] < 5.0:
            return hit[1]
        cred = original(self, access_key)
        cache[access_key] = (now, cred)
        return cred

    tenants.TenantService.credential_for_ak = credential_for_ak


def _analyze() -> None:
    """SQLite only: give the query planner statistics before serving (ANALYZE)."""
    from mrs_jobs.settings import get_settings
    from mrs_jobs.store import Store

    url = get_settings().effective_database_url
    if not url.startswith("sqlite"):
        return
    store = Store(url)
    t0 = time.perf_counter()
    with store.write() as conn:
        conn.exec_driver_sql("ANALYZE")
    store.dispose()
    print(
        f"serve_variant: ANALYZE took {time.perf_counter() - t0:.1f}s", file=sys.stderr, flush=True
    )


def _pk_lookup() -> None:
    """Batch delete looks its ids up by primary key only and checks the scope in Python, and
    marks them with ``UPDATE ... WHERE id IN (...)`` (rows already verified, and locked on
    PostgreSQL, in the same transaction): no plan can then scan the cluster per chunk."""
    from sqlalchemy import select, update

    from mrs_jobs.store import jobs as job_store
    from mrs_jobs.store.tables import jobs

    def find_visible_ids(conn, project_id, cluster_id, ids, *, lock=False):  # type: ignore[no-untyped-def]
        wanted = sorted({i for i in ids if "\x00" not in i})
        found: dict[str, str] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            q = select(
                jobs.c.id, jobs.c.state, jobs.c.project_id, jobs.c.cluster_id, jobs.c.deleted_ms
            ).where(jobs.c.id.in_(chunk))
            if lock:
                q = q.order_by(jobs.c.id).with_for_update()
            for row in conn.execute(q):
                if (row.project_id, row.cluster_id, row.deleted_ms) == (project_id, cluster_id, 0):
                    found[row.id] = row.state
        return found

    def mark_deleted(conn, project_id, cluster_id, ids, at_ms):  # type: ignore[no-untyped-def]
        total = 0
        for start in range(0, len(ids), 500):
            res = conn.execute(
                update(jobs).where(jobs.c.id.in_(ids[start : start + 500])).values(deleted_ms=at_ms)
            )
            total += res.rowcount
        return total

    job_store.find_visible_ids = find_visible_ids
    job_store.mark_deleted = mark_deleted


PATCHES = {
    "nodelay": _nodelay,
    "pk_lookup": _pk_lookup,
    "purge_scan_once": _purge_scan_once,
    "auth_cache": _auth_cache,
    "analyze": _analyze,
}


def main() -> int:
    for name in filter(None, os.environ.get("MRS_BENCH_PATCHES", "").split(",")):
        PATCHES[name.strip()]()
        print(f"serve_variant: patch {name} applied", file=sys.stderr, flush=True)
    from mrs_jobs.server import run_server
    from mrs_jobs.settings import get_settings

    return run_server(get_settings())


if __name__ == "__main__":
    sys.exit(main())
