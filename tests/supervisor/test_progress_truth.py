"""Progress only rises while a job runs, stays below 100 until it succeeded, and a killed or
failed job keeps its last running value (an engine's 99, 100 or a lower value after a higher
one is not recorded)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from support_supervisor import FakeEngine, drive

from mrs_jobs.domain.states import JobState
from mrs_jobs.engines.base import (
    ClusterSpec,
    JobSpec,
    LaunchSpec,
    Observation,
    RemoteStatus,
)
from mrs_jobs.engines.registry import EngineRegistry
from mrs_jobs.store import jobs as job_store
from mrs_jobs.store import supervision as sup_store
from mrs_jobs.supervisor.loop import Supervisor
from mrs_jobs.supervisor.observe import record_progress


class ScriptedEngine(FakeEngine):
    """Reports the progress values of a script, one per observation, then the last again."""

    def __init__(self, values: list[float | None]) -> None:
        self.values = list(values)
        self.said: list[float | None] = []

    def observe(self, job: JobSpec, workdir: Path, launch: LaunchSpec) -> Observation:
        value = self.values.pop(0) if len(self.values) > 1 else self.values[0]
        self.said.append(value)
        return Observation(app_id="app-1", running=True, progress=value)


def _supervisor(world, engine) -> Supervisor:  # type: ignore[no-untyped-def]
    return Supervisor(world.store, world.settings, EngineRegistry([engine]))


def _running_job(world) -> str:  # type: ignore[no-untyped-def]
    """A job row in RUNNING without a process (for the store-level tests)."""
    jid = world.submit()
    with world.store.write() as conn:
        for state in (JobState.ACCEPTED, JobState.RUNNING):
            job_store.transition(conn, jid, state, reason="test")
    return jid


@pytest.fixture
def fast_observe(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from mrs_jobs.supervisor import observe

    monkeypatch.setattr(observe, "_OBSERVE_EVERY_S", 0.0)
    yield


def test_engine_values_that_drop_are_not_recorded(world, fast_observe) -> None:
    """The reported 0 -> 99 -> 67 -> 99: what is stored never goes down while running."""
    engine = ScriptedEngine([10.0, 55.0, 30.0, 20.0, 60.0, 120.0, 40.0])
    sup = _supervisor(world, engine)
    jid = world.submit("--sleep", "30")
    stored: list[float] = []

    def sample() -> bool:
        job = world.show(jid)
        if job.state == "RUNNING":
            stored.append(job.progress)
        return len(engine.said) >= 8

    drive(sup, sample)
    assert stored == sorted(stored), stored
    assert max(stored) == 99.0  # an engine's 120 (or 100) is 99 while running
    world.jobs.kill(world.caller, world.cluster_id, jid)
    drive(sup, lambda: world.show(jid).state == "KILLED")
    assert world.show(jid).progress == 99.0  # kept, not raised to 100


def test_a_stale_writer_cannot_lower_progress(world) -> None:
    """Two writers: one read the job at 10 %, the other stored 60 % since; the first one's
    40 % must not win (the guard is in the UPDATE, not in the reader's copy)."""
    jid = _running_job(world)
    stale = world.show(jid)
    ctx = SimpleNamespace(store=world.store, id="sup-test")
    record_progress(ctx, stale, {}, started=False, progress=60.0)
    assert world.show(jid).progress == 60.0
    record_progress(ctx, stale, {"app_id": "app-9"}, started=False, progress=40.0)
    job = world.show(jid)
    assert (job.progress, job.app_id) == (60.0, "app-9")


def test_raise_progress_only_rises_and_only_while_running(world) -> None:
    jid = _running_job(world)
    with world.store.write() as conn:
        assert sup_store.raise_progress(conn, jid, 30.0)
        assert not sup_store.raise_progress(conn, jid, 20.0)
        assert not sup_store.raise_progress(conn, jid, 30.0)
        assert sup_store.raise_progress(conn, jid, 31.5)
    assert world.show(jid).progress == 31.5
    world.jobs.kill(world.caller, world.cluster_id, jid)
    with world.store.write() as conn:
        job_store.transition(conn, jid, JobState.KILLED, reason="test")
        assert not sup_store.raise_progress(conn, jid, 80.0)  # ended: its value stays
    assert world.show(jid).progress == 31.5


def test_running_progress_is_between_0_and_99() -> None:
    from mrs_jobs.supervisor.observe import running_progress

    assert running_progress(None) is None
    assert running_progress(float("nan")) is None
    assert running_progress(-3.0) == 0.0
    assert running_progress(42.04) == 42.0
    assert running_progress(100.0) == 99.0


class EndingRemote(FakeEngine):
    """A detached application whose engine reports progress 100 once it was killed or
    failed, as YARN's ResourceManager does for every finished application."""

    def __init__(self) -> None:
        self.final: str | None = None

    def build(self, job: JobSpec, cluster: ClusterSpec, workdir: Path) -> LaunchSpec:
        spec = super().build(job, cluster, workdir)
        return LaunchSpec(spec.argv, spec.env, spec.cwd, detached=True, inputs=spec.inputs)

    def observe(self, job: JobSpec, workdir: Path, launch: LaunchSpec) -> Observation:
        return Observation(app_id="application_1_0001")

    def status(self, job, workdir, launch, app_id, launcher_id, cluster=None):  # type: ignore[no-untyped-def]
        if self.final:
            return RemoteStatus(self.final, app_id=app_id, progress=100.0)
        return RemoteStatus("running", app_id=app_id, progress=37.0)


@pytest.mark.parametrize("final", ["killed", "failed"])
def test_an_ended_remote_application_keeps_the_last_running_value(world, final) -> None:
    engine = EndingRemote()
    sup = _supervisor(world, engine)
    jid = world.submit()
    drive(sup, lambda: world.show(jid).progress == 37.0)
    engine.final = final
    drive(sup, lambda: world.show(jid).state in ("KILLED", "FINISHED", "FAILED"))
    job = world.show(jid)
    assert job.result != "SUCCEEDED"
    assert job.progress == 37.0  # not the engine's 100 (nor 99)
