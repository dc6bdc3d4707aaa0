"""The supervisor's side of links that outlive a run: the engine's ``ended_tracking_url`` is
recorded with the ending, and ``forget`` is called when a deleted job is purged, while its
directory still exists."""

from __future__ import annotations

from pathlib import Path

import pytest
from support_supervisor import FakeEngine, drive

from mrs_jobs.engines.base import ClusterSpec, LaunchSpec
from mrs_jobs.engines.registry import EngineRegistry
from mrs_jobs.supervisor.loop import Supervisor

pytestmark = pytest.mark.timeout(60)


class LinkingEngine(FakeEngine):
    def __init__(self) -> None:
        self.ended: list[tuple[str, str | None, str | None, str | None]] = []
        self.forgotten: list[tuple[str, str | None, str, bool]] = []

    def ended_tracking_url(
        self,
        job_id: str,
        workdir: Path,
        launch: LaunchSpec,
        app_id: str | None,
        cluster: ClusterSpec | None = None,
    ) -> str | None:
        kind = cluster.kind if cluster else None
        self.ended.append((job_id, app_id, cluster.cluster_id if cluster else None, kind))
        return f"http://svc/spark-history/{cluster.cluster_id if cluster else '-'}/{app_id}"

    def forget(self, job_id: str, workdir: Path, app_id: str | None, cluster_id: str) -> None:
        self.forgotten.append((job_id, app_id, cluster_id, workdir.is_dir()))


def test_the_ending_records_the_engines_lasting_url_and_purge_forgets_it(world) -> None:  # type: ignore[no-untyped-def]
    engine = LinkingEngine()
    sup = Supervisor(world.store, world.settings, EngineRegistry([engine]))
    job_id = world.submit("--sleep", "0.5", "--exit", "0")
    drive(sup, lambda: world.show(job_id).state == "FINISHED")
    job = world.show(job_id)
    app_id = f"fake-{job_id[:8]}"
    assert job.app_id == app_id
    assert job.tracking_url == f"http://svc/spark-history/{world.cluster_id}/{app_id}"
    assert engine.ended == [(job_id, app_id, world.cluster_id, "local")]

    world.deletes.delete(world.caller, world.cluster_id, [job_id])
    drive(sup, lambda: world.show(job_id) is None)
    assert engine.forgotten == [(job_id, app_id, world.cluster_id, True)]
    assert not Path(job.workdir).exists()


def test_a_job_deleted_before_it_ended_gets_no_lasting_url(world) -> None:  # type: ignore[no-untyped-def]
    engine = LinkingEngine()
    sup = Supervisor(world.store, world.settings, EngineRegistry([engine]))
    job_id = world.submit("--sleep", "60")
    drive(sup, lambda: world.show(job_id).state == "RUNNING")
    world.deletes.delete(world.caller, world.cluster_id, [job_id])
    drive(sup, lambda: world.show(job_id) is None, timeout=30)
    assert engine.ended == []
    assert [f[0] for f in engine.forgotten] == [job_id]
