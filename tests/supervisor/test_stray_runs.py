"""A supervisor ends, every few seconds, its processes that are no job's current run.

The case (issue 18's retries with two hosts): a supervisor cut off from the database (not
stopped) keeps its run going while a peer on another host counts that run as lost and retries
the job, there or back here. Its old run must not go on beside the new one. Each process
carries the attempt it was launched for (``MRS_JOBS_ATTEMPT``), so a job's current run is told
from an earlier attempt's; a job now run by a supervisor on another host has nobody here
watching its old processes. The current run of a live job is never touched.
"""

from __future__ import annotations

import time

import pytest
from sqlalchemy import insert, update
from support_supervisor import drive, marked_pids

from mrs_jobs.runtime.process import marked_attempt
from mrs_jobs.store.tables import jobs, supervisors

pytestmark = pytest.mark.timeout(60)


def _running(world, sup) -> tuple[str, list[int]]:  # type: ignore[no-untyped-def]
    job_id = world.submit("--sleep", "30")
    drive(sup, lambda: world.show(job_id).pid is not None and bool(marked_pids(job_id)))
    return job_id, marked_pids(job_id)


def _sweep(sup) -> int:  # type: ignore[no-untyped-def]
    sup.marks.reset()
    return sup.recovery.sweep_strays(sup.marks.marked())


def _swept_away(sup, job_id: str, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    """Sweep until no process of ``job_id`` is left (a process the run forks while a sweep
    kills its parent is found by the next sweep, as the pass's next one would)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _sweep(sup)
        time.sleep(0.1)
        if not marked_pids(job_id):
            return True
    return False


def test_every_process_of_a_run_carries_its_attempt(world) -> None:
    sup = world.supervisor()
    job_id, pids = _running(world, sup)
    assert {marked_attempt(pid) for pid in pids} == {1}
    world.jobs.kill(world.caller, world.cluster_id, job_id)
    drive(sup, lambda: world.show(job_id).state == "KILLED")


def test_the_current_run_of_a_live_job_is_left_alone(world) -> None:
    sup = world.supervisor()
    job_id, pids = _running(world, sup)
    assert _sweep(sup) == 0
    assert set(marked_pids(job_id)) == set(pids)
    assert world.show(job_id).state in ("ACCEPTED", "RUNNING")
    world.jobs.kill(world.caller, world.cluster_id, job_id)
    drive(sup, lambda: world.show(job_id).state == "KILLED")


def test_an_earlier_attempts_run_is_ended(world) -> None:
    """Retried elsewhere and claimed here again: the job is live and ours, at attempt 2,
    while attempt 1's processes still run (the old code left them running beside it)."""
    sup = world.supervisor()
    job_id, _ = _running(world, sup)
    with world.store.write() as conn:
        conn.execute(update(jobs).where(jobs.c.id == job_id).values(attempt=2))
    assert _sweep(sup) >= 1
    assert _swept_away(sup, job_id)


def test_a_run_whose_job_a_supervisor_on_another_host_now_runs_is_ended(world) -> None:
    sup = world.supervisor()
    job_id, _ = _running(world, sup)
    now = int(time.time() * 1000)
    with world.store.write() as conn:
        conn.execute(
            insert(supervisors).values(
                id="peer-elsewhere", host="elsewhere", pid=1, started_ms=now, heartbeat_ms=now
            )
        )
        conn.execute(update(jobs).where(jobs.c.id == job_id).values(owner="peer-elsewhere"))
    assert _sweep(sup) >= 1
    assert _swept_away(sup, job_id)


def test_a_run_whose_job_ended_elsewhere_is_ended_by_the_pass(world) -> None:
    """Counted as lost by a peer (FAILED, no retries) while this supervisor was cut off: its
    next sweep, inside an ordinary pass, ends the run."""
    sup = world.supervisor()
    job_id, _ = _running(world, sup)
    with world.store.write() as conn:
        conn.execute(
            update(jobs)
            .where(jobs.c.id == job_id)
            .values(state="FAILED", result="FAILED", owner=None)
        )

    def passes_end_it() -> bool:
        sup._last_stray_sweep = 0.0  # due now
        sup.run_once()
        return not marked_pids(job_id)

    drive(sup, passes_end_it, timeout=10)


def test_live_runs_reads_any_number_of_ids(world) -> None:
    """More ids than one statement may bind on SQLite: read in chunks, the live one found."""
    from mrs_jobs.store import supervision as sup_store

    sup = world.supervisor()
    job_id, _ = _running(world, sup)
    ids = [f"missing-{i}" for i in range(1200)] + [job_id]
    with world.store.read() as conn:
        runs = sup_store.live_runs(conn, ids)
    assert list(runs) == [job_id] and runs[job_id][0] == 1
    world.jobs.kill(world.caller, world.cluster_id, job_id)
    drive(sup, lambda: world.show(job_id).state == "KILLED")
