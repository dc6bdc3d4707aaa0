"""ARCHITECTURE.md's "Adding an engine" walkthrough, followed literally, in one file.

Step 1: a subclass of ``EngineAdapter`` with ``job_types`` and ``build`` (its environment from
``kit.launch_env``, a private file through ``jobdir.write_private``, refusals as
``EngineRefused``). Step 2: only the hooks it has (``observe``, ``secret_files``). Step 3:
registered in an ``EngineRegistry``. Step 4: a supervisor runs it, boxed like any engine, and
every end-of-job rule applies to it unchanged.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support_supervisor import drive

from mrs_jobs.engines.base import (
    ClusterSpec,
    EngineAdapter,
    EngineRefused,
    JobSpec,
    LaunchSpec,
    Observation,
)
from mrs_jobs.engines.kit import job_dirs, launch_env
from mrs_jobs.engines.registry import EngineRegistry
from mrs_jobs.runtime import jobdir
from mrs_jobs.supervisor.loop import Supervisor

pytestmark = pytest.mark.timeout(90)

SCRIPT = 'cat toy.secret >/dev/null && echo "toy says: $*"; sleep 0.5; exit "${TOY_EXIT:-0}"'


class ToyEngine(EngineAdapter):
    """Echoes its arguments; ``exit=N`` as the first argument makes it exit with N."""

    job_types = frozenset({"SparkSubmit"})
    secret_files = ("toy.secret",)

    def build(self, job: JobSpec, cluster: ClusterSpec, workdir: Path) -> LaunchSpec:
        if not job.arguments:
            raise EngineRefused("the toy engine needs at least one word")
        words = list(job.arguments)
        code = words.pop(0).removeprefix("exit=") if words[0].startswith("exit=") else "0"
        workdir = job_dirs(workdir, "tmp")
        jobdir.write_private(workdir / "toy.secret", "a token only this run may read")
        env = launch_env(workdir, workdir / "tmp")
        env["TOY_EXIT"] = code
        return LaunchSpec(["/bin/sh", "-c", SCRIPT, "toy", *words], env, str(workdir))

    def observe(self, job: JobSpec, workdir: Path, launch: LaunchSpec) -> Observation:
        return Observation(app_id=f"toy-{job.job_id[:8]}", running=True, progress=40.0)


def _supervisor(world) -> Supervisor:  # type: ignore[no-untyped-def]
    return Supervisor(world.store, world.settings, EngineRegistry([ToyEngine()]))


def _end(world, sup: Supervisor, job_id: str):  # type: ignore[no-untyped-def]
    drive(sup, lambda: world.show(job_id).state in ("FINISHED", "FAILED", "KILLED"))
    return world.show(job_id)


def test_a_toy_engine_runs_to_success(world) -> None:  # type: ignore[no-untyped-def]
    sup = _supervisor(world)
    job = _end(world, sup, world.submit("hello", "box"))
    assert (job.state, job.result) == ("FINISHED", "SUCCEEDED")
    assert job.app_id == f"toy-{job.id[:8]}"  # its observe() was used
    assert job.progress == 100.0
    workdir = Path(job.workdir)
    assert (workdir / jobdir.STDOUT).read_text().strip() == "toy says: hello box"
    assert not (workdir / "toy.secret").exists()  # its declared secret file went at the end
    assert not (workdir / jobdir.LAUNCH).exists()


def test_a_toy_engine_failure_follows_the_common_rules(world) -> None:  # type: ignore[no-untyped-def]
    sup = _supervisor(world)
    job = _end(world, sup, world.submit("exit=3", "oops"))
    # it said it was running, then exited 3: finished, unsuccessfully (domain/outcome.py)
    assert (job.state, job.result) == ("FINISHED", "FAILED")
    assert job.reason == "the engine exited with code 3"


def test_a_toy_engine_refusal_fails_the_job_with_its_reason(world) -> None:  # type: ignore[no-untyped-def]
    sup = _supervisor(world)
    refused = world.submit()
    good = world.submit("still", "runs")
    assert (_end(world, sup, refused).state, _end(world, sup, good).state) == ("FAILED", "FINISHED")
    assert world.show(refused).reason == "could not launch: the toy engine needs at least one word"
