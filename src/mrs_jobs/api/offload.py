"""Where a route's store call runs: in the API's worker threads, or inline for a short read.

A call into the service layer blocks (SQLAlchemy is synchronous), so routes hand it to the
worker threads (``run_in_threadpool``). For a one-row read on SQLite that hand-off costs more
than the read: a thread wake-up, two context switches and a GIL hand-over, and under load the
threads and the event loop fight for the GIL. :func:`read_inline` runs such a read on the event
loop instead when the store is SQLite (WAL: a reader never waits for a writer, and the loop
uses one pooled connection at a time). On PostgreSQL a read waits on the network, so it must
not block the loop: a v2 show reads through psycopg's async connections instead
(:func:`show_job`, ``store/async_reads.py``), and every other call goes to the threads. Only
reads that touch a handful of rows by key belong here (bench/README.md, "Issue 21": the
measured effect).

A v2 submit without an idempotency key is checked and sealed on the loop (CPU only) and
handed to the service's group commit (``services/group_commit.py``): its one writer thread
commits it with the submits that arrived alongside. A keyed submit runs in a worker thread in
a transaction of its own (its key is looked up and claimed there).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool

from mrs_jobs.domain.job import Job
from mrs_jobs.services.context import Caller
from mrs_jobs.services.jobs import JobService
from mrs_jobs.services.submits import Submitted
from mrs_jobs.store import Store

__all__ = ["read_inline", "show_job", "submit_job"]

P = ParamSpec("P")
T = TypeVar("T")


async def read_inline(store: Store, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)``: on the event loop on SQLite, in a worker thread otherwise."""
    if store.dialect.is_sqlite:
        return fn(*args, **kwargs)
    return await run_in_threadpool(fn, *args, **kwargs)


async def show_job(jobs: JobService, caller: Caller, cluster_id: str, job_id: str) -> Job:
    """A v2 show: inline on SQLite; on PostgreSQL one read on the event loop's async
    connections, and the worker threads only when that finds nothing (which error to give)."""
    if jobs.store.dialect.is_sqlite:
        return jobs.show(caller, cluster_id, job_id)
    job = await jobs.show_async(caller, cluster_id, job_id)
    if job is None:
        job = await run_in_threadpool(jobs.show, caller, cluster_id, job_id)
    return job


async def submit_job(
    jobs: JobService,
    caller: Caller,
    cluster_id: str,
    *,
    job_type: str,
    job_name: str,
    arguments: Sequence[str],
    properties: Mapping[str, str],
    idempotency_key: str | None,
) -> Submitted:
    """A v2 submit: group-committed, or (with a key) alone in a worker thread."""
    fields = {"job_type": job_type, "job_name": job_name}
    if idempotency_key is not None:
        keyed = partial(jobs.submit, arguments=arguments, properties=properties, **fields)
        return await run_in_threadpool(keyed, caller, cluster_id, idempotency_key=idempotency_key)
    pending = jobs.prepare_submit(
        caller, cluster_id, arguments=arguments, properties=properties, **fields
    )
    return await jobs.submits.run(pending)
