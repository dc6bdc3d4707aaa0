"""MRS parity items seen through the API: the ``New`` state filter, SparkPython jobs, the
queue a job ran in, and arguments starting with ``@`` (sensitive) masked in every echo."""

from __future__ import annotations

from api_helpers import assert_error
from jobrows import insert_jobs, job_row


def _ids(r) -> list[str]:  # type: ignore[no-untyped-def]
    assert r.status_code == 202, r.text
    return [j["job_id"] for j in r.json()["job_list"]]


def test_job_state_new_as_mrs_spells_it(api) -> None:
    """OTC's docs and Airflow's sensor spell the first state ``New``; it filters NEW jobs."""
    new, queued = insert_jobs(
        api.store,
        [
            job_row(api.project_id, api.cluster_id, state="NEW"),
            job_row(api.project_id, api.cluster_id, state="SUBMITTED"),
        ],
    )
    r = api.client.get(api.base, params={"job_state": "New"})
    assert _ids(r) == [new]
    assert r.json()["total_record"] == 1
    assert _ids(api.client.get(api.base, params={"job_state": "NEW"})) == [new]
    assert queued not in _ids(api.client.get(api.base, params={"job_state": "New"}))
    # Other states keep MRS's upper case: a different spelling is still refused.
    for bad in ("new", "NEw", "Running"):
        assert "job_state" in assert_error(
            api.client.get(api.base, params={"job_state": bad}), 400, "12000002"
        )
