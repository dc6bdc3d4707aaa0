"""A restart never ends a live job's processes; a kill ends all of them (the job box).

Jobs here move processes out of the launcher's process group and session, and even out of the
marker environment, as PySpark's worker daemon, `setsid` children and hostile code do. Every
check of what is alive is a scan of /proc (by marker, by box namespace or by a token in argv),
never by process names.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import insert, update
from support_supervisor import drive, marked_pids

from mrs_jobs.runtime.box import namespace_members
from mrs_jobs.runtime.process import _box_namespace
from mrs_jobs.store import jobs as job_store
from mrs_jobs.store.tables import jobs, supervisors

pytestmark = pytest.mark.timeout(90)


def _alive_with_token(token: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        # the child's own argv (the engine's argv names the token too)
        if argv[1:2] == [b"-c"] and token.encode() in argv and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def _wait(predicate, timeout: float = 15.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {predicate}")
        time.sleep(0.05)


def test_a_restart_leaves_every_process_of_a_running_job_alone(world) -> None:
    token = f"unmarked-{uuid.uuid4().hex}"
    first = world.supervisor()
    job_id = world.submit("--sleep", "4", "--spawn-detached", "--spawn-unmarked", token)
    drive(first, lambda: world.show(job_id).state == "RUNNING")
    _wait(lambda: len(marked_pids(job_id)) >= 3 and _alive_with_token(token))
    before = set(marked_pids(job_id))
    del first  # the service stops; its jobs keep running
    second = world.supervisor()
    second.reconcile()
    time.sleep(0.3)
    assert set(marked_pids(job_id)) == before  # the detached child too (it left the group)
    assert _alive_with_token(token)
    drive(second, lambda: world.show(job_id).state in ("FINISHED", "FAILED"), timeout=30)
    assert world.show(job_id).result == "SUCCEEDED", world.show(job_id).reason
    _wait(lambda: not marked_pids(job_id) and not _alive_with_token(token))


def test_an_instance_that_comes_back_leaves_the_jobs_its_peer_adopted(world) -> None:
    first = world.supervisor()
    job_id = world.submit("--sleep", "60")
    drive(first, lambda: world.show(job_id).state == "RUNNING")
    _wait(lambda: len(marked_pids(job_id)) >= 4)  # shim, bwrap, the box's init, the engine
    pids = set(marked_pids(job_id))
    del first  # killed; a peer on this host adopts its job and keeps heartbeating
    now = job_store.now_ms()
    with world.store.write() as conn:
        conn.execute(
            insert(supervisors).values(
                id="peer", host="this-host-too", pid=1, started_ms=now, heartbeat_ms=now
            )
        )
        conn.execute(update(jobs).where(jobs.c.id == job_id).values(owner="peer"))
    returning = world.supervisor()  # the same installation id as the first
    returning.reconcile()
    time.sleep(0.3)
    assert set(marked_pids(job_id)) == pids
    job = world.show(job_id)
    assert (job.state, job.owner) == ("RUNNING", "peer")


def test_a_kill_ends_every_process_of_the_job_whatever_it_moved_to(world) -> None:
    token = f"unmarked-{uuid.uuid4().hex}"
    sup = world.supervisor()
    job_id = world.submit("--sleep", "60", "--spawn-detached", "--spawn-unmarked", token)
    drive(sup, lambda: world.show(job_id).state == "RUNNING")
    _wait(lambda: len(marked_pids(job_id)) >= 3 and _alive_with_token(token))
    namespace = _box_namespace(world.show(job_id).pid)
    assert namespace is not None, "the job did not run in a box"
    assert len(namespace_members(namespace)) >= 4  # init, engine, two children
    world.jobs.kill(world.caller, world.cluster_id, job_id)
    drive(sup, lambda: world.show(job_id).state == "KILLED", timeout=30)
    _wait(lambda: not namespace_members(namespace), 10)
    assert marked_pids(job_id) == [] and _alive_with_token(token) == []


def test_a_deleted_job_leaves_no_process(world) -> None:
    token = f"unmarked-{uuid.uuid4().hex}"
    sup = world.supervisor()
    job_id = world.submit("--sleep", "60", "--ignore-term", "--spawn-unmarked", token)
    drive(sup, lambda: world.show(job_id).state == "RUNNING")
    _wait(lambda: _alive_with_token(token))
    namespace = _box_namespace(world.show(job_id).pid)
    world.deletes.delete(world.caller, world.cluster_id, [job_id])
    drive(sup, lambda: world.show(job_id) is None, timeout=40)
    assert namespace is not None and namespace_members(namespace) == []
    assert marked_pids(job_id) == [] and _alive_with_token(token) == []
