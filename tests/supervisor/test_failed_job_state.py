"""The cluster setting ``failed_job_state``: how an application that failed after it ran ends.

MRS (the default, ``FINISHED``): job_state FINISHED, job_result FAILED. ``FAILED``: job_state
FAILED too, for clients (Airflow's Huawei provider) that read job_state only."""

from __future__ import annotations

import pytest
from support_supervisor import drive

from mrs_jobs.services.cluster_admin import ClusterAdmin
from mrs_jobs.store import events as events_store


def _ended(world, job_id: str) -> bool:  # type: ignore[no-untyped-def]
    return world.show(job_id).state in ("FINISHED", "FAILED", "KILLED")


def _path(world, job_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    with world.store.read() as conn:
        return [e.to_state for e in events_store.list_events(conn, job_id)]


@pytest.mark.parametrize(
    ("setting", "state"), [(None, "FINISHED"), ("FINISHED", "FINISHED"), ("FAILED", "FAILED")]
)
def test_a_failing_application_ends_in_the_clusters_failed_job_state(
    world, setting: str | None, state: str
) -> None:
    if setting is not None:
        ClusterAdmin(world.store).update_cluster(
            world.cluster_id, settings={"failed_job_state": setting}
        )
    sup = world.supervisor()
    bad = world.submit("--sleep", "0.5", "--exit", "3")
    ok = world.submit("--sleep", "0.5")
    drive(sup, lambda: _ended(world, bad) and _ended(world, ok))
    failed = world.show(bad)
    assert (failed.state, failed.result) == (state, "FAILED")
    assert "code 3" in failed.reason
    assert _path(world, bad)[-2:] == ["RUNNING", state]
    # Success is the same whatever the setting.
    good = world.show(ok)
    assert (good.state, good.result) == ("FINISHED", "SUCCEEDED")
