"""A job's history (ours): GET .../job-executions/{id}/events lists every state change, oldest
first, with its time, reason and cause; scoped like show."""

from __future__ import annotations

import uuid

from api_helpers import assert_error, other_project


def test_history_of_a_job_killed_in_the_queue(api) -> None:
    submitted = api.client.post(
        api.base, json={"job_type": "SparkSubmit", "job_name": "h", "arguments": ["a.py"]}
    )
    job_id = submitted.json()["job_submit_result"]["job_id"]
    killed = api.client.post(f"{api.base}/{job_id}/kill")
    assert killed.status_code == 202
    r = api.client.get(f"{api.base}/{job_id}/events")
    assert r.status_code == 200
    events = r.json()["job_events"]
    steps = [(e["from_state"], e["to_state"]) for e in events]
    assert steps == [
        (None, "NEW"),
        ("NEW", "NEW_SAVING"),
        ("NEW_SAVING", "SUBMITTED"),
        ("SUBMITTED", "KILLED"),
    ]
    submit_id, kill_id = submitted.headers["x-request-id"], killed.headers["x-request-id"]
    assert submit_id != kill_id
    assert [e["caused_by"] for e in events] == [f"request {submit_id} by admin"] * 3 + [
        f"request {kill_id} by admin"
    ]
    assert events[-1]["reason"] == "killed before launch"
    times = [e["event_time"] for e in events]
    assert times == sorted(times) and all(isinstance(t, int) and t > 0 for t in times)


def test_history_is_scoped_like_show(api) -> None:
    other = other_project(api)
    theirs = other.submit()
    missing = str(uuid.uuid4())
    for job_id in (theirs, missing):
        assert job_id in assert_error(api.client.get(f"{api.base}/{job_id}/events"), 400, "0176")
    assert other.client.get(f"{other.base}/{theirs}/events").status_code == 200


def test_a_deleted_job_has_no_history(api) -> None:
    job_id = api.submit("gone")
    r = api.client.post(f"{api.base}/batch-delete", json={"job_id_list": [job_id]})
    assert r.status_code == 202
    assert_error(api.client.get(f"{api.base}/{job_id}/events"), 400, "0176")
