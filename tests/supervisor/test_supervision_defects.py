"""Regression tests for the supervision defects an outside chaos run found (issue 14).

1. An instance that comes back must not kill the jobs its peer adopted: see
   tests/supervisor/test_reconcile_keeps_live_jobs.py (test_an_instance_that_comes_back_...).
2. One job whose build raises fails alone, with its own reason.
3. A claimed job whose engine provably never started goes back to the queue.
4. A deleted job's directory is removed where it is, by whichever instance purges it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import insert, select, update
from support_supervisor import FakeEngine, drive

from mrs_jobs.domain.states import JobState
from mrs_jobs.engines.registry import EngineRegistry
from mrs_jobs.errors import InvalidParameter
from mrs_jobs.store import jobs as job_store
from mrs_jobs.store.tables import clusters, job_events, jobs, supervisors
from mrs_jobs.supervisor.loop import Supervisor

pytestmark = pytest.mark.timeout(90)


class BrittleEngine(FakeEngine):
    """The fake engine, whose build raises what a real one did on odd input."""

    def build(self, job, cluster, workdir):  # type: ignore[no-untyped-def]
        if job.arguments[:1] == ["--boom"]:
            raise ValueError("Invalid IPv6 URL")
        if job.arguments[:1] == ["--long"]:
            raise OSError(36, "File name too long", str(workdir / ("x" * 300)))
        return super().build(job, cluster, workdir)


def _ended(world, ids) -> bool:  # type: ignore[no-untyped-def]
    return all(world.show(j).state in ("FINISHED", "FAILED", "KILLED") for j in ids)


def test_a_build_that_raises_fails_only_its_own_job(world) -> None:
    sup = Supervisor(world.store, world.settings, EngineRegistry([BrittleEngine()]))
    with world.store.write() as conn:  # room for all of them in one claim
        conn.execute(update(clusters).values(max_running=8))
    bad = world.submit("--boom")
    too_long = world.submit("--long")
    good = [world.submit("--sleep", "0.2") for _ in range(5)]
    drive(sup, lambda: _ended(world, [bad, too_long, *good]), timeout=60)
    assert world.show(bad).state == "FAILED"
    assert "ValueError: Invalid IPv6 URL" in world.show(bad).reason
    assert world.show(too_long).state == "FAILED"
    assert "File name too long" in world.show(too_long).reason
    for job_id in good:
        job = world.show(job_id)
        assert (job.state, job.result) == ("FINISHED", "SUCCEEDED"), job.reason


@pytest.mark.parametrize(
    ("job_type", "argument"),
    [
        ("DistCp", "hdfs://[::1/x"),
        ("SparkSubmit", "/data/" + "y" * 256 + "/app.py"),
        ("MapReduce", "/jars/" + "z" * 300 + ".jar"),
    ],
)
def test_arguments_no_engine_could_open_are_refused_at_submit(world, job_type, argument) -> None:
    with pytest.raises(InvalidParameter):
        world.jobs.submit(
            world.caller,
            world.cluster_id,
            job_type=job_type,
            job_name="bad",
            arguments=[argument, "/tmp/out"] if job_type == "DistCp" else [argument],
            properties={},
        )


def _claim_without_launch(world, job_id: str, owner: str) -> None:  # type: ignore[no-untyped-def]
    with world.store.write() as conn:
        job_store.transition(
            conn,
            job_id,
            JobState.ACCEPTED,
            values={
                "owner": owner,
                "started_ms": 1,
                "workdir": str(world.settings.jobs_dir / job_id),
            },
        )


def test_a_claim_whose_engine_never_started_goes_back_to_the_queue(world) -> None:
    sup = world.supervisor()
    job_id = world.submit("--sleep", "0.2")
    _claim_without_launch(world, job_id, sup.id)  # the service died right after the claim
    restarted = world.supervisor()
    restarted.reconcile()
    drive(restarted, lambda: world.show(job_id).state in ("FINISHED", "FAILED"), timeout=30)
    job = world.show(job_id)
    assert (job.state, job.result) == ("FINISHED", "SUCCEEDED"), job.reason
    with world.store.read() as conn:
        states = list(
            conn.execute(
                select(job_events.c.to_state)
                .where(job_events.c.job_id == job_id)
                .order_by(job_events.c.id)
            ).scalars()
        )
    assert states.count("ACCEPTED") == 2 and states.count("SUBMITTED") == 2


def _restarted_after_a_claim_leaving(world, *records: str):  # type: ignore[no-untyped-def]
    """A claim whose service died leaving only these files in the job's directory (no pid, no
    process, no exit status), then a restart: (job id, its directory, the new supervisor)."""
    sup = world.supervisor()
    job_id = world.submit("--sleep", "0.2")
    _claim_without_launch(world, job_id, sup.id)
    workdir = world.settings.jobs_dir / job_id
    workdir.mkdir(parents=True)
    for name in records:
        (workdir / name).write_text("{}")
    restarted = world.supervisor()
    restarted.reconcile()
    return job_id, workdir, restarted


def test_a_claim_whose_launch_record_was_written_but_whose_shim_never_ran_is_requeued(
    world,
) -> None:
    """The service died after writing launch.json and before starting the shim: no process,
    no ``shim.started``, no exit status. The engine provably never ran: queue it again."""
    job_id, workdir, restarted = _restarted_after_a_claim_leaving(world, "launch.json")
    drive(restarted, lambda: world.show(job_id).state in ("FINISHED", "FAILED"), timeout=30)
    job = world.show(job_id)
    assert (job.state, job.result) == ("FINISHED", "SUCCEEDED"), job.reason
    assert (workdir / "shim.started").exists()  # the real run's shim wrote it


def test_a_claim_whose_shim_ran_but_left_no_process_still_fails_with_the_reason(world) -> None:
    # shim.started: it may have run, so it is never run twice
    job_id, _, restarted = _restarted_after_a_claim_leaving(world, "launch.json", "shim.started")
    drive(restarted, lambda: world.show(job_id).state == "FAILED")
    assert "before the engine" in world.show(job_id).reason


def test_a_deleted_job_is_purged_with_its_directory_by_another_instance(world, tmp_path) -> None:
    first = world.supervisor()
    job_id = world.submit("--sleep", "0.1")
    drive(first, lambda: world.show(job_id).state == "FINISHED")
    workdir = Path(world.show(job_id).workdir)
    assert workdir.is_dir() and (workdir / "stdout.log").exists()
    world.deletes.delete(world.caller, world.cluster_id, [job_id])
    other_settings = world.settings.model_copy(update={"data_dir": tmp_path / "other"})
    other = Supervisor(world.store, other_settings, EngineRegistry([FakeEngine()]))
    assert other.id != first.id
    drive(other, lambda: world.show(job_id) is None)
    assert not workdir.exists()


def test_a_deleted_job_whose_files_are_on_a_live_peer_is_left_to_that_peer(world) -> None:
    first = world.supervisor()
    job_id = world.submit("--sleep", "0.1")
    drive(first, lambda: world.show(job_id).state == "FINISHED")
    now = job_store.now_ms()
    with world.store.write() as conn:
        conn.execute(
            insert(supervisors).values(
                id="peer", host="elsewhere", pid=1, started_ms=now, heartbeat_ms=now
            )
        )
        conn.execute(
            update(jobs)
            .where(jobs.c.id == job_id)
            .values(owner="peer", workdir="/nonexistent/peer-data/jobs/" + job_id)
        )
    world.deletes.delete(world.caller, world.cluster_id, [job_id])
    first.run_once()
    first.run_once()
    assert world.show(job_id) is not None  # not gone from the store with its files elsewhere


def test_a_run_whose_pid_was_never_recorded_ends_from_its_exit_status(world) -> None:
    """The service died between starting the shim and recording its pid; the run ended
    before the restart: its exit.json says how, and that is how the job ends."""
    first = world.supervisor()
    ok = world.submit("--sleep", "0.1")
    bad = world.submit("--exit", "3")
    drive(first, lambda: all(world.show(j).state in ("FINISHED", "FAILED") for j in (ok, bad)))
    with world.store.write() as conn:  # as if the pid and the end had never been recorded
        for job_id in (ok, bad):
            conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id)
                .values(state="ACCEPTED", result="UNDEFINED", pid=None, pid_start=None)
            )
    restarted = world.supervisor()
    restarted.reconcile()
    drive(restarted, lambda: all(world.show(j).state != "ACCEPTED" for j in (ok, bad)))
    assert (world.show(ok).state, world.show(ok).result) == ("FINISHED", "SUCCEEDED")
    assert world.show(bad).result == "FAILED" and "code 3" in world.show(bad).reason


def test_a_peer_that_adopts_a_run_whose_pid_was_never_recorded_lets_it_end(world, tmp_path) -> None:
    """The launching instance died between starting the shim and recording its pid, and its
    peer adopted the job while the run went on (found by the crash harness, two instances on
    PostgreSQL): the peer finds the run by its job marker and lets it end as it ends, instead
    of failing it "the service stopped before the engine was started" and leaving it behind."""
    first = world.supervisor()
    job_id = world.submit("--sleep", "2", "--print", "done")
    drive(first, lambda: world.show(job_id).pid is not None)
    with world.store.write() as conn:  # the pid never reached the store; first is gone
        conn.execute(
            update(jobs)
            .where(jobs.c.id == job_id)
            .values(state="ACCEPTED", pid=None, pid_start=None)
        )
        conn.execute(update(supervisors).where(supervisors.c.id == first.id).values(heartbeat_ms=0))
    peer_settings = world.settings.model_copy(update={"data_dir": tmp_path / "peer"})
    peer = Supervisor(world.store, peer_settings, EngineRegistry([FakeEngine()]))
    peer.reconcile()
    assert world.show(job_id).owner == peer.id
    drive(peer, lambda: world.show(job_id).state in ("FINISHED", "FAILED"), timeout=30)
    job = world.show(job_id)
    assert (job.state, job.result) == ("FINISHED", "SUCCEEDED"), job.reason
    assert "done" in (Path(job.workdir) / "stdout.log").read_text()
