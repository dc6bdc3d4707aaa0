"""Batch delete (contract §8, the seed): all or nothing, live jobs hidden then killed.

The request transaction only validates and marks; the supervisor kills any engine process and
purges the record, logs, results and staged files once the process is confirmed dead. So the
call is fast, atomic, and never leaves a process running without a record.
"""

from __future__ import annotations

from collections.abc import Sequence

from mrs_jobs.domain.states import LIVE_STATES, JobState
from mrs_jobs.domain.validation import MAX_BATCH_IDS
from mrs_jobs.errors import (
    BatchDeleteFailed,
    ClusterNotFound,
    DomainError,
    InvalidParameter,
    JobNotFound,
    PermissionDenied,
    StoreFailure,
)
from mrs_jobs.services.context import Caller, Waker
from mrs_jobs.services.ownership import DELETE_ANY, record_denial, require_owner
from mrs_jobs.store import Store
from mrs_jobs.store import jobs as job_store
from mrs_jobs.store.audit import record_audit
from mrs_jobs.store.tenants import get_cluster

__all__ = ["BatchDeleteService", "normalise_ids"]

_LAUNCHED = {JobState.ACCEPTED.value, JobState.RUNNING.value}
_LIVE = {s.value for s in LIVE_STATES}


def normalise_ids(job_id_list: Sequence[object]) -> list[str]:
    """1-1,000 strings, repeated ids counted once, order kept."""
    if not job_id_list:
        raise InvalidParameter("job_id_list must contain at least one job id.")
    if len(job_id_list) > MAX_BATCH_IDS:
        raise InvalidParameter(
            f"job_id_list has {len(job_id_list)} ids; at most {MAX_BATCH_IDS} are allowed."
        )
    ids: dict[str, None] = {}
    for i, item in enumerate(job_id_list):
        if not isinstance(item, str):
            raise InvalidParameter(f"job_id_list[{i}] must be a string.")
        ids[item] = None
    return list(ids)


class BatchDeleteService:
    def __init__(self, store: Store, *, wake: Waker) -> None:
        self.store = store
        self.wake = wake

    def delete(self, caller: Caller, cluster_id: str, job_id_list: Sequence[object]) -> int:
        """Returns how many of the jobs had a launched engine (their kill is now pending)."""
        ids = normalise_ids(job_id_list)
        try:
            with self.store.write() as conn:
                cluster = get_cluster(conn, caller.project_id, cluster_id)
                if cluster is None:
                    raise ClusterNotFound(cluster_id)
                require_owner(conn, caller, cluster, ids, DELETE_ANY)
                at = job_store.now_ms()
                # One statement hides them all; any id it did not hide (unknown, of another
                # scope, already deleted, or hidden by a concurrent delete) undoes the lot.
                found = job_store.hide_visible(conn, caller.project_id, cluster_id, ids, at)
                missing = [i for i in ids if i not in found]
                if missing:
                    raise JobNotFound(missing)
                # "live" as the contract means it (any non-terminal state); "running" are the
                # launched ones whose engine process the supervisor must kill first.
                live = sum(1 for s in found.values() if s in _LIVE)
                running = sum(1 for s in found.values() if s in _LAUNCHED)
                record_audit(
                    conn,
                    at_ms=at,
                    action="batch_delete",
                    project_id=caller.project_id,
                    cluster_id=cluster_id,
                    credential_id=caller.credential_id,
                    request_id=caller.request_id,
                    detail={"job_ids": ids, "live": live, "running": running, "count": len(ids)},
                    outcome="deleted",
                    **caller.decision,
                )
        except PermissionDenied as exc:  # the owner scope: refused, audited, nothing changed
            record_denial(self.store, caller, exc.action, cluster_id, {"job_ids": ids})
            raise
        except StoreFailure as exc:
            raise BatchDeleteFailed() from exc
        except DomainError:
            raise
        self.wake()
        return running
