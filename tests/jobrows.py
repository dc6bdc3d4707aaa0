"""Insert job rows straight into a store, bypassing submit (for states, times, SQL types)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, insert, select

from mrs_jobs.store import Store
from mrs_jobs.store import jobs as job_store
from mrs_jobs.store.tables import audit, job_events, jobs, sql_results

_RESULT_OF = {"FINISHED": "SUCCEEDED", "FAILED": "FAILED", "KILLED": "KILLED"}


def job_row(project_id: str, cluster_id: str, **overrides: Any) -> dict[str, Any]:
    """A complete ``jobs`` row; ``arguments``/``properties`` may be given as list/dict."""
    state = overrides.get("state", "SUBMITTED")
    row: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "project_id": project_id,
        "cluster_id": cluster_id,
        "job_name": "direct",
        "job_type": "SparkSubmit",
        "user_name": "admin",
        "queue": "default",
        "state": state,
        "result": _RESULT_OF.get(state, "UNDEFINED"),
        "progress": 0.0,
        "submitted_ms": job_store.now_ms(),
        "started_ms": 0,
        "finished_ms": 0,
        "arguments": [],
        "properties": {},
        "launcher_id": "",
        "app_id": "",
        "tracking_url": "",
        "reason": "",
        "deleted_ms": 0,
        "kill_requested_ms": 0,
        "kill_sent_ms": 0,
    }
    row.update(overrides)
    if not isinstance(row["arguments"], str):
        row["arguments"] = json.dumps(list(row["arguments"]))
    if not isinstance(row["properties"], str):
        row["properties"] = json.dumps(dict(row["properties"]))
    return row


def insert_jobs(store: Store, rows: Iterable[dict[str, Any]]) -> list[str]:
    """Insert complete rows (see :func:`job_row`) in one transaction; returns their ids."""
    rows = list(rows)
    if rows:
        with store.write() as conn:
            conn.execute(insert(jobs), rows)
    return [r["id"] for r in rows]


def insert_job(store: Store, project_id: str, cluster_id: str, **overrides: Any) -> str:
    return insert_jobs(store, [job_row(project_id, cluster_id, **overrides)])[0]


def add_sql_results(store: Store, job_id: str, results: dict[int, list[dict[str, str]]]) -> None:
    with store.write() as conn:
        for statement, rows in results.items():
            conn.execute(
                insert(sql_results).values(
                    job_id=job_id, statement=statement, rows=json.dumps(rows)
                )
            )


def raw_job(store: Store, job_id: str) -> dict[str, Any] | None:
    """The stored row, deleted or not."""
    with store.read() as conn:
        row = conn.execute(select(jobs).where(jobs.c.id == job_id)).first()
    return dict(row._mapping) if row else None


def events_of(store: Store, job_id: str) -> list[tuple[str | None, str]]:
    with store.read() as conn:
        rows = conn.execute(
            select(job_events.c.from_state, job_events.c.to_state)
            .where(job_events.c.job_id == job_id)
            .order_by(job_events.c.id)
        ).all()
    return [(r.from_state, r.to_state) for r in rows]


def audit_rows(store: Store, action: str | None = None) -> list[dict[str, Any]]:
    """Audit rows, oldest first, with ``detail`` decoded."""
    q = select(audit).order_by(audit.c.id)
    if action is not None:
        q = q.where(audit.c.action == action)
    with store.read() as conn:
        out = [dict(r._mapping) for r in conn.execute(q)]
    for d in out:
        d["detail"] = json.loads(d["detail"])
    return out


def count_jobs(store: Store, **where: Any) -> int:
    q = select(func.count()).select_from(jobs)
    for column, value in where.items():
        q = q.where(jobs.c[column] == value)
    with store.read() as conn:
        return int(conn.execute(q).scalar_one())


def transition_path(store: Store, job_id: str, *states: str, **values: Any) -> None:
    """Walk a job through legal transitions (each asserted), ``values`` set on the last."""
    from mrs_jobs.domain.states import JobState

    with store.write() as conn:
        for i, state in enumerate(states):
            last = i == len(states) - 1
            prev = job_store.transition(
                conn, job_id, JobState(state), reason="test", values=values if last else None
            )
            assert prev is not None, f"{job_id}: transition to {state} refused"
