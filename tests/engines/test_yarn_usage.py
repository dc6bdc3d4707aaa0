"""What a job's YARN application used, from recorded ResourceManager application reports.

``vcoreSeconds`` becomes the job's ``cpu_seconds``; ``memorySeconds`` over the elapsed
seconds its ``peak_memory_mb`` (the average allocation: YARN reports no peak).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from support_recorded import Replay, load, serve

from mrs_jobs.engines.base import ClusterSpec, JobSpec, LaunchSpec, Usage
from mrs_jobs.engines.kit import RemoteEngine
from mrs_jobs.engines.mapreduce import MapReduceEngine
from mrs_jobs.engines.spark import SparkSubmitEngine
from mrs_jobs.engines.yarn import YarnClient, usage_of_report
from mrs_jobs.runtime import jobdir

APP = "application_1764460800000_0042"
RM = "http://rm.example.internal:8088"
JOB = JobSpec("j-1", "MapReduce", "wordcount", [], {})
LAUNCH = LaunchSpec(argv=["java"], env={}, cwd="/tmp")


def _usage(fixture: str) -> Usage:
    replay = Replay(load(f"yarn/{fixture}"))
    got = YarnClient(RM, transport=replay.transport).usage(APP)
    replay.done()
    return got


def test_a_finished_application_gives_its_vcore_and_memory_seconds() -> None:
    # vcoreSeconds 118; memorySeconds 201433 over elapsedTime 120656 ms: 1669 MB on average.
    assert _usage("app_finished_succeeded.json") == Usage(cpu_seconds=118.0, peak_memory_mb=1669)


@pytest.mark.parametrize("fixture", ["app_killed.json", "app_failed.json", "app_running.json"])
def test_every_report_that_has_the_figures_gives_them(fixture: str) -> None:
    app = load(f"yarn/{fixture}")["response"]["body"]["app"]
    got = _usage(fixture)
    assert got.cpu_seconds == float(app["vcoreSeconds"])
    assert got.peak_memory_mb == round(app["memorySeconds"] / (app["elapsedTime"] / 1000))


def test_unknown_application_or_unreachable_rm_is_unknown() -> None:
    assert _usage("app_not_found.json") == Usage()

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    down = YarnClient(RM, transport=httpx.MockTransport(refuse))
    assert down.usage(APP) == Usage()
    assert down.usage("not-an-app") == Usage()


def test_report_figures_that_are_missing_or_odd_are_unknown() -> None:
    assert usage_of_report({}) == Usage()
    odd = {"vcoreSeconds": "x", "memorySeconds": -5, "elapsedTime": 1000}
    assert usage_of_report(odd) == Usage()
    no_time = {"vcoreSeconds": 7, "memorySeconds": 1024, "elapsedTime": 0}
    assert usage_of_report(no_time) == Usage(cpu_seconds=7.0)
    short = {"vcoreSeconds": 1, "memorySeconds": 512, "elapsedTime": 200}  # under a second
    assert usage_of_report(short) == Usage(cpu_seconds=1.0, peak_memory_mb=512)


class _Toy(RemoteEngine):
    def __init__(self, answer: object) -> None:
        self.answer = answer

    def application(self, job, workdir, launch, cluster):  # type: ignore[no-untyped-def]
        if self.answer == "here":
            return None

        class App:
            def usage(_self, app_id: str | None) -> Usage | None:  # noqa: N805
                return self.answer  # type: ignore[return-value]

        return App()


def test_the_engine_answer_replaces_what_the_shim_measured_only_when_it_ran_remotely() -> None:
    local = Usage(cpu_seconds=2.0, peak_memory_mb=100)
    assert _Toy("here").usage(JOB, Path("/tmp"), LAUNCH, local=local) == local
    assert _Toy(None).usage(JOB, Path("/tmp"), LAUNCH, local=local) == local  # ran here
    assert _Toy(Usage()).usage(JOB, Path("/tmp"), LAUNCH, local=local) == Usage()  # unknown
    yarn = Usage(cpu_seconds=118.0, peak_memory_mb=1669)
    assert _Toy(yarn).usage(JOB, Path("/tmp"), LAUNCH, local=local) == yarn


def test_a_local_mapreduce_job_keeps_what_its_processes_used(tmp_path: Path) -> None:
    jobdir.write_engine_record(tmp_path, "mapreduce", kind="local")
    local = Usage(cpu_seconds=3.5, peak_memory_mb=300)
    cluster = ClusterSpec("c-1")
    got = MapReduceEngine().usage(JOB, tmp_path, LAUNCH, None, cluster, local)
    assert got == local


@pytest.mark.parametrize("engine", ["mapreduce", "spark"])
def test_a_yarn_job_is_counted_from_its_applications_report(tmp_path: Path, engine: str) -> None:
    """The engines' own hooks ask the RM their records name (a real local HTTP server
    replaying the report), for the application id the supervisor recorded."""
    replay = Replay(load("yarn/app_finished_succeeded.json"))
    local = Usage(cpu_seconds=3.0, peak_memory_mb=200)  # the launcher's: not the job's
    with serve(replay) as rm:
        jobdir.write_engine_record(tmp_path, engine, kind="yarn", rm_url=rm)
        if engine == "mapreduce":
            got = MapReduceEngine().usage(JOB, tmp_path, LAUNCH, APP, None, local)
        else:
            spark = JobSpec("j-2", "SparkSubmit", "pi", ["/x.py"], {})
            got = SparkSubmitEngine().usage(spark, tmp_path, LAUNCH, APP, None, local)
    replay.done()
    assert got == Usage(cpu_seconds=118.0, peak_memory_mb=1669)
