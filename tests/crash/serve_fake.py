"""``mrs-jobs serve`` whose SparkSubmit jobs starting with "fake" run tests/fake_engine.py.

Used by the crash test: cheap jobs that sleep, print and exit, next to real engine jobs (any
other SparkSubmit goes to the real Spark engine, every other job type to its real engine, as
``EngineRegistry.from_settings`` makes them). The engine choice is patched in here, in the test
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

    def __init__(self, spark: EngineAdapter) -> None:
        self.spark = spark
        self.secret_files = spark.secret_files

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

    def diagnostics(self, job: JobSpec, workdir: Path, launch: LaunchSpec) -> str | None:
        if job.arguments[:1] != ["fake"]:
            return self.spark.diagnostics(job, workdir, launch)
        return None


def with_fake(real: EngineRegistry) -> EngineRegistry:
    """The installation's engines, SparkSubmit's wrapped so that fake jobs run the fake."""
    spark = real.for_type("SparkSubmit")
    assert isinstance(spark, SparkSubmitEngine), spark
    others = [e for e in real.engines if "SparkSubmit" not in e.job_types]
    return EngineRegistry([FakeOrSpark(spark), *others])


if __name__ == "__main__":
    real_engines = EngineRegistry.from_settings
    EngineRegistry.from_settings = classmethod(  # type: ignore[method-assign]
        lambda cls, settings, *rest, **kw: with_fake(real_engines(settings, *rest, **kw))
    )
    sys.exit(run_server(get_settings()))
