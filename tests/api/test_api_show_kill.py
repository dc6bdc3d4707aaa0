"""Show (§2) and kill (§7): scoping, 0176 indistinguishable, states, audit."""

from __future__ import annotations

import uuid

from api_helpers import assert_error, base_of, new_cluster, other_project
from jobrows import audit_rows, events_of, insert_job, raw_job, transition_path

from mrs_jobs.store.tenants import credential_by_ak


def test_show_shape(api) -> None:
    job_id = api.submit("show")
    r = api.client.get(f"{api.base}/{job_id}")
    assert r.status_code == 202
    assert list(r.json()) == ["job_detail"]
    assert r.json()["job_detail"]["job_id"] == job_id


def test_unknown_job_is_0176_naming_it(api) -> None:
    missing = str(uuid.uuid4())
    for method, suffix in [("GET", ""), ("POST", "/kill"), ("GET", "/sql-result")]:
        r = api.client.request(method, f"{api.base}/{missing}{suffix}")
        assert missing in assert_error(r, 400, "0176")


def _without(text: str, *ids: str) -> str:
    for i in ids:
        text = text.replace(i, "<id>")
    return text


def test_another_projects_job_is_indistinguishable_from_a_missing_one(api) -> None:
    other = other_project(api)
    theirs = other.submit()
    missing = str(uuid.uuid4())
    for method, suffix in [("GET", ""), ("POST", "/kill"), ("GET", "/sql-result")]:
        a = api.client.request(method, f"{api.base}/{theirs}{suffix}")
        b = api.client.request(method, f"{api.base}/{missing}{suffix}")
        assert_error(a, 400, "0176")
        assert a.status_code == b.status_code
        assert a.headers["content-type"] == b.headers["content-type"]
        assert _without(a.text, theirs) == _without(b.text, missing)
    # Untouched, still theirs.
    d = other.client.get(f"{other.base}/{theirs}").json()["job_detail"]
    assert d["job_state"] == "SUBMITTED" and d["user"] == "bob"


def test_another_projects_cluster_is_indistinguishable_from_a_missing_one(api) -> None:
    other = other_project(api)
    theirs = other.submit()
    a = api.client.get(f"{base_of(api.project_id, other.cluster_id)}/{theirs}")
    b = api.client.get(f"{base_of(api.project_id, 'no-such-cluster')}/{theirs}")
    assert_error(a, 400, "12000003")
    assert _without(a.text, other.cluster_id) == _without(b.text, "no-such-cluster")


def test_job_of_another_cluster_of_the_same_project_is_0176(api) -> None:
    second = new_cluster(api)
    theirs = api.client.post(
        base_of(api.project_id, second), json={"job_type": "SparkSubmit", "job_name": "c2"}
    ).json()["job_submit_result"]["job_id"]
    for method, suffix in [("GET", ""), ("POST", "/kill"), ("GET", "/sql-result")]:
        assert_error(api.client.request(method, f"{api.base}/{theirs}{suffix}"), 400, "0176")
    assert raw_job(api.store, theirs)["state"] == "SUBMITTED"  # the kill did nothing
    r = api.client.get(f"{base_of(api.project_id, second)}/{theirs}")
    assert r.status_code == 202


def test_unknown_cluster_is_12000003_everywhere(api, subtests) -> None:
    job_id = api.submit()
    base = base_of(api.project_id, "ghost")
    calls = [
        ("GET", base, None),
        ("POST", base, {"job_type": "SparkSubmit", "job_name": "x"}),
        ("GET", f"{base}/{job_id}", None),
        ("POST", f"{base}/{job_id}/kill", None),
        ("GET", f"{base}/{job_id}/sql-result", None),
        ("POST", f"{base}/batch-delete", {"job_id_list": [job_id]}),
    ]
    for method, url, payload in calls:
        with subtests.test(method=method, url=url):
            r = api.client.request(method, url, json=payload)
            assert "ghost" in assert_error(r, 400, "12000003")
    assert raw_job(api.store, job_id)["state"] == "SUBMITTED"
    assert raw_job(api.store, job_id)["deleted_ms"] == 0


def test_kill_queued_job(api) -> None:
    job_id = api.submit("k")
    submitted = raw_job(api.store, job_id)["submitted_ms"]
    api.wakes.clear()
    r = api.client.post(f"{api.base}/{job_id}/kill")
    assert r.status_code == 202 and r.content == b""
    assert r.headers["x-request-id"]
    assert api.wakes
    d = api.client.get(f"{api.base}/{job_id}").json()["job_detail"]
    assert d["job_state"] == "KILLED" and d["job_result"] == "KILLED"
    assert d["finished_time"] >= submitted > 0
    assert events_of(api.store, job_id)[-1] == ("SUBMITTED", "KILLED")
    # A second kill: 202 and nothing changes.
    r = api.client.post(f"{api.base}/{job_id}/kill")
    assert r.status_code == 202 and r.content == b""
    assert api.client.get(f"{api.base}/{job_id}").json()["job_detail"] == d
    assert events_of(api.store, job_id)[-1] == ("SUBMITTED", "KILLED")
    assert len(events_of(api.store, job_id)) == 4


def test_kill_of_ended_job_is_0175(api) -> None:
    finished = api.submit("f")
    transition_path(api.store, finished, "ACCEPTED", "RUNNING", "FINISHED", result="SUCCEEDED")
    failed = api.submit("g")
    transition_path(api.store, failed, "FAILED", result="FAILED")
    for job_id, state in [(finished, "FINISHED"), (failed, "FAILED")]:
        before = api.client.get(f"{api.base}/{job_id}").json()["job_detail"]
        msg = assert_error(api.client.post(f"{api.base}/{job_id}/kill"), 400, "0175")
        assert job_id in msg and state in msg
        assert api.client.get(f"{api.base}/{job_id}").json()["job_detail"] == before
        assert raw_job(api.store, job_id)["kill_requested_ms"] == 0


def test_kill_of_launched_job_is_left_to_the_supervisor(api) -> None:
    accepted = api.submit("acc")
    transition_path(api.store, accepted, "ACCEPTED")
    running = api.submit("run")
    transition_path(api.store, running, "ACCEPTED", "RUNNING")
    for job_id, state in [(accepted, "ACCEPTED"), (running, "RUNNING")]:
        r = api.client.post(f"{api.base}/{job_id}/kill")
        assert r.status_code == 202 and r.content == b""
        row = raw_job(api.store, job_id)
        assert row["kill_requested_ms"] > 0
        assert row["state"] == state and row["result"] == "UNDEFINED"
        d = api.client.get(f"{api.base}/{job_id}").json()["job_detail"]
        assert d["job_state"] == state and d["finished_time"] == 0
        # Asking again changes nothing.
        first = row["kill_requested_ms"]
        assert api.client.post(f"{api.base}/{job_id}/kill").status_code == 202
        assert raw_job(api.store, job_id)["kill_requested_ms"] == first


def test_empty_kill_post_with_json_content_type(api) -> None:
    job_id = api.submit("e")
    r = api.client.post(
        f"{api.base}/{job_id}/kill",
        content=b"",
        headers={"Content-Type": "application/json", "Content-Length": "0"},
    )
    assert r.request.headers["content-length"] == "0"
    assert r.request.headers["content-type"] == "application/json"
    assert r.status_code == 202, r.text
    assert raw_job(api.store, job_id)["state"] == "KILLED"


def test_every_kill_leaves_an_audit_row(api) -> None:
    queued = api.submit("q")
    running = api.submit("r")
    transition_path(api.store, running, "ACCEPTED", "RUNNING")
    responses = [
        (queued, api.client.post(f"{api.base}/{queued}/kill")),
        (queued, api.client.post(f"{api.base}/{queued}/kill")),
        (running, api.client.post(f"{api.base}/{running}/kill")),
    ]
    assert [r.status_code for _, r in responses] == [202, 202, 202]
    rows = audit_rows(api.store, "kill")
    assert len(rows) == 3
    with api.store.read() as conn:
        cred = credential_by_ak(conn, api.ak)
    for row, (job_id, r) in zip(rows, responses, strict=True):
        assert row["detail"]["job_id"] == job_id
        assert row["request_id"] == r.headers["x-request-id"]
        assert row["project_id"] == api.project_id and row["cluster_id"] == api.cluster_id
        assert row["credential_id"] == cred.id
        assert row["at_ms"] > 0
    assert [row["outcome"] for row in rows] == ["killed", "already-killed", "kill-requested"]


def test_kill_of_directly_inserted_new_job(api) -> None:
    """NEW and NEW_SAVING are live: a kill ends them at once."""
    for state in ("NEW", "NEW_SAVING"):
        job_id = insert_job(api.store, api.project_id, api.cluster_id, state=state)
        assert api.client.post(f"{api.base}/{job_id}/kill").status_code == 202
        row = raw_job(api.store, job_id)
        assert (row["state"], row["result"]) == ("KILLED", "KILLED")
        assert row["finished_ms"] > 0
