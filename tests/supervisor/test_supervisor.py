"""The supervisor with real subprocesses (a fake engine script), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from sqlalchemy import select, update
from support_supervisor import drive, marked_pids

from mrs_jobs.runtime.process import group_alive
from mrs_jobs.store import jobs as job_store
from mrs_jobs.store.tables import job_events, jobs


def _events(world, job_id: str) -> list[str]:
    with world.store.read() as conn:
        rows = conn.execute(
            select(job_events.c.to_state)
            .where(job_events.c.job_id == job_id)
            .order_by(job_events.c.id)
        ).all()
    return [r.to_state for r in rows]


def test_success_and_failure_exit_codes(world) -> None:
    sup = world.supervisor()
    ok = world.submit("--sleep", "0.3", "--print", "hello; $(rm -rf /)")
    bad = world.submit("--sleep", "0.3", "--exit", "3")
    drive(
        sup,
        lambda: world.show(ok).state == "FINISHED"
        and world.show(bad).state in ("FINISHED", "FAILED"),
    )
    good, failed = world.show(ok), world.show(bad)
    assert (good.result, good.progress) == ("SUCCEEDED", 100.0)
    assert good.app_id == f"fake-{ok[:8]}"
    assert good.started_ms > 0 and good.finished_ms >= good.started_ms
    assert failed.result == "FAILED" and "code 3" in failed.reason
    assert not (Path(good.workdir) / "launch.json").exists()  # it held the environment
    out = (Path(good.workdir) / "stdout.log").read_text()
    assert "hello; $(rm -rf /)" in out  # argv vector: nothing went through a shell
    assert _events(world, ok) == [
        "NEW",
        "NEW_SAVING",
        "SUBMITTED",
        "ACCEPTED",
        "RUNNING",
        "FINISHED",
    ]


def test_running_limit_queues_then_starts(world) -> None:
    sup = world.supervisor()  # the cluster has max_running=2
    ids = [world.submit("--sleep", "1.0") for _ in range(4)]
    drive(sup, lambda: sum(world.show(i).state in ("ACCEPTED", "RUNNING") for i in ids) == 2)
    states = [world.show(i).state for i in ids]
    assert states.count("SUBMITTED") == 2, states
    # never more than two at once, and all four finish
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        sup.run_once()
        live = [world.show(i).state for i in ids]
        assert sum(s in ("ACCEPTED", "RUNNING") for s in live) <= 2
        if all(s == "FINISHED" for s in live):
            break
        time.sleep(0.05)
    assert all(world.show(i).result == "SUCCEEDED" for i in ids)


def test_kill_stops_a_term_ignoring_tree(world) -> None:
    sup = world.supervisor()
    job_id = world.submit("--sleep", "60", "--ignore-term", "--spawn-child")
    drive(sup, lambda: world.show(job_id).state == "RUNNING" and len(marked_pids(job_id)) >= 3)
    pgid = world.show(job_id).pid
    world.jobs.kill(world.caller, world.cluster_id, job_id)
    assert world.show(job_id).state == "RUNNING"  # asynchronous
    drive(sup, lambda: world.show(job_id).state == "KILLED", timeout=20)
    job = world.show(job_id)
    assert job.result == "KILLED" and job.finished_ms > 0
    assert marked_pids(job_id) == [] and not group_alive(pgid)


def test_kill_of_queued_job_never_launches(world) -> None:
    sup = world.supervisor()
    job_id = world.submit("--sleep", "5")
    world.jobs.kill(world.caller, world.cluster_id, job_id)
    for _ in range(5):
        sup.run_once()
    job = world.show(job_id)
    assert (job.state, job.result, job.pid) == ("KILLED", "KILLED", None)


def test_engine_refusal_fails_with_reason(world) -> None:
    sup = world.supervisor()
    job_id = world.submit("--refuse")
    drive(sup, lambda: world.show(job_id).state == "FAILED")
    job = world.show(job_id)
    assert "refused by the fake engine" in job.reason
    assert "refused by the fake engine" in (Path(job.workdir) / "stderr.log").read_text()


def test_batch_delete_of_running_job_kills_then_purges(world) -> None:
    sup = world.supervisor()
    running = world.submit("--sleep", "60", "--ignore-term")
    done = world.submit("--exit", "0")
    queued_ids = []
    drive(
        sup, lambda: world.show(running).state == "RUNNING" and world.show(done).state == "FINISHED"
    )
    for _ in range(3):
        queued_ids.append(world.submit("--sleep", "60"))
    keep = world.submit("--sleep", "0.1")
    workdir = Path(world.show(running).workdir)
    pgid = world.show(running).pid
    live = world.deletes.delete(world.caller, world.cluster_id, [running, done, *queued_ids])
    assert live == 1
    drive(sup, lambda: world.show(running) is None, timeout=20)
    assert not group_alive(pgid) and marked_pids(running) == []
    assert not workdir.exists()
    for job_id in [done, *queued_ids]:
        assert world.show(job_id) is None
    assert _events(world, running) == []
    drive(sup, lambda: world.show(keep).state == "FINISHED")


def test_restart_reattaches_a_running_job(world) -> None:
    first = world.supervisor()
    job_id = world.submit("--sleep", "2", "--exit", "4")
    drive(first, lambda: world.show(job_id).state == "RUNNING")
    pid = world.show(job_id).pid
    del first  # the service "crashes": nothing is stopped, the engine keeps running
    second = world.supervisor()
    second.reconcile()
    assert world.show(job_id).state == "RUNNING" and world.show(job_id).pid == pid
    drive(second, lambda: world.show(job_id).state in ("FINISHED", "FAILED"), timeout=20)
    job = world.show(job_id)
    assert job.result == "FAILED" and "code 4" in job.reason  # the real exit code survived


def test_restart_fails_a_job_whose_engine_died_unrecorded(world) -> None:
    first = world.supervisor()
    job_id = world.submit("--sleep", "60")
    drive(first, lambda: world.show(job_id).state == "RUNNING")
    os.killpg(world.show(job_id).pid, signal.SIGKILL)  # engine and shim die while "down"
    time.sleep(0.3)
    first.table.reap()
    second = world.supervisor()
    second.reconcile()
    drive(second, lambda: world.show(job_id).state in ("FAILED", "FINISHED"))
    job = world.show(job_id)
    assert job.result == "FAILED" and job.reason


def test_restart_kills_orphans_and_finishes_pending_deletes(world) -> None:
    first = world.supervisor()
    orphan = world.submit("--sleep", "60", "--spawn-child")
    pending = world.submit("--sleep", "60")
    drive(
        first,
        lambda: world.show(orphan).state == "RUNNING" and world.show(pending).state == "RUNNING",
    )
    # The record of `orphan` vanishes behind the service's back (e.g. a lost write);
    # `pending` is batch-deleted while no supervisor runs.
    with world.store.write() as conn:
        job_store.purge(conn, [orphan])
    world.deletes.delete(world.caller, world.cluster_id, [pending])
    assert marked_pids(orphan)
    second = world.supervisor()
    second.reconcile()
    deadline = time.monotonic() + 10
    while marked_pids(orphan) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marked_pids(orphan) == []
    drive(second, lambda: world.show(pending) is None, timeout=20)
    assert marked_pids(pending) == []


def test_claimed_but_never_launched_job_runs_after_restart(world) -> None:
    job_id = world.submit("--sleep", "1")
    # Simulate a crash between the claim commit and the launch (no launch record): the engine
    # never started, so the job goes back to the queue and runs (tests/supervisor/
    # test_supervision_defects.py has the case with a launch record, which fails).
    with world.store.write() as conn:
        job_store.transition(
            conn,
            job_id,
            __import__("mrs_jobs.domain.states", fromlist=["JobState"]).JobState.ACCEPTED,
            values={"owner": "someone-gone", "started_ms": 1},
        )
    sup = world.supervisor()
    sup.reconcile()
    drive(sup, lambda: world.show(job_id).state in ("FINISHED", "FAILED"), timeout=30)
    assert world.show(job_id).result == "SUCCEEDED", world.show(job_id).reason


def test_launch_records_pid_and_marker(world) -> None:
    sup = world.supervisor()
    job_id = world.submit("--sleep", "1")
    drive(sup, lambda: world.show(job_id).pid is not None)
    job = world.show(job_id)
    launch = json.loads((Path(job.workdir) / "launch.json").read_text())
    assert launch["env"]["MRS_JOBS_JOB_ID"] == job_id
    assert "MRS_JOBS_DATABASE_URL" not in launch["env"]
    with world.store.write() as conn:
        conn.execute(update(jobs).where(jobs.c.id == job_id).values(kill_requested_ms=1))
    drive(sup, lambda: world.show(job_id).state == "KILLED")


def test_stragglers_that_left_the_group_are_killed(world) -> None:
    sup = world.supervisor()
    job_id = world.submit("--sleep", "0.5", "--spawn-detached")
    drive(sup, lambda: world.show(job_id).state == "FINISHED", timeout=20)
    assert world.show(job_id).result == "SUCCEEDED"
    deadline = time.monotonic() + 5
    while marked_pids(job_id) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert marked_pids(job_id) == []


def test_timeout_fails_a_job_and_stops_its_tree(world) -> None:
    sup = world.supervisor()
    job = world.jobs.submit(
        world.caller,
        world.cluster_id,
        job_type="SparkSubmit",
        job_name="slow",
        arguments=["--sleep", "60", "--ignore-term", "--spawn-child"],
        properties={"mrs.job.timeout": "1"},
    )
    drive(sup, lambda: world.show(job.id).state == "RUNNING")
    assert world.show(job.id).deadline_ms > 0
    drive(sup, lambda: world.show(job.id).state in ("FAILED", "FINISHED", "KILLED"), timeout=20)
    ended = world.show(job.id)
    assert (ended.state, ended.result) == ("FAILED", "FAILED")
    assert "timed out after 1 s" in ended.reason
    assert marked_pids(job.id) == []


def test_shutdown_can_kill_running_jobs(world) -> None:
    world.settings.kill_jobs_on_shutdown = True
    sup = world.supervisor()
    job_id = world.submit("--sleep", "60", "--ignore-term")
    queued = [world.submit("--sleep", "60") for _ in range(2)]  # max_running=2: one queues
    drive(sup, lambda: world.show(job_id).state == "RUNNING")
    sup.stop()
    job = world.show(job_id)
    assert (job.state, job.result) == ("KILLED", "KILLED")
    assert marked_pids(job_id) == []
    states = sorted(world.show(q).state for q in queued)
    assert "SUBMITTED" in states  # queued work is kept for the next start
    for q in queued:
        if world.show(q).state == "KILLED":
            assert marked_pids(q) == []


def test_shutdown_leaves_running_jobs_by_default(world) -> None:
    sup = world.supervisor()
    job_id = world.submit("--sleep", "30")
    drive(sup, lambda: world.show(job_id).state == "RUNNING")
    sup.stop()
    assert world.show(job_id).state == "RUNNING" and marked_pids(job_id)
    again = world.supervisor()
    again.reconcile()
    world.jobs.kill(world.caller, world.cluster_id, job_id)
    drive(again, lambda: world.show(job_id).state == "KILLED", timeout=20)
