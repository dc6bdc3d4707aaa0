"""A job's ``diagnostics``: why it ended as it did, in the engine's own words where the engine
failed, with who killed it, with the limit it ran into; empty when it succeeded; never a
secret."""

from __future__ import annotations

import pytest
from support_supervisor import drive

pytestmark = pytest.mark.timeout(90)


def _submit(world, *args: str, properties: dict[str, str] | None = None) -> str:  # type: ignore[no-untyped-def]
    job = world.jobs.submit(
        world.caller,
        world.cluster_id,
        job_type="SparkSubmit",
        job_name="diag",
        arguments=list(args),
        properties=properties or {},
    )
    return job.id


def _ended(world, sup, job_id: str):  # type: ignore[no-untyped-def]
    drive(sup, lambda: world.show(job_id).result != "UNDEFINED", timeout=30)
    return world.show(job_id)


def test_an_engine_failure_in_the_engines_own_words(world) -> None:  # type: ignore[no-untyped-def]
    sup = world.supervisor()
    job_id = _submit(
        world,
        *("--eprint", "Traceback (most recent call last):"),
        *("--eprint", '  File "app.py", line 1, in <module>'),
        *("--eprint", "ValueError: boom-5e1d"),
        *("--exit", "1"),
    )
    job = _ended(world, sup, job_id)
    assert job.result == "FAILED"
    assert job.reason == "the engine exited with code 1\nValueError: boom-5e1d"


def test_a_secret_the_engine_printed_is_masked(world) -> None:  # type: ignore[no-untyped-def]
    sup = world.supervisor()
    secret = "sekrit-7c0ffee"
    job_id = _submit(
        world,
        *("--eprint", f"java.lang.IllegalStateException: the key {secret} was refused"),
        *("--exit", "2"),
        properties={"fs.s3a.secret.key": secret},
    )
    job = _ended(world, sup, job_id)
    assert "java.lang.IllegalStateException: the key ****** was refused" in job.reason
    assert secret not in job.reason


def test_success_leaves_it_empty(world) -> None:  # type: ignore[no-untyped-def]
    sup = world.supervisor()
    job_id = _submit(world, "--eprint", "ValueError: printed, but the run succeeded")
    job = _ended(world, sup, job_id)
    assert job.result == "SUCCEEDED" and job.reason == ""


def test_a_kill_names_who_asked(world) -> None:  # type: ignore[no-untyped-def]
    sup = world.supervisor()
    running = _submit(world, "--sleep", "30")
    drive(sup, lambda: world.show(running).state == "RUNNING")
    world.jobs.kill(world.caller, world.cluster_id, running)
    assert _ended(world, sup, running).reason == "killed on request (request req-1 by tester)"
    queued = _submit(world, "--sleep", "30")  # no pass runs: it is still queued
    world.jobs.kill(world.caller, world.cluster_id, queued)
    assert world.show(queued).reason == "killed before launch (request req-1 by tester)"


def test_a_timeout_names_its_limit(world) -> None:  # type: ignore[no-untyped-def]
    sup = world.supervisor()
    job_id = _submit(world, "--sleep", "30", properties={"mrs.job.timeout": "1"})
    job = _ended(world, sup, job_id)
    assert job.result == "FAILED"
    assert job.reason == "timed out after 1 s (mrs.job.timeout)"


def test_a_refused_launch_says_why(world) -> None:  # type: ignore[no-untyped-def]
    sup = world.supervisor()
    job_id = _submit(world, "--refuse")
    job = _ended(world, sup, job_id)
    assert job.result == "FAILED" and "refused by the fake engine" in job.reason
