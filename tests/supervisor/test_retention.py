"""Retention: a cluster's ended jobs past their retention are purged, nothing else is.

On SQLite and PostgreSQL (the ``store`` fixture), through the supervisor's own parts: its
retention hands expired ended jobs to its purge, which removes their rows and directories as
after a batch delete.
"""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path
from typing import Any

import pytest
from jobrows import add_sql_results, insert_job, raw_job
from sqlalchemy import func, insert, select
from support_supervisor import World

from mrs_jobs.domain.clusterconfig import validate_cluster_config
from mrs_jobs.errors import InvalidParameter
from mrs_jobs.store import jobs as job_store
from mrs_jobs.store.tables import audit, job_events, sql_results, submit_keys
from mrs_jobs.store.tenants import Cluster, add_cluster, get_cluster, update_cluster
from mrs_jobs.supervisor import retention
from mrs_jobs.supervisor.loop import Supervisor

pytestmark = pytest.mark.timeout(90)

DAY = retention.DAY_MS


def _configure(world: World, cluster_id: str | None = None, **config: Any) -> None:
    with world.store.write() as conn:
        cluster = get_cluster(conn, None, cluster_id or world.cluster_id)
        assert cluster is not None
        update_cluster(conn, dataclasses.replace(cluster, config=cluster.config | config))


def _supervisor(world: World, **settings: Any) -> Supervisor:
    sup = world.supervisor()
    sup.settings = world.settings.model_copy(update=settings)
    return sup


def _ended(world: World, days_ago: float, *, state: str = "FINISHED", **extra: Any) -> str:
    now = job_store.now_ms()
    at = now - int(days_ago * DAY)
    return insert_job(
        world.store,
        world.boot.project_id,
        extra.pop("cluster_id", world.cluster_id),
        state=state,
        submitted_ms=at - 1000,
        started_ms=at - 500,
        finished_ms=at,
        **extra,
    )


def _with_files(world: World, job_id: str) -> Path:
    workdir = world.settings.jobs_dir / job_id
    workdir.mkdir(parents=True)
    (workdir / "stdout.log").write_text("out\n")
    with world.store.write() as conn:
        conn.execute(
            job_store.jobs.update()
            .where(job_store.jobs.c.id == job_id)
            .values(workdir=str(workdir))
        )
        conn.execute(
            insert(job_events).values(
                job_id=job_id, at_ms=1, from_state="RUNNING", to_state="FINISHED", reason="t"
            )
        )
    return workdir


def _settle(sup: Supervisor) -> None:
    """Retention checks until no backlog is left, then purges until nothing is deleted."""
    now = job_store.now_ms()
    while sup.retention.run(now):
        pass
    for _ in range(20):
        sup.purger.step()


def _gone(world: World, job_id: str) -> bool:
    return raw_job(world.store, job_id) is None


def test_expired_ended_jobs_go_with_their_files_and_live_and_recent_ones_stay(
    world: World,
) -> None:
    _configure(world, retention_days=7)
    old = [_ended(world, 10, state=s) for s in ("FINISHED", "FAILED", "KILLED")]
    dirs = [_with_files(world, j) for j in old]
    execution = _ended(world, 10, deleted_ms=-1, job_type="SparkSql")
    add_sql_results(world.store, execution, {0: [{"a": "1"}]})
    recent = _ended(world, 6)
    long_ago = job_store.now_ms() - 30 * DAY
    running = insert_job(
        world.store,
        world.boot.project_id,
        world.cluster_id,
        state="RUNNING",
        submitted_ms=long_ago,
        started_ms=long_ago,
    )
    queued = insert_job(
        world.store,
        world.boot.project_id,
        world.cluster_id,
        state="SUBMITTED",
        submitted_ms=long_ago,
    )
    # queued again for another attempt, an end time left from the one before: still live
    requeued = _ended(world, 10, state="SUBMITTED")
    before = retention.COUNTS.jobs

    _settle(_supervisor(world))

    assert all(_gone(world, j) for j in [*old, execution])
    assert not any(d.exists() for d in dirs)
    with world.store.read() as conn:
        for table in (job_events, sql_results):
            left = conn.execute(
                select(func.count()).select_from(table).where(table.c.job_id.in_([*old, execution]))
            ).scalar_one()
            assert left == 0
    for kept in (recent, running, queued, requeued):
        row = raw_job(world.store, kept)
        assert row is not None and row["deleted_ms"] == 0
    assert retention.COUNTS.jobs - before == 4


def test_max_jobs_keeps_the_newest_ended_jobs(world: World) -> None:
    _configure(world, retention_days=0, retention_max_jobs=3)
    ended = [_ended(world, 5 - i) for i in range(5)]  # oldest first
    live = insert_job(world.store, world.boot.project_id, world.cluster_id, state="SUBMITTED")
    _settle(_supervisor(world))
    assert [_gone(world, j) for j in ended] == [True, True, False, False, False]
    assert not _gone(world, live)


def test_the_default_applies_a_cluster_overrides_it_and_zero_keeps_forever(world: World) -> None:
    other = "c-" + uuid.uuid4().hex[:8]
    forever = "c-" + uuid.uuid4().hex[:8]
    with world.store.write() as conn:
        for cid, config in ((other, {"retention_days": 2}), (forever, {"retention_days": 0})):
            add_cluster(
                conn,
                Cluster(
                    cid,
                    world.boot.project_id,
                    cid,
                    "local",
                    ["Spark"],
                    config,
                    created_ms=job_store.now_ms(),
                ),
            )
    default_old, default_young = _ended(world, 21), _ended(world, 19)
    other_old, other_young = _ended(world, 3, cluster_id=other), _ended(world, 1, cluster_id=other)
    kept_forever = _ended(world, 400, cluster_id=forever)

    _settle(_supervisor(world, retention_days=20))

    assert _gone(world, default_old) and not _gone(world, default_young)
    assert _gone(world, other_old) and not _gone(world, other_young)
    assert not _gone(world, kept_forever)


def test_a_service_default_of_zero_keeps_everything(world: World) -> None:
    ancient = _ended(world, 3000)
    _settle(_supervisor(world, retention_days=0))
    assert not _gone(world, ancient)


def test_a_large_backlog_goes_in_batches_across_passes(world: World) -> None:
    _configure(world, retention_days=1)
    now = job_store.now_ms()
    rows = [
        {"finished_ms": now - 2 * DAY - i, "state": "FINISHED"}
        for i in range(retention.BATCH * 2 + 10)
    ]
    from jobrows import insert_jobs, job_row

    ids = insert_jobs(
        world.store, [job_row(world.boot.project_id, world.cluster_id, **r) for r in rows]
    )
    sup = _supervisor(world)
    assert sup.retention.run(now, batches=1) is True  # one batch, more left
    assert sum(1 for j in ids if _gone(world, j)) == retention.BATCH
    assert all(_gone(world, j) for j in ids[-retention.BATCH :])  # the oldest went first
    _settle(sup)
    assert all(_gone(world, j) for j in ids)


def test_audit_rows_and_idempotency_keys_expire(world: World) -> None:
    now = job_store.now_ms()
    with world.store.write() as conn:
        for days in (400, 10):
            conn.execute(
                insert(audit).values(
                    at_ms=now - days * DAY,
                    action=f"old{days}",
                    project_id="p",
                    detail="{}",
                    outcome="ok",
                )
            )
        for key, age in (("stale", DAY + 60_000), ("fresh", 3_600_000)):
            conn.execute(
                insert(submit_keys).values(
                    project_id="p", idem_key=key, request_hash="h", job_id="j", created_ms=now - age
                )
            )
    sup = _supervisor(world, audit_retention_days=365)
    _settle(sup)
    with world.store.read() as conn:
        actions = {r.action for r in conn.execute(select(audit.c.action))}
        keys = {r.idem_key for r in conn.execute(select(submit_keys.c.idem_key))}
    assert "old400" not in actions and "old10" in actions
    assert keys == {"fresh"}


def test_retention_settings_are_checked_when_a_cluster_is_saved() -> None:
    assert validate_cluster_config("local", {"retention_days": 7})["retention_days"] == 7
    validate_cluster_config("local", {"retention_max_jobs": "100"})
    for bad in (-1, "seven", "1.5"):
        with pytest.raises(InvalidParameter, match="retention_days"):
            validate_cluster_config("local", {"retention_days": bad})
