"""A service killed in the middle of purging a deleted job leaves neither its row nor its files.

Found by the crash harness with real engines (tests/crash/test_crash_engines.py): a kill -9 of
the service right after the purge's transaction committed and before the job's directory was
removed left that directory on disk for good, with no row left to say whose it was. Whichever
of the two steps the service dies after, the restarted service must finish the purge.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from support_supervisor import drive

from mrs_jobs.store import jobs as job_store
from mrs_jobs.store.tables import jobs
from mrs_jobs.supervisor import purge

pytestmark = pytest.mark.timeout(90)


class Died(BaseException):
    """The service's process ending at this point (nothing in the service catches it)."""


def _die(*args: object, **kwargs: object) -> None:
    raise Died


def _row_exists(world, job_id: str) -> bool:  # type: ignore[no-untyped-def]
    with world.store.read() as conn:
        return conn.execute(select(jobs.c.id).where(jobs.c.id == job_id)).first() is not None


@pytest.mark.parametrize("dies_in", ["removing the directory", "deleting the row"])
def test_a_purge_cut_short_by_a_crash_is_finished_after_the_restart(
    world, monkeypatch: pytest.MonkeyPatch, dies_in: str
) -> None:
    first = world.supervisor()
    job_id = world.submit("--sleep", "0.1", "--print", "done")
    drive(first, lambda: world.show(job_id).state == "FINISHED")
    workdir = Path(world.show(job_id).workdir)
    assert (workdir / "stdout.log").exists()
    world.deletes.delete(world.caller, world.cluster_id, [job_id])

    if dies_in == "removing the directory":
        monkeypatch.setattr(purge.shutil, "rmtree", _die)
    else:
        monkeypatch.setattr(job_store, "purge", _die)
    with pytest.raises(Died):
        drive(first, lambda: False)
    monkeypatch.undo()

    restarted = world.supervisor()
    restarted.reconcile()
    drive(restarted, lambda: not _row_exists(world, job_id) and not workdir.exists())
