"""Heartbeats, take-over of a stopped supervisor's jobs, and two supervisors on one store."""

from __future__ import annotations

import threading

from sqlalchemy import insert, update
from support_supervisor import drive, marked_pids

from mrs_jobs.store import jobs as job_store
from mrs_jobs.store.tables import jobs, supervisors


def test_jobs_of_a_stopped_supervisor_on_another_host_fail_with_reason(world) -> None:
    job_id = world.submit("--sleep", "60")
    with world.store.write() as conn:
        conn.execute(
            insert(supervisors).values(
                id="far-away", host="other-host", pid=1, started_ms=1, heartbeat_ms=1
            )
        )
        conn.execute(
            update(jobs)
            .where(jobs.c.id == job_id)
            .values(state="RUNNING", owner="far-away", pid=999999, pid_start=1, started_ms=1)
        )
    sup = world.supervisor()
    sup.reconcile()
    job = world.show(job_id)
    assert (job.state, job.result) == ("FAILED", "FAILED")
    assert "stopped heartbeating" in job.reason and "other-host" in job.reason


def test_another_host_gets_time_to_come_back_before_its_jobs_fail(world) -> None:
    job_id = world.submit("--sleep", "60")
    quiet_since = job_store.now_ms() - 60_000  # a minute: well past 3 heartbeats
    with world.store.write() as conn:
        conn.execute(
            insert(supervisors).values(
                id="rebooting", host="other-host", pid=1, started_ms=1, heartbeat_ms=quiet_since
            )
        )
        conn.execute(
            update(jobs)
            .where(jobs.c.id == job_id)
            .values(state="RUNNING", owner="rebooting", pid=999999, pid_start=1, started_ms=1)
        )
    sup = world.supervisor()
    sup.reconcile()
    assert (world.show(job_id).state, world.show(job_id).owner) == ("RUNNING", "rebooting")
    sup.settings = sup.settings.model_copy(update={"lost_supervisor_seconds": 30.0})
    sup._take_over()
    assert world.show(job_id).state == "FAILED"


def test_a_live_supervisor_keeps_its_jobs(world) -> None:
    job_id = world.submit("--sleep", "60")
    with world.store.write() as conn:
        conn.execute(
            insert(supervisors).values(
                id="busy", host="other-host", pid=1, started_ms=1, heartbeat_ms=job_store.now_ms()
            )
        )
        conn.execute(
            update(jobs)
            .where(jobs.c.id == job_id)
            .values(state="RUNNING", owner="busy", pid=999999, pid_start=1, started_ms=1)
        )
    world.supervisor().reconcile()
    job = world.show(job_id)
    assert (job.state, job.owner) == ("RUNNING", "busy")


def test_same_host_supervisor_that_stopped_is_taken_over(world) -> None:
    first = world.supervisor()
    first.id = "same-host-other-instance"
    job_id = world.submit("--sleep", "1.5", "--exit", "5")
    drive(first, lambda: world.show(job_id).state == "RUNNING")
    with world.store.write() as conn:  # it stops heartbeating
        conn.execute(update(supervisors).where(supervisors.c.id == first.id).values(heartbeat_ms=1))
    second = world.supervisor()
    second.reconcile()
    assert world.show(job_id).owner == second.id
    drive(second, lambda: world.show(job_id).state in ("FINISHED", "FAILED"), timeout=20)
    assert "code 5" in world.show(job_id).reason  # watched to its real end
    assert marked_pids(job_id) == []


def test_two_supervisors_launch_each_job_once_within_the_limit(world) -> None:
    a, b = world.supervisor(), world.supervisor()
    a.id, b.id = "sup-a", "sup-b"
    ids = [world.submit("--sleep", "0.3") for _ in range(8)]
    errors: list[BaseException] = []

    def run(sup) -> None:  # type: ignore[no-untyped-def]
        try:
            drive(sup, lambda: all(world.show(i).state == "FINISHED" for i in ids), timeout=40)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    seen_running: list[int] = []

    def watch() -> None:
        from sqlalchemy import func, select

        launched = (
            select(func.count()).select_from(jobs).where(jobs.c.state.in_(["ACCEPTED", "RUNNING"]))
        )
        while not all(world.show(i).state == "FINISHED" for i in ids):
            with world.store.read() as conn:  # one consistent count, not one read per job
                seen_running.append(conn.execute(launched).scalar_one())

    threads = [threading.Thread(target=run, args=(s,)) for s in (a, b)]
    threads.append(threading.Thread(target=watch))
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert max(seen_running) <= 2  # the cluster's max_running, across both supervisors
    owners = {world.show(i).owner for i in ids}
    assert owners <= {"sup-a", "sup-b"}
    from sqlalchemy import select

    from mrs_jobs.store.tables import job_events

    with world.store.read() as conn:
        accepted = (
            conn.execute(select(job_events.c.job_id).where(job_events.c.to_state == "ACCEPTED"))
            .scalars()
            .all()
        )
    assert sorted(accepted) == sorted(ids)  # each job claimed (launched) exactly once
