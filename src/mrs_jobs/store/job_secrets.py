"""The job rows' secret values across versions and key rotations: the live jobs' properties
read and rewritten at start-up (resealed), and the ended jobs that may still hold a value in
plain text (masked by a one-off scan). Used by ``services/job_secrets.py`` only."""

from __future__ import annotations

import json
from collections.abc import Mapping

from sqlalchemy import Connection, or_, select, update

from mrs_jobs.domain.render import MASK
from mrs_jobs.domain.states import LIVE_STATES, TERMINAL_STATES
from mrs_jobs.store.tables import jobs

__all__ = ["ended_unmasked", "live_properties", "replace_properties"]

_LIVE_VALUES = [s.value for s in LIVE_STATES]


def live_properties(conn: Connection) -> list[tuple[str, str]]:
    """(id, stored properties) of every live job (the state index; a few rows)."""
    rows = conn.execute(
        select(jobs.c.id, jobs.c.properties).where(jobs.c.state.in_(_LIVE_VALUES))
    ).all()
    return [(r.id, r.properties) for r in rows]


def replace_properties(conn: Connection, job_id: str, old: str, new: Mapping[str, str]) -> bool:
    """Store ``new`` properties of a live job whose stored text is still ``old``; False if the
    job ended (its values were masked) or changed meanwhile."""
    res = conn.execute(
        update(jobs)
        .where(jobs.c.id == job_id, jobs.c.state.in_(_LIVE_VALUES), jobs.c.properties == old)
        .values(properties=json.dumps(dict(new)))
    )
    return res.rowcount == 1


_SECRET_LIKE = ("%secret%", "%password%", "%token%", "%.access.key%")


def ended_unmasked(conn: Connection, after_id: str, limit: int) -> list[str]:
    """Ids (ascending, after ``after_id``) of ended jobs that may still hold secret values:
    their properties name a secret-looking key and hold no mask (a row ended by
    :func:`transition` always holds one). For a one-off pass over old rows: a scan."""
    rows = conn.execute(
        select(jobs.c.id)
        .where(
            jobs.c.id > after_id,
            jobs.c.state.in_([s.value for s in TERMINAL_STATES]),
            or_(*(jobs.c.properties.ilike(p) for p in _SECRET_LIKE)),
            ~jobs.c.properties.contains(f'"{MASK}"', autoescape=True),
        )
        .order_by(jobs.c.id)
        .limit(limit)
    ).all()
    return [r.id for r in rows]
