"""Secret job properties kept right at rest across versions and key rotations: live jobs'
values sealed with the current key at start-up, ended jobs' values masked (a one-off scan)."""

from __future__ import annotations

import json
import logging

from mrs_jobs.secretbox import SecretBox, SecretKeyError, reseal_job_properties
from mrs_jobs.store import Store
from mrs_jobs.store import job_secrets as secrets_store
from mrs_jobs.store import jobs as job_store

__all__ = ["mask_ended_job_secrets", "seal_live_job_secrets"]

log = logging.getLogger(__name__)


def seal_live_job_secrets(store: Store, box: SecretBox) -> int:
    """At start-up: seal the secret values of live jobs stored in plain text (before values
    were sealed) or sealed by a key now old; returns how many jobs were resealed.

    A job whose value does not open (its key is not configured) is logged and left: its launch
    fails with a reason. Each row is rewritten only if it is still live and unchanged, so a
    job ending meanwhile keeps its mask."""
    with store.read() as conn:
        rows = secrets_store.live_properties(conn)
    done = 0
    for job_id, stored in rows:
        try:
            props = json.loads(stored)
            resealed = reseal_job_properties(box, job_id, props)
        except (ValueError, AttributeError, TypeError):
            continue
        except SecretKeyError as exc:
            log.warning("job.secrets_unreadable", extra={"job_id": job_id, "error": exc})
            continue
        if resealed is None:
            continue
        with store.write() as conn:
            done += secrets_store.replace_properties(conn, job_id, stored, resealed)
    if done:
        log.info("job.secrets_resealed", extra={"count": done})
    return done


def mask_ended_job_secrets(store: Store, batch: int = 500) -> int:
    """Mask the secret values that ended jobs stored before values were sealed and masked at
    the end (a one-off scan of the jobs table); returns how many jobs were masked."""
    after, done = "", 0
    while True:
        with store.read() as conn:
            ids = secrets_store.ended_unmasked(conn, after, batch)
        if not ids:
            return done
        with store.write() as conn:
            done += sum(job_store.scrub_secrets(conn, job_id) for job_id in ids)
        after = ids[-1]
