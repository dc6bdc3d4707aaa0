"""The purge moves a deleted job's directory into the data dir's trash, deletes its rows, then
empties the trash: rows go at the database's speed, and no crash leaves a directory behind.

On SQLite and PostgreSQL (the ``store`` fixture), through the supervisor's own passes.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from jobrows import insert_job, raw_job
from sqlalchemy import func, insert, select
from support_supervisor import FakeEngine, World, drive

from mrs_jobs.engines.registry import EngineRegistry
from mrs_jobs.store import jobs as job_store
from mrs_jobs.store.tables import job_events
from mrs_jobs.supervisor import purge, trash
from mrs_jobs.supervisor.loop import Supervisor
from mrs_jobs.supervisor.purge import Pacer

pytestmark = pytest.mark.timeout(90)


class Died(BaseException):
    """The service's process ending at this point (nothing in the service catches it)."""


def _die(*args: object, **kwargs: object) -> None:
    raise Died


class RecordingEngine(FakeEngine):
    """Records what each job's directory held when the purge asked the engine to forget it."""

    def __init__(self) -> None:
        self.forgot: dict[str, list[str]] = {}

    def forget(self, job_id: str, workdir: Path, app_id: str | None, cluster_id: str) -> None:
        self.forgot[job_id] = sorted(p.name for p in Path(workdir).rglob("*"))


def _ended_with_files(world: World, workdir: Path | None = None) -> tuple[str, Path]:
    """An ended job with a directory as a real one leaves it (nested), and two events."""
    job_id = insert_job(world.store, world.boot.project_id, world.cluster_id, state="FINISHED")
    workdir = workdir or world.settings.jobs_dir / job_id
    (workdir / "spark-events").mkdir(parents=True)
    (workdir / "stdout.log").write_text("out\n")
    (workdir / "stderr.log").write_text("err\n")
    (workdir / "spark-events" / "local-1").write_text("{}\n")
    with world.store.write() as conn:
        conn.execute(
            job_store.jobs.update()
            .where(job_store.jobs.c.id == job_id)
            .values(workdir=str(workdir))
        )
        for to in ("RUNNING", "FINISHED"):
            conn.execute(
                insert(job_events).values(
                    job_id=job_id, at_ms=1, from_state=None, to_state=to, reason="t"
                )
            )
    return job_id, workdir


def _events(world: World, job_id: str) -> int:
    with world.store.read() as conn:
        q = select(func.count()).select_from(job_events).where(job_events.c.job_id == job_id)
        return int(conn.execute(q).scalar_one())


def _trash(world: World) -> Path:
    return world.settings.data_dir / "trash"


def _trash_entries(world: World) -> list[str]:
    path = _trash(world)
    return sorted(os.listdir(path)) if path.is_dir() else []


def _gone(world: World, job_id: str) -> bool:
    return raw_job(world.store, job_id) is None


def test_a_batch_delete_removes_rows_events_and_directories(world: World) -> None:
    engine = RecordingEngine()
    sup = Supervisor(world.store, world.settings, EngineRegistry([engine]))
    jobs = [_ended_with_files(world) for _ in range(3)]
    world.deletes.delete(world.caller, world.cluster_id, [j for j, _ in jobs])

    sup.run_once()

    for job_id, workdir in jobs:
        assert _gone(world, job_id) and _events(world, job_id) == 0
        assert not os.path.lexists(workdir)
        # the engine forgot the job while its directory still said which files were its own
        assert engine.forgot[job_id] == ["local-1", "spark-events", "stderr.log", "stdout.log"]
    assert _trash_entries(world) == []  # emptied in the same pass, after the rows


def test_a_crash_between_the_move_and_the_rows_leaves_the_row_and_no_orphan(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id, workdir = _ended_with_files(world)
    world.deletes.delete(world.caller, world.cluster_id, [job_id])

    monkeypatch.setattr(job_store, "purge", _die)
    with pytest.raises(Died):
        world.supervisor().run_once()
    monkeypatch.undo()
    # moved aside, not removed: the row still says the job is to be purged
    assert raw_job(world.store, job_id) is not None and _events(world, job_id) == 2
    assert not os.path.lexists(workdir)
    assert _trash_entries(world) == [job_id]
    assert (_trash(world) / job_id / "spark-events" / "local-1").is_file()

    restarted = world.supervisor()
    restarted.reconcile()
    drive(restarted, lambda: _gone(world, job_id))
    assert _events(world, job_id) == 0
    assert _trash_entries(world) == []
    assert not os.path.lexists(workdir)


def test_a_crash_after_the_rows_leaves_nothing_after_the_next_pass(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id, workdir = _ended_with_files(world)
    world.deletes.delete(world.caller, world.cluster_id, [job_id])

    monkeypatch.setattr(trash.shutil, "rmtree", _die)  # dies emptying the trash
    with pytest.raises(Died):
        world.supervisor().run_once()
    monkeypatch.undo()
    assert _gone(world, job_id)
    assert _trash_entries(world) == [job_id]

    world.supervisor().run_once()  # nothing to purge: the pass still empties the trash
    assert _trash_entries(world) == []


def test_leftover_trash_is_swept_without_following_a_symlink(world: World, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep\n")
    bin_ = _trash(world)
    (bin_ / "old-job" / "nested").mkdir(parents=True)
    (bin_ / "old-job" / "nested" / "stdout.log").write_text("x")
    (bin_ / "old-job" / "link").symlink_to(outside)
    (bin_ / "a-file").write_text("x")
    (bin_ / "a-link").symlink_to(outside)

    world.supervisor().run_once()

    assert _trash_entries(world) == []
    assert (outside / "precious").read_text() == "keep\n"


def test_a_symlinked_job_dir_is_not_followed(world: World, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep\n")
    job_id, workdir = _ended_with_files(world)
    target = tmp_path / "moved-away"
    workdir.rename(target)
    workdir.symlink_to(outside, target_is_directory=True)  # the job dir is now a symlink
    world.deletes.delete(world.caller, world.cluster_id, [job_id])

    world.supervisor().run_once()

    assert _gone(world, job_id)
    assert not os.path.lexists(workdir)  # the link went, not what it points to
    assert (outside / "precious").read_text() == "keep\n"
    assert _trash_entries(world) == []


def test_a_workdir_that_cannot_be_moved_is_removed_in_place(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another filesystem than the data dir's (EXDEV): removed where it is, before the rows."""
    job_id, workdir = _ended_with_files(world)
    world.deletes.delete(world.caller, world.cluster_id, [job_id])

    def cross_device(src: object, dst: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    removed_before_rows: list[bool] = []
    real_purge = job_store.purge

    def purge_rows(conn, ids):  # type: ignore[no-untyped-def]
        removed_before_rows.append(not os.path.lexists(workdir))
        return real_purge(conn, ids)

    monkeypatch.setattr(trash.os, "rename", cross_device)
    monkeypatch.setattr(job_store, "purge", purge_rows)
    world.supervisor().run_once()

    assert removed_before_rows == [True]
    assert _gone(world, job_id)
    assert _trash_entries(world) == []


def test_a_job_whose_files_are_on_a_live_peers_disk_is_left_to_that_peer(
    world: World, tmp_path: Path
) -> None:
    from mrs_jobs.store import supervision as sup_store

    peer = "peer-host-1"
    elsewhere = tmp_path / "peer-disk" / "jobs" / "x"  # not on this host's disk
    job_id = insert_job(
        world.store,
        world.boot.project_id,
        world.cluster_id,
        state="FINISHED",
        owner=peer,
        workdir=str(elsewhere),
    )
    with world.store.write() as conn:
        sup_store.heartbeat(conn, peer, "peer-host", 1, job_store.now_ms())
    world.deletes.delete(world.caller, world.cluster_id, [job_id])

    world.supervisor().run_once()

    assert raw_job(world.store, job_id) is not None  # its peer purges it, files and all
    assert not elsewhere.exists() and _trash_entries(world) == []


@pytest.mark.parametrize("work", [0.01, 0.05])
def test_the_pacer_lets_a_burst_through_then_keeps_the_purge_to_a_third(work: float) -> None:
    now = [100.0]
    pauses: list[float] = []

    def sleep(s: float) -> None:
        pauses.append(s)
        now[0] += s

    pacer = Pacer(ratio=2.0, burst=0.5, max_pause=1.0, clock=lambda: now[0], sleep=sleep)
    now[0] += 10.0  # a quiet spell: the credit is full
    for _ in range(int(0.5 / work)):  # the burst: no pause (a little refill on the way)
        began = now[0]
        now[0] += work
        assert pacer.pace(began) == 0.0
    worked, began_all = 0.0, now[0]
    for _ in range(200):  # sustained: twice the work as pause, as before the burst existed
        began = now[0]
        now[0] += work
        worked += work
        pacer.pace(began)
    assert pauses, "a sustained purge must pause"
    assert worked / (now[0] - began_all) == pytest.approx(1 / 3, rel=0.1)
    assert pauses[-1] == pytest.approx(2 * work, rel=0.01)


def test_big_transactions_in_the_burst_small_ones_once_paced(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[int] = []
    real_purge = job_store.purge

    def purge_rows(conn, ids):  # type: ignore[no-untyped-def]
        sizes.append(len(ids))
        return real_purge(conn, ids)

    monkeypatch.setattr(job_store, "purge", purge_rows)
    monkeypatch.setattr(purge, "_PURGE_TX", 2)
    monkeypatch.setattr(purge, "_BURST_TX", 5)
    sup = world.supervisor()
    jobs = [_ended_with_files(world)[0] for _ in range(6)]
    world.deletes.delete(world.caller, world.cluster_id, jobs)
    sup.run_once()
    assert sizes[0] == 5  # full credit after a quiet spell
    sizes.clear()

    sup.purger.pacer.credit = -0.1  # spent: paced again
    more = [_ended_with_files(world)[0] for _ in range(4)]
    world.deletes.delete(world.caller, world.cluster_id, more)
    sup.run_once()
    assert sizes == [2, 2]
    assert all(_gone(world, j) for j in jobs + more)
