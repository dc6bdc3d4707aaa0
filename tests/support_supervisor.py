"""Supervisor test helpers: a fake engine adapter, a service world, and drive()."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mrs_jobs.engines.base import ClusterSpec, EngineAdapter, JobSpec, LaunchSpec, Observation
from mrs_jobs.engines.registry import EngineRegistry
from mrs_jobs.services.batch_delete import BatchDeleteService
from mrs_jobs.services.bootstrap import Bootstrap
from mrs_jobs.services.context import Caller
from mrs_jobs.services.jobs import JobService
from mrs_jobs.settings import Settings
from mrs_jobs.store import Store
from mrs_jobs.supervisor.loop import Supervisor

FAKE = str(Path(__file__).resolve().parent / "fake_engine.py")


class FakeEngine(EngineAdapter):
    """Runs tests/fake_engine.py with the job's arguments; 'running' once launched."""

    job_types = frozenset({"SparkSubmit"})

    def build(self, job: JobSpec, cluster: ClusterSpec, workdir: Path) -> LaunchSpec:
        if job.arguments[:1] == ["--refuse"]:
            from mrs_jobs.engines.base import EngineRefused

            raise EngineRefused("refused by the fake engine")
        return LaunchSpec(
            argv=[sys.executable, FAKE, *job.arguments],
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
            cwd=str(workdir),
            notes=["fake engine"],
            inputs=(FAKE,),  # the engine's own program: shown even in a box with roots
        )

    def observe(self, job: JobSpec, workdir: Path, launch: LaunchSpec) -> Observation:
        return Observation(app_id=f"fake-{job.job_id[:8]}", running=True, progress=50.0)


@dataclass
class World:
    store: Store
    settings: Settings
    jobs: JobService
    deletes: BatchDeleteService
    caller: Caller
    cluster_id: str
    boot: Bootstrap

    def supervisor(self) -> Supervisor:
        return Supervisor(self.store, self.settings, EngineRegistry([FakeEngine()]))

    def submit(self, *args: str, name: str = "fake") -> str:
        job = self.jobs.submit(
            self.caller,
            self.cluster_id,
            job_type="SparkSubmit",
            job_name=name,
            arguments=list(args),
            properties={},
        )
        return job.id

    def show(self, job_id: str):  # type: ignore[no-untyped-def]
        from mrs_jobs.store import jobs as job_store

        with self.store.read() as conn:
            return job_store.get_job(conn, job_id)


def drive(sup: Supervisor, cond: Callable[[], bool], timeout: float = 15.0) -> None:
    """Run supervisor passes until ``cond`` holds (fails the test on timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sup.run_once()
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def marked_pids(job_id: str) -> list[int]:
    """Live processes carrying MRS_JOBS_JOB_ID=<job_id> (engine, shim, grandchildren)."""
    from mrs_jobs.runtime.process import group_alive  # noqa: F401 - same /proc view

    out = []
    needle = f"MRS_JOBS_JOB_ID={job_id}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if needle in env.split(b"\0") and stat.rsplit(")", 1)[1].split()[0] != "Z":
            out.append(int(entry.name))
    return out
