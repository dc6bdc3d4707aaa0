"""A job's history names who caused each change: the supervisor that ran it, the request that
asked for its kill (done later by the supervisor, in another transaction), the shutdown."""

from __future__ import annotations

import pytest
from support_supervisor import drive

pytestmark = pytest.mark.timeout(90)


def _history(world, job_id: str) -> list[tuple]:  # type: ignore[no-untyped-def]
    events = world.jobs.events(world.caller, world.cluster_id, job_id)
    return [(e.from_state, e.to_state, e.actor) for e in events]


def test_the_supervisor_is_the_cause_of_a_run(world) -> None:  # type: ignore[no-untyped-def]
    sup = world.supervisor()
    job_id = world.submit("--sleep", "0.3")
    drive(sup, lambda: world.show(job_id).state == "FINISHED")
    by_sup = f"supervisor {sup.id}"
    assert _history(world, job_id)[2:] == [
        ("NEW_SAVING", "SUBMITTED", "request req-1 by tester"),
        ("SUBMITTED", "ACCEPTED", by_sup),
        ("ACCEPTED", "RUNNING", by_sup),
        ("RUNNING", "FINISHED", by_sup),
    ]


def test_a_kill_is_caused_by_the_request_that_asked(world) -> None:  # type: ignore[no-untyped-def]
    sup = world.supervisor()
    job_id = world.submit("--sleep", "30")
    drive(sup, lambda: world.show(job_id).state == "RUNNING")
    world.jobs.kill(world.caller, world.cluster_id, job_id)
    drive(sup, lambda: world.show(job_id).state == "KILLED")
    assert _history(world, job_id)[-1] == ("RUNNING", "KILLED", "request req-1 by tester")


def test_a_shutdown_kill_says_so(world) -> None:  # type: ignore[no-untyped-def]
    settings = world.settings.model_copy(update={"kill_jobs_on_shutdown": True})
    from support_supervisor import FakeEngine

    from mrs_jobs.engines.registry import EngineRegistry
    from mrs_jobs.supervisor.loop import Supervisor

    sup = Supervisor(world.store, settings, EngineRegistry([FakeEngine()]))
    job_id = world.submit("--sleep", "30")
    drive(sup, lambda: world.show(job_id).state == "RUNNING")
    sup.stop()
    assert world.show(job_id).state == "KILLED"
    assert _history(world, job_id)[-1] == ("RUNNING", "KILLED", f"service shutdown ({sup.id})")
