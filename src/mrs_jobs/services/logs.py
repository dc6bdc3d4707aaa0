"""Reading a job's engine logs (extension, contract §2): byte ranges, tail-able."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mrs_jobs.errors import ClusterNotFound, InvalidParameter, JobNotFound
from mrs_jobs.fsutil import open_regular
from mrs_jobs.services.context import Caller
from mrs_jobs.store import Store
from mrs_jobs.store import jobs as job_store
from mrs_jobs.store.tenants import get_cluster

__all__ = ["LogChunk", "LogService"]

MAX_LIMIT = 1024 * 1024


@dataclass(frozen=True)
class LogChunk:
    data: bytes
    offset: int  # where ``data`` starts
    next_offset: int  # pass this as ``offset`` to follow the log
    size: int  # the file's size now


class LogService:
    def __init__(self, store: Store) -> None:
        self.store = store

    def read(
        self, caller: Caller, cluster_id: str, job_id: str, kind: str, offset: int, limit: int
    ) -> LogChunk:
        """``offset`` < 0 reads the last ``-offset`` bytes (tail)."""
        if kind not in ("stdout", "stderr"):
            raise InvalidParameter("type must be stdout or stderr.")
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidParameter(f"limit must be 1-{MAX_LIMIT}.")
        with self.store.read() as conn:
            if get_cluster(conn, caller.project_id, cluster_id) is None:
                raise ClusterNotFound(cluster_id)
            job = job_store.get_visible(conn, caller.project_id, cluster_id, job_id)
        if job is None:
            raise JobNotFound(job_id)
        if not job.workdir:
            return LogChunk(b"", 0, 0, 0)
        path = Path(job.workdir) / f"{kind}.log"
        fd = open_regular(path)  # never through a symlink the job may have planted
        if fd is None:
            return LogChunk(b"", 0, 0, 0)
        with os.fdopen(fd, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            start = max(0, size + offset) if offset < 0 else min(offset, size)
            fh.seek(start)
            data = fh.read(limit)
        return LogChunk(data, start, start + len(data), size)
