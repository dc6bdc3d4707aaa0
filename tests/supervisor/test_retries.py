"""(ours) Retries: ``mrs.job.retries`` and ``mrs.job.retry.delay``.

A failed attempt with retries left goes back to SUBMITTED (the job stays live), waits out its
backoff in the queue, and runs again as a fresh run; a kill never retries; the last failure
ends the job as any failure does (the cluster's ``failed_job_state`` included). The engine is
tests/fake_engine.py with ``--count-file`` (a line per start) and ``--fail-times``.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from support_supervisor import World, drive

from mrs_jobs.domain.retries import MAX_BACKOFF_SECONDS, RetryPolicy, retry_policy
from mrs_jobs.errors import InvalidParameter
from mrs_jobs.services.cluster_admin import ClusterAdmin
from mrs_jobs.store import events as events_store
from mrs_jobs.store import jobs as job_store
from mrs_jobs.store import supervision as sup_store
from mrs_jobs.store.tables import jobs as jobs_table
from mrs_jobs.supervisor.jobfiles import fresh_run_dir, retry_policy_of

TERMINAL = ("FINISHED", "FAILED", "KILLED")
COUNT = "starts"  # in the test's directory, an output root of the cluster


@pytest.fixture(autouse=True)
def _output_root(world: World) -> None:
    """Jobs may write the count file in the test's directory (their box shows it)."""
    root = str(Path(world.settings.data_dir).parent)
    ClusterAdmin(world.store).update_cluster(world.cluster_id, settings={"output_roots": [root]})


def _count(world: World) -> str:
    return str(Path(world.settings.data_dir).parent / COUNT)


def _submit(world: World, *args: str, **properties: str) -> str:
    return world.jobs.submit(
        world.caller,
        world.cluster_id,
        job_type="SparkSubmit",
        job_name="retried",
        arguments=list(args),
        properties=properties,
    ).id


def _retrying(retries: int, delay: int = 0) -> dict[str, str]:
    return {"mrs.job.retries": str(retries), "mrs.job.retry.delay": str(delay)}


def _starts(world: World, job_id: str) -> int:
    """The engine's starts of this job, from the count file it appends to in an output root
    (outside the job's directory, which each attempt finds empty but for its logs)."""
    path = Path(world.settings.data_dir).parent / COUNT
    lines = path.read_text().splitlines() if path.exists() else []
    return lines.count(job_id)


def _events(world: World, job_id: str):  # type: ignore[no-untyped-def]
    with world.store.read() as conn:
        return events_store.list_events(conn, job_id)


def _ended(world: World, job_id: str) -> bool:
    return world.show(job_id).state in TERMINAL


def test_a_job_that_fails_twice_then_succeeds_ends_succeeded_after_three_attempts(
    world: World, tmp_path: Path
) -> None:
    job_id = _submit(
        world, "--count-file", _count(world), "--fail-times", "2", "--print", "out", **_retrying(3)
    )
    drive(world.supervisor(), lambda: _ended(world, job_id), timeout=30)
    job = world.show(job_id)
    assert (job.state, job.result) == ("FINISHED", "SUCCEEDED")
    assert job.attempt == 3 and job.reason == "" and job.progress == 100.0
    assert _starts(world, job_id) == 3
    events = _events(world, job_id)
    assert [e.to_state for e in events].count("ACCEPTED") == 3
    retried = [e for e in events if e.to_state == "SUBMITTED" and e.from_state != "NEW_SAVING"]
    assert [e.from_state for e in retried] == ["RUNNING", "RUNNING"]
    assert retried[0].reason.startswith("attempt 1 of 4 failed: the engine exited with code 1")
    assert retried[1].reason.startswith("attempt 2 of 4 failed: ")
    assert retried[0].reason.endswith("retrying in 0 s")
    assert all(e.actor.startswith("supervisor ") for e in retried)
    # Each attempt's logs are marked where they start; the earlier failures stay readable.
    stdout = (Path(job.workdir) / "stdout.log").read_text()
    assert "[mrs-jobs] attempt 2 of 4" in stdout and "[mrs-jobs] attempt 3 of 4" in stdout
    assert stdout.count("out\n") == 3


def test_a_failed_attempt_waits_in_the_queue_for_its_backoff(world: World, tmp_path: Path) -> None:
    job_id = _submit(world, "--count-file", _count(world), "--fail-times", "1", **_retrying(2, 2))
    sup = world.supervisor()
    drive(sup, lambda: world.show(job_id).attempt == 2)
    queued = world.show(job_id)
    # Live for the SDK: queued again, no result, the failed attempt's reason in diagnostics.
    assert (queued.state, queued.result) == ("SUBMITTED", "UNDEFINED")
    assert queued.reason.startswith("attempt 1 of 3 failed: the engine exited with code 1")
    assert queued.reason.endswith("; retrying in 2 s")
    assert (queued.pid, queued.app_id, queued.progress, queued.finished_ms) == (None, "", 0.0, 0)
    assert queued.retry_at_ms > job_store.now_ms() + 1000
    # Nothing of the failed run can be taken for the next one's, even after a crash between
    # the next claim and its launch (no launch record: it is requeued, not lost).
    workdir = Path(queued.workdir or "")
    assert not (workdir / "exit.json").exists() and not (workdir / "launch.json").exists()
    until = time.monotonic() + 1.0
    while time.monotonic() < until:  # passes before the backoff ends do not claim it
        sup.run_once()
        time.sleep(0.05)
    assert world.show(job_id).state == "SUBMITTED" and _starts(world, job_id) == 1
    drive(sup, lambda: _ended(world, job_id), timeout=15)
    assert world.show(job_id).result == "SUCCEEDED" and _starts(world, job_id) == 2
    claims = [e for e in _events(world, job_id) if e.to_state == "ACCEPTED"]
    assert claims[1].at_ms >= queued.retry_at_ms


def test_the_claim_skips_a_retry_before_its_time(world: World) -> None:
    job_id = _submit(world, "--sleep", "0")
    later = job_store.now_ms() + 60_000
    with world.store.write() as conn:
        sup_store.set_fields(conn, job_id, retry_at_ms=later, attempt=2)
    args = (world.boot.project_id, world.cluster_id, "sup-test", None, lambda i: f"/tmp/{i}", False)
    pair = (world.boot.project_id, world.cluster_id)
    with world.store.read() as conn:  # no write transaction per pass for a waiting retry
        assert pair not in sup_store.queued_clusters(conn, later - 1)
        assert pair in sup_store.queued_clusters(conn, later)
    with world.store.write() as conn:
        assert sup_store.claim(conn, args[0], args[1], args[2], later - 1, args[4], False) == []
    with world.store.write() as conn:
        claimed = sup_store.claim(conn, args[0], args[1], args[2], later, args[4], False)
    assert [j.id for j in claimed] == [job_id]


@pytest.mark.parametrize(("setting", "state"), [(None, "FINISHED"), ("FAILED", "FAILED")])
def test_when_retries_run_out_the_last_failure_ends_the_job(
    world: World, tmp_path: Path, setting: str | None, state: str
) -> None:
    if setting is not None:
        root = str(Path(world.settings.data_dir).parent)
        ClusterAdmin(world.store).update_cluster(
            world.cluster_id, settings={"failed_job_state": setting, "output_roots": [root]}
        )
    job_id = _submit(world, "--count-file", _count(world), "--exit", "3", **_retrying(1))
    drive(world.supervisor(), lambda: _ended(world, job_id), timeout=20)
    job = world.show(job_id)
    assert (job.state, job.result, job.attempt) == (state, "FAILED", 2)
    assert job.reason.startswith("attempt 2 of 2 failed: the engine exited with code 3")
    assert _starts(world, job_id) == 2
    path = [(e.from_state, e.to_state) for e in _events(world, job_id)]
    assert path[-1] == ("RUNNING", state) and ("RUNNING", "SUBMITTED") in path


def test_a_timed_out_attempt_is_a_failed_attempt(world: World, tmp_path: Path) -> None:
    props = {**_retrying(1), "mrs.job.timeout": "1"}
    job_id = _submit(world, "--count-file", _count(world), "--sleep", "30", **props)
    drive(world.supervisor(), lambda: _ended(world, job_id), timeout=30)
    job = world.show(job_id)
    assert (job.state, job.result, job.attempt) == ("FAILED", "FAILED", 2)
    assert "timed out after 1 s" in job.reason and _starts(world, job_id) == 2
    first = next(e for e in _events(world, job_id) if e.reason.startswith("attempt 1 of 2"))
    assert "timed out after 1 s (mrs.job.timeout)" in first.reason


def test_a_job_killed_during_an_attempt_is_not_retried(world: World, tmp_path: Path) -> None:
    job_id = _submit(world, "--count-file", _count(world), "--sleep", "30", **_retrying(3))
    sup = world.supervisor()
    drive(sup, lambda: world.show(job_id).state == "RUNNING" and _starts(world, job_id) == 1)
    world.jobs.kill(world.caller, world.cluster_id, job_id)
    drive(sup, lambda: _ended(world, job_id), timeout=20)
    for _ in range(10):
        sup.run_once()
        time.sleep(0.05)
    job = world.show(job_id)
    assert (job.state, job.result, job.attempt) == ("KILLED", "KILLED", 1)
    assert _starts(world, job_id) == 1
    assert not any(e.reason.startswith("attempt ") for e in _events(world, job_id))


def test_a_job_killed_while_queued_for_a_retry_is_not_run_again(
    world: World, tmp_path: Path
) -> None:
    job_id = _submit(world, "--count-file", _count(world), "--exit", "1", **_retrying(3, 1))
    sup = world.supervisor()
    drive(sup, lambda: world.show(job_id).attempt == 2)
    assert world.show(job_id).state == "SUBMITTED"
    world.jobs.kill(world.caller, world.cluster_id, job_id)
    until = time.monotonic() + 2.0  # past its backoff
    while time.monotonic() < until:
        sup.run_once()
        time.sleep(0.05)
    job = world.show(job_id)
    assert (job.state, job.result) == ("KILLED", "KILLED")
    assert job.reason.startswith("killed while queued for attempt 2")
    assert _starts(world, job_id) == 1


def test_a_lost_engine_is_a_failed_attempt_retried(world: World) -> None:
    """Take-over of a job whose supervisor on another host is gone: retried, not FAILED."""
    job_id = _submit(world, "--sleep", "0", **_retrying(1))
    with world.store.write() as conn:
        job_store.transition(conn, job_id, _state("ACCEPTED"), values={"owner": "gone", "pid": 1})
        job_store.transition(conn, job_id, _state("RUNNING"))
    sup = world.supervisor()
    job = world.show(job_id)
    sup.launcher.finisher.lost(job, "the supervisor gone on elsewhere stopped heartbeating")
    queued = world.show(job_id)
    assert (queued.state, queued.attempt, queued.owner, queued.pid) == ("SUBMITTED", 2, None, None)
    assert "attempt 1 of 2 failed: the supervisor gone on elsewhere" in queued.reason
    # Its last attempt lost too: FAILED with the reason, as before retries.
    with world.store.write() as conn:
        job_store.transition(conn, job_id, _state("ACCEPTED"), values={"owner": "gone", "pid": 1})
    sup.launcher.finisher.lost(world.show(job_id), "lost again")
    ended = world.show(job_id)
    assert (ended.state, ended.result, ended.reason) == ("FAILED", "FAILED", "lost again")


def _state(name: str):  # type: ignore[no-untyped-def]
    from mrs_jobs.domain.states import JobState

    return JobState(name)


@pytest.mark.parametrize(
    "properties",
    [
        {"mrs.job.retries": "11"},
        {"mrs.job.retries": "-1"},
        {"mrs.job.retries": "two"},
        {"mrs.job.retries": "1.5"},
        {"mrs.job.retry.delay": "3601"},
        {"mrs.job.retry.delay": "-5"},
        {"mrs.job.retry.delay": "１０"},
    ],
)
def test_bad_retry_properties_are_refused_at_submit_and_nothing_is_stored(
    world: World, properties: dict[str, str]
) -> None:
    with pytest.raises(InvalidParameter, match=r"properties\[mrs\.job\.retr"):
        _submit(world, "--sleep", "0", **properties)
    with world.store.read() as conn:
        assert conn.execute(jobs_table.select()).first() is None


def test_the_backoff_doubles_and_is_capped() -> None:
    policy = retry_policy({"mrs.job.retries": "10", "mrs.job.retry.delay": "10"})
    assert [policy.backoff_seconds(n) for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert policy.backoff_seconds(10) == MAX_BACKOFF_SECONDS == 3600
    assert retry_policy({}) == RetryPolicy(retries=0, delay_seconds=10)
    assert retry_policy({"mrs.job.retries": "0"}).attempts == 1


def test_sql_executions_never_retry(world: World) -> None:
    job = world.show(_submit(world, "--sleep", "0", **_retrying(3)))
    assert retry_policy_of(job).retries == 3
    execution = job.__class__(**{**job.__dict__, "deleted_ms": -1})
    assert retry_policy_of(execution).retries == 0


def test_each_attempt_finds_its_directory_empty_but_for_its_logs(tmp_path: Path) -> None:
    workdir = tmp_path / "job"
    (workdir / "events").mkdir(parents=True)
    (workdir / "events" / "local-1").write_text("{}")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    (workdir / "link").symlink_to(outside, target_is_directory=True)
    for name in ("stdout.log", "stderr.log", "exit.json", "sql_results.json", "engine.json"):
        (workdir / name).write_text(name)
    fresh_run_dir(workdir)
    assert sorted(p.name for p in workdir.iterdir()) == ["stderr.log", "stdout.log"]
    assert (workdir / "stdout.log").read_text() == "stdout.log"
    assert (outside / "keep").read_text() == "x", "a symlink is removed, never followed"


def test_the_retry_edge_is_refused_once_a_kill_or_delete_is_asked(world: World) -> None:
    job_id = _submit(world, "--sleep", "0", **_retrying(2))
    with world.store.write() as conn:
        job_store.transition(conn, job_id, _state("ACCEPTED"), values={"owner": "s1", "pid": 1})
        job_store.transition(conn, job_id, _state("RUNNING"))
        assert job_store.request_kill(conn, job_id, job_store.now_ms(), by="request r1")
    job = world.show(job_id)
    args = {"retry_at_ms": 0, "reason": "attempt 1 of 3 failed", "diagnostics": "", "actor": "s"}
    with world.store.write() as conn:
        assert not sup_store.retry(conn, job, **args)  # type: ignore[arg-type]
        sup_store.set_fields(conn, job_id, kill_requested_ms=0, deleted_ms=job_store.now_ms())
    with world.store.write() as conn:
        assert not sup_store.retry(conn, world.show(job_id), **args)  # type: ignore[arg-type]
        sup_store.set_fields(conn, job_id, deleted_ms=0)
    with world.store.write() as conn:  # nothing asked: the supervisor's edge is taken once
        assert sup_store.retry(conn, job, **args)  # type: ignore[arg-type]
        assert not sup_store.retry(conn, job, **args)  # type: ignore[arg-type]
    assert (world.show(job_id).state, world.show(job_id).attempt) == ("SUBMITTED", 2)
    # A plain move to SUBMITTED never takes it (only the supervisor's retry, by name).
    with world.store.write() as conn:
        job_store.transition(conn, job_id, _state("ACCEPTED"), values={"owner": "s1"})
        job_store.transition(conn, job_id, _state("RUNNING"))
        assert job_store.transition(conn, job_id, _state("SUBMITTED")) is None


def test_a_crash_between_the_claim_of_a_retry_and_its_launch_requeues_it(world: World) -> None:
    """The claim of the last attempt committed, then the service died before launching it:
    that attempt never ran, so it is requeued and runs once, never counted as failed."""
    job_id = _submit(world, "--count-file", _count(world), "--fail-times", "1", **_retrying(1, 2))
    sup = world.supervisor()
    drive(sup, lambda: world.show(job_id).attempt == 2)
    with world.store.write() as conn:  # the claim a crash interrupted: no pid, no launch
        sup_store.set_fields(conn, job_id, retry_at_ms=0)
        pair = (world.boot.project_id, world.cluster_id)
        claimed = sup_store.claim(conn, *pair, sup.id, job_store.now_ms(), sup.ctx.workdir, False)
    assert [j.id for j in claimed] == [job_id]
    drive(sup, lambda: _ended(world, job_id), timeout=20)
    job = world.show(job_id)
    assert (job.state, job.result, job.attempt) == ("FINISHED", "SUCCEEDED", 2)
    assert _starts(world, job_id) == 2
    reasons = [e.reason for e in _events(world, job_id)]
    assert "back to the queue: the engine was never started" in reasons


def test_a_retried_jobs_usage_adds_up_its_attempts(world: World) -> None:
    """Each of three attempts spends 0.4 s of CPU: the job reports all of it (about 1.2 s),
    not the last attempt's 0.4 (what it reported before)."""
    job_id = _submit(
        world,
        "--count-file",
        _count(world),
        "--fail-times",
        "2",
        "--burn-for",
        "0.4",
        **_retrying(3),
    )
    drive(world.supervisor(), lambda: _ended(world, job_id), timeout=45)
    job = world.show(job_id)
    assert (job.result, job.attempt) == ("SUCCEEDED", 3)
    assert job.cpu_seconds is not None and 1.1 <= job.cpu_seconds <= 3.0, job.cpu_seconds
    assert job.peak_memory_mb is not None and job.peak_memory_mb > 0
