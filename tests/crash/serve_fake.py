"""``mrs-jobs serve`` whose SparkSubmit jobs starting with "fake" run tests/fake_engine.py.

Used by the crash test: cheap jobs that sleep, print and exit, next to real Spark jobs (any
other SparkSubmit goes to the real engine). The engine choice is patched in here, in the test
tree; the service itself has no test hooks.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mrs_jobs.engines.base import ClusterSpec, EngineAdapter, JobSpec, LaunchSpec, Observation
from mrs_jobs.engines.registry import EngineRegistry
from mrs_jobs.engines.spark import SparkSubmitEngine
from mrs_jobs.server import run_server
from mrs_jobs.settings import get_settings

FAKE = str(Path(__file__).resolve().parent.parent / "fake_engine.py")


class FakeOrSpark(EngineAdapter):
    job_types = frozenset({"SparkSubmit"})

    def __init__(self) -> None:
        self.spark = SparkSubmitEngine()

    def build(self, job: JobSpec, cluster: ClusterSpec, workdir: Path) -> LaunchSpec:
        if job.arguments[:1] != ["fake"]:
            return self.spark.build(job, cluster, workdir)
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
        if os.environ.get("FAKE_ENGINE_LAUNCH_LOG"):
            env["FAKE_ENGINE_LAUNCH_LOG"] = os.environ["FAKE_ENGINE_LAUNCH_LOG"]
        return LaunchSpec(
            [sys.executable, FAKE, *job.arguments[1:]], env, str(workdir), inputs=(FAKE,)
        )

    def observe(self, job: JobSpec, workdir: Path, launch: LaunchSpec) -> Observation:
        if job.arguments[:1] != ["fake"]:
            return self.spark.observe(job, workdir, launch)
        return Observation(app_id=f"fake-{job.job_id[:8]}", running=True)


if __name__ == "__main__":
    EngineRegistry.from_settings = classmethod(  # type: ignore[method-assign]
        lambda cls, settings, *rest, **kw: cls([FakeOrSpark()])
    )
    sys.exit(run_server(get_settings()))
