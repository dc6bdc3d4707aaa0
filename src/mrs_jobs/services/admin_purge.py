"""An operator's purge by filter (``mrs-jobs admin purge``): ended jobs only, in chunks.

It never touches a live job: the filter takes terminal states only, and each chunk's UPDATE
re-checks that every job it marks has ended. It marks the jobs deleted, the way a batch delete
and retention do, so the supervisor's one purge path (``supervisor/purge.py``) removes their
records, events, SQL results and files within seconds. Each chunk is its own short
transaction, so the API keeps answering while a large purge runs; one audit row says who
purged what.
"""

from __future__ import annotations

import getpass
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mrs_jobs.domain.states import LIVE_STATES, TERMINAL_STATES
from mrs_jobs.errors import ClusterNotFound, InvalidParameter
from mrs_jobs.store import Store
from mrs_jobs.store import jobs as job_store
from mrs_jobs.store import retention as ret_store
from mrs_jobs.store.audit import record_audit
from mrs_jobs.store.tenants import get_cluster

__all__ = ["CHUNK", "AdminPurge", "PurgePlan", "parse_before", "parse_states"]

#: Jobs marked per transaction.
CHUNK = 500
_SAMPLE = 10
_AGE_RE = re.compile(r"^(\d{1,6})([smhdw])$")
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_TERMINAL = {s.value for s in TERMINAL_STATES}
_LIVE = {s.value for s in LIVE_STATES}


def parse_before(text: str, now_ms: int) -> int:
    """``7d`` / ``12h`` / ``30m`` / ``2w`` ago, or an ISO date or time (UTC unless it says)."""
    value = text.strip()
    age = _AGE_RE.match(value)
    if age:
        return now_ms - int(age.group(1)) * _UNIT_MS[age.group(2)]
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidParameter(
            f"Invalid --before {text!r}: use an age such as 7d, 12h, 30m, 2w, or an ISO date "
            "such as 2026-01-31 or 2026-01-31T12:00:00Z."
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def parse_states(values: Sequence[str]) -> tuple[str, ...]:
    """Terminal states only: a live job is never purged (kill it first)."""
    out: list[str] = []
    for raw in values:
        for part in raw.split(","):
            state = part.strip().upper()
            if state in _LIVE:
                raise InvalidParameter(
                    f"Invalid --state {state}: admin purge removes ended jobs only "
                    f"({', '.join(sorted(_TERMINAL))}); kill a live job first "
                    "(mrs-jobs kill), then purge it once it has ended."
                )
            if state not in _TERMINAL:
                raise InvalidParameter(
                    f"Invalid --state {part.strip()!r}: one of {', '.join(sorted(_TERMINAL))}."
                )
            if state not in out:
                out.append(state)
    return tuple(out)


@dataclass(frozen=True)
class PurgePlan:
    """What a purge would take: the filter, how many jobs match now, the oldest few."""

    filter: ret_store.EndedFilter
    count: int
    sample: list[dict[str, Any]] = field(default_factory=list)


class AdminPurge:
    def __init__(self, store: Store) -> None:
        self.store = store

    def plan(
        self,
        *,
        cluster_id: str | None = None,
        states: Sequence[str] = (),
        before: str | None = None,
        name_contains: str | None = None,
        now_ms: int | None = None,
    ) -> PurgePlan:
        """Check the filter (InvalidParameter / ClusterNotFound, nothing changed) and count."""
        now = job_store.now_ms() if now_ms is None else now_ms
        if name_contains is not None and not name_contains.strip():
            raise InvalidParameter("Invalid --name-contains: must not be empty.")
        if cluster_id is None and not states and before is None and name_contains is None:
            raise InvalidParameter(
                "Give at least one filter (--cluster, --state, --before, --name-contains); "
                "--before 0s takes every ended job."
            )
        f = ret_store.EndedFilter(
            cluster_id=cluster_id,
            states=parse_states(states),
            ended_before_ms=parse_before(before, now) if before is not None else None,
            name_contains=name_contains,
        )
        with self.store.read() as conn:
            if cluster_id is not None and get_cluster(conn, None, cluster_id) is None:
                raise ClusterNotFound(cluster_id)
            count = ret_store.count_matching(conn, f)
            sample = ret_store.sample_matching(conn, f, _SAMPLE)
        return PurgePlan(f, count, sample)

    def run(
        self,
        plan: PurgePlan,
        *,
        chunk: int = CHUNK,
        progress: Callable[[int], None] = lambda done: None,
    ) -> int:
        """Mark the matching ended jobs deleted, ``chunk`` per transaction; returns how many.
        Jobs that match only after the plan was made (ended since) are taken too."""
        chunk = max(1, min(chunk, CHUNK))
        done = 0
        while True:
            at = job_store.now_ms()
            with self.store.write() as conn:
                ids = ret_store.matching_ids(conn, plan.filter, chunk)
                done += ret_store.mark_expired(conn, ids, at)
            progress(done)
            if len(ids) < chunk:
                break
        self._audit(plan, done)
        return done

    def _audit(self, plan: PurgePlan, done: int) -> None:
        f = plan.filter
        project = "-"
        with self.store.write() as conn:
            if f.cluster_id is not None:
                cluster = get_cluster(conn, None, f.cluster_id)
                project = cluster.project_id if cluster is not None else "-"
            record_audit(
                conn,
                at_ms=job_store.now_ms(),
                action="admin_purge",
                project_id=project,
                cluster_id=f.cluster_id,
                credential_id=None,
                request_id=None,
                detail={
                    "by": _operator(),
                    "states": list(f.states),
                    "ended_before_ms": f.ended_before_ms,
                    "name_contains": f.name_contains,
                    "count": done,
                },
                outcome="deleted",
            )


def _operator() -> str:
    """The OS account that ran the command (admin commands have no API credential)."""
    try:
        return f"admin {getpass.getuser()}"
    except (KeyError, OSError):
        return "admin"
