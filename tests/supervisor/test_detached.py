"""Detached applications (cluster deploy mode): followed through their engine by id, not by pid.

The "remote engine" here is a JSON file the test controls (application id -> state), and the
launcher is the fake engine script printing the id it "submitted" and exiting 0, as
spark-submit does in cluster mode. Real engines are in tests/engines and tests/acceptance.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from support_supervisor import FAKE, drive

from mrs_jobs.engines.base import (
    ClusterSpec,
    EngineAdapter,
    JobSpec,
    LaunchSpec,
    Observation,
    RemoteStatus,
)
from mrs_jobs.engines.registry import EngineRegistry
from mrs_jobs.supervisor import detached
from mrs_jobs.supervisor.loop import Supervisor


class RemoteCluster:
    """A stand-in for a master/RM: application states in a file, reachable or not."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.reachable = True
        self.cancelled: list[str] = []
        self.asked: list[tuple[str | None, str | None]] = []
        self.clusters: list[ClusterSpec | None] = []
        self.logs: dict[str, str] = {}  # what the cluster kept of an application's driver
        self.path.write_text("{}")

    def set(self, app_id: str, state: str) -> None:
        apps = json.loads(self.path.read_text())
        apps[app_id] = state
        self.path.write_text(json.dumps(apps))

    def get(self, app_id: str) -> str | None:
        return json.loads(self.path.read_text()).get(app_id)


class DetachedEngine(EngineAdapter):
    job_types = frozenset({"SparkSubmit"})

    def __init__(self, remote: RemoteCluster) -> None:
        self.remote = remote

    def build(self, job: JobSpec, cluster: ClusterSpec, workdir: Path) -> LaunchSpec:
        app_id = f"app-{job.job_id[:8]}"
        self.remote.set(app_id, "pending")
        return LaunchSpec(
            argv=[sys.executable, FAKE, "--print", f"submitted {app_id} as driver-{app_id}"],
            env={"PATH": "/usr/bin:/bin"},
            cwd=str(workdir),
            detached=True,
            inputs=(FAKE,),
        )

    def observe(self, job: JobSpec, workdir: Path, launch: LaunchSpec) -> Observation:
        out = (workdir / "stdout.log").read_text() if (workdir / "stdout.log").exists() else ""
        m = re.search(r"submitted (\S+) as (\S+)", out)
        if not m:
            return Observation()
        return Observation(app_id=m.group(1), launcher_id=m.group(2))

    def status(
        self,
        job: JobSpec,
        workdir: Path,
        launch: LaunchSpec,
        app_id: str | None,
        launcher_id: str | None,
        cluster: ClusterSpec | None = None,
    ) -> RemoteStatus | None:
        self.remote.asked.append((app_id, launcher_id))
        self.remote.clusters.append(cluster)
        if not self.remote.reachable:
            return None
        state = self.remote.get(app_id or "")
        if state is None:
            return RemoteStatus("unknown")
        if state == "failed":
            return RemoteStatus("failed", message="Exception in thread main: boom")
        return RemoteStatus(state, progress=40.0 if state == "running" else None)

    def engine_logs(
        self,
        job: JobSpec,
        workdir: Path,
        launch: LaunchSpec,
        app_id: str | None,
        cluster: ClusterSpec | None = None,
    ) -> str | None:
        return self.remote.logs.get(app_id or "")

    def cancel(
        self, job: JobSpec, workdir: Path, launch: LaunchSpec, cluster: ClusterSpec | None = None
    ) -> bool:
        self.remote.clusters.append(cluster)
        app_id = f"app-{job.job_id[:8]}"
        self.remote.cancelled.append(app_id)
        if self.remote.reachable and self.remote.get(app_id) in ("pending", "running"):
            self.remote.set(app_id, "killed")
        return True


@pytest.fixture
def remote(tmp_path: Path) -> RemoteCluster:
    return RemoteCluster(tmp_path / "remote.json")


def _sup(world, remote: RemoteCluster) -> Supervisor:
    return Supervisor(world.store, world.settings, EngineRegistry([DetachedEngine(remote)]))


def _app(job_id: str) -> str:
    return f"app-{job_id[:8]}"


def _running(world, remote: RemoteCluster) -> tuple[Supervisor, str]:
    """A detached job whose launcher has exited and whose engine says it runs."""
    sup = _sup(world, remote)
    jid = world.submit()
    drive(sup, lambda: remote.asked != [])
    remote.set(_app(jid), "running")
    drive(sup, lambda: world.show(jid).state == "RUNNING")
    return sup, jid


def test_followed_after_its_launcher_exits_until_the_engine_says_done(world, remote) -> None:
    sup = _sup(world, remote)
    jid = world.submit()
    drive(sup, lambda: remote.asked != [])  # the launcher exited; the engine is asked
    assert world.show(jid).state == "ACCEPTED"  # pending in the engine: not running yet
    remote.set(_app(jid), "running")
    drive(sup, lambda: world.show(jid).state == "RUNNING")
    job = world.show(jid)
    assert (job.app_id, job.launcher_id) == (_app(jid), f"driver-{_app(jid)}")
    assert job.progress == 40.0
    assert remote.asked[-1] == (_app(jid), f"driver-{_app(jid)}")
    # where to ask comes from the cluster as configured, not from the job's directory
    assert {c.cluster_id if c else None for c in remote.clusters} == {world.cluster_id}
    remote.set(_app(jid), "succeeded")
    drive(sup, lambda: world.show(jid).state == "FINISHED")
    assert (world.show(jid).result, world.show(jid).progress) == ("SUCCEEDED", 100.0)


def test_failure_in_the_engine_ends_the_job_failed_with_its_message(world, remote) -> None:
    sup, jid = _running(world, remote)
    remote.set(_app(jid), "failed")
    drive(sup, lambda: world.show(jid).result == "FAILED")
    job = world.show(jid)
    assert job.state == "FINISHED" and "boom" in job.reason


def test_kill_cancels_in_the_engine_and_waits_for_it(world, remote) -> None:
    sup, jid = _running(world, remote)
    world.jobs.kill(world.caller, world.cluster_id, jid)
    drive(sup, lambda: world.show(jid).state == "KILLED")
    assert remote.cancelled == [_app(jid)]
    assert remote.get(_app(jid)) == "killed"
    assert world.show(jid).result == "KILLED"
    assert all(c is not None and c.cluster_id == world.cluster_id for c in remote.clusters)


def test_killed_outside_the_service_is_recorded_killed(world, remote) -> None:
    sup = _sup(world, remote)
    jid = world.submit()
    drive(sup, lambda: remote.asked != [])
    remote.set(_app(jid), "killed")
    drive(sup, lambda: world.show(jid).state == "KILLED")
    assert "killed in its engine" in _last_reason(world, jid)


def test_restart_reattaches_by_application_id(world, remote) -> None:
    first = _sup(world, remote)
    jid = world.submit()
    drive(first, lambda: remote.asked != [])
    remote.set(_app(jid), "running")
    drive(first, lambda: world.show(jid).state == "RUNNING")
    del first  # the service "crashed": no stop(), nothing in memory survives
    remote.asked.clear()
    second = _sup(world, remote)
    second.reconcile()
    drive(second, lambda: remote.asked != [])
    assert remote.asked[0] == (_app(jid), f"driver-{_app(jid)}")  # ids from the record
    assert world.show(jid).state == "RUNNING"
    remote.set(_app(jid), "succeeded")
    drive(second, lambda: world.show(jid).state == "FINISHED")
    assert world.show(jid).result == "SUCCEEDED"


def test_unreachable_engine_keeps_the_job_running(world, remote) -> None:
    sup, jid = _running(world, remote)
    remote.reachable = False
    asked = len(remote.asked)
    drive(sup, lambda: len(remote.asked) >= asked + 2, timeout=10)
    assert world.show(jid).state == "RUNNING"  # honest: not known to have ended
    remote.reachable = True
    remote.set(_app(jid), "succeeded")
    drive(sup, lambda: world.show(jid).state == "FINISHED")


def test_unconfirmable_kill_is_recorded_after_the_grace(world, remote, monkeypatch) -> None:
    monkeypatch.setattr(detached, "_UNCONFIRMED_KILL_S", 0.5)
    sup, jid = _running(world, remote)
    remote.reachable = False
    world.jobs.kill(world.caller, world.cluster_id, jid)
    drive(sup, lambda: world.show(jid).state == "KILLED", timeout=10)
    assert remote.cancelled == [_app(jid)]


def test_application_unknown_to_its_engine_fails_after_a_grace(world, remote, monkeypatch) -> None:
    monkeypatch.setattr(detached, "_UNKNOWN_GRACE_S", 0.5)
    sup = _sup(world, remote)
    jid = world.submit()
    drive(sup, lambda: remote.asked != [])
    remote.path.write_text("{}")  # the engine lost it (restarted without recovery)
    drive(sup, lambda: world.show(jid).state in ("FAILED", "FINISHED"), timeout=10)
    assert world.show(jid).result == "FAILED"
    assert "no longer knows" in world.show(jid).reason


def test_deleted_detached_job_is_cancelled_then_purged(world, remote) -> None:
    sup, jid = _running(world, remote)
    world.deletes.delete(world.caller, world.cluster_id, [jid])
    drive(sup, lambda: world.show(jid) is None)
    assert remote.get(_app(jid)) == "killed"  # never purged while it still ran remotely


def test_a_launcher_that_fails_is_not_followed(world, remote, tmp_path) -> None:
    class Refusing(DetachedEngine):
        def build(self, job, cluster, workdir):  # type: ignore[no-untyped-def]
            spec = super().build(job, cluster, workdir)
            return LaunchSpec(
                argv=[sys.executable, FAKE, "--exit", "1"],
                env=spec.env,
                cwd=spec.cwd,
                detached=True,
                inputs=(FAKE,),
            )

    sup = Supervisor(world.store, world.settings, EngineRegistry([Refusing(remote)]))
    jid = world.submit()
    drive(sup, lambda: world.show(jid).result == "FAILED")
    assert remote.asked == []
    assert "code 1" in world.show(jid).reason


def _last_reason(world, job_id: str) -> str:
    from sqlalchemy import select

    from mrs_jobs.store.tables import job_events

    with world.store.read() as conn:
        rows = conn.execute(
            select(job_events.c.reason)
            .where(job_events.c.job_id == job_id)
            .order_by(job_events.c.id)
        ).all()
    return rows[-1].reason or ""


def test_an_ended_applications_cluster_log_is_pulled_in_masked(world, remote) -> None:
    """The driver ran elsewhere: what its cluster kept of it lands in the job's stderr.log,
    its secrets masked, and the diagnostics quote its own error."""
    sup = _sup(world, remote)
    secret = "s3cr3t-remote-91"
    jid = world.jobs.submit(
        world.caller,
        world.cluster_id,
        job_type="SparkSubmit",
        job_name="remote",
        arguments=[],
        properties={"fs.s3a.secret.key": secret},
    ).id
    drive(sup, lambda: remote.asked != [])
    remote.logs[_app(jid)] = (
        f"INFO using key {secret}\nTraceback (most recent call last):\n"
        '  File "app.py", line 3\nValueError: remote-boom-5\n'
    )
    remote.set(_app(jid), "failed")
    drive(sup, lambda: world.show(jid).result == "FAILED")
    log = (Path(world.show(jid).workdir) / "stderr.log").read_text()
    assert f"the application's log from its cluster ({_app(jid)})" in log
    assert "ValueError: remote-boom-5" in log and secret not in log and "******" in log
    reason = world.show(jid).reason
    assert "Exception in thread main: boom" in reason and "ValueError: remote-boom-5" in reason
