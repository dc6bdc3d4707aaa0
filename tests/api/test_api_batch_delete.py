"""Batch delete (the seed; contract §8): all or nothing, scoping, limits, live jobs, audit."""

from __future__ import annotations

import uuid

import pytest
from api_helpers import assert_error, base_of, new_cluster, other_project
from jobrows import (
    add_sql_results,
    audit_rows,
    count_jobs,
    insert_job,
    insert_jobs,
    job_row,
    raw_job,
    transition_path,
)
from sqlalchemy.exc import OperationalError

from mrs_jobs.services import batch_delete as batch_delete_module
from mrs_jobs.store import jobs as job_store
from mrs_jobs.store.tenants import credential_by_ak


def delete(api, ids: list[object]):  # type: ignore[no-untyped-def]
    return api.client.post(f"{api.base}/batch-delete", json={"job_id_list": ids})


def visible(api, job_id: str) -> bool:  # type: ignore[no-untyped-def]
    r = api.client.get(f"{api.base}/{job_id}")
    assert r.status_code in (202, 400), r.text
    return r.status_code == 202


def listed(api) -> set[str]:  # type: ignore[no-untyped-def]
    r = api.client.get(api.base, params={"limit": 1000})
    assert r.status_code == 202
    return {j["job_id"] for j in r.json()["job_list"]}


def test_deleted_jobs_are_gone_everywhere(api) -> None:
    a, b, keep = api.submit("a"), api.submit("b"), api.submit("keep")
    api.wakes.clear()
    r = delete(api, [a, b])
    assert r.status_code == 202
    assert r.content == b""
    assert r.headers["x-request-id"]
    assert api.wakes
    for job_id in (a, b):
        for method, suffix in [("GET", ""), ("POST", "/kill"), ("GET", "/sql-result")]:
            r = api.client.request(method, f"{api.base}/{job_id}{suffix}")
            assert job_id in assert_error(r, 400, "0176")
    r = api.client.get(api.base)
    assert r.json()["total_record"] == 1
    assert listed(api) == {keep}
    assert r.json()["job_list"][0]["job_state"] == "SUBMITTED"
    # Filtering by id does not find them either.
    r = api.client.get(api.base, params={"job_id": a})
    assert r.json() == {"total_record": 0, "job_list": []}
    # A second delete of the same ids: they do not exist any more.
    msg = assert_error(delete(api, [a, b]), 400, "0176")
    assert a in msg and b in msg


def test_unknown_id_deletes_nothing_and_names_exactly_the_unknown(api) -> None:
    k1, k2 = api.submit("k1"), api.submit("k2")
    u1, u2 = str(uuid.uuid4()), "not-a-uuid"
    msg = assert_error(delete(api, [k1, u1, k2, u2]), 400, "0176")
    assert msg == f"The job does not exist: {u1}, {u2}"
    assert visible(api, k1) and visible(api, k2)
    assert listed(api) == {k1, k2}
    assert raw_job(api.store, k1)["deleted_ms"] == 0
    assert audit_rows(api.store, "batch_delete") == []


def test_job_of_another_project_in_the_list_deletes_nothing(api) -> None:
    mine = api.submit("mine")
    other = other_project(api)
    theirs = other.submit()
    msg = assert_error(delete(api, [mine, theirs]), 400, "0176")
    assert msg == f"The job does not exist: {theirs}"
    assert visible(api, mine)
    assert other.client.get(f"{other.base}/{theirs}").status_code == 202
    assert raw_job(api.store, theirs)["deleted_ms"] == 0
    # The owner may still delete it.
    r = other.client.post(f"{other.base}/batch-delete", json={"job_id_list": [theirs]})
    assert r.status_code == 202
    assert visible(api, mine)


def test_job_of_another_cluster_in_the_list_deletes_nothing(api) -> None:
    mine = api.submit("mine")
    second = new_cluster(api)
    theirs = insert_job(api.store, api.project_id, second)
    msg = assert_error(delete(api, [theirs, mine]), 400, "0176")
    assert msg == f"The job does not exist: {theirs}"
    assert visible(api, mine)
    assert raw_job(api.store, theirs)["deleted_ms"] == 0
    # Through its own cluster it can be deleted.
    r = api.client.post(
        f"{base_of(api.project_id, second)}/batch-delete", json={"job_id_list": [theirs]}
    )
    assert r.status_code == 202 and visible(api, mine)


def test_invalid_lists(api, subtests) -> None:
    real = api.submit("real")
    cases: list[tuple[str, object]] = [
        ("missing", {}),
        ("null", {"job_id_list": None}),
        ("empty", {"job_id_list": []}),
        ("string", {"job_id_list": real}),
        ("object", {"job_id_list": {real: real}}),
        ("number", {"job_id_list": 3}),
        ("int element", {"job_id_list": [real, 2]}),
        ("null element", {"job_id_list": [real, None]}),
        ("list element", {"job_id_list": [[real]]}),
        ("object element", {"job_id_list": [{"id": real}]}),
        ("bool element", {"job_id_list": [True]}),
        ("1001 ids", {"job_id_list": [real] + [str(uuid.uuid4()) for _ in range(1000)]}),
        ("unknown field", {"job_id_list": [real], "force": True}),
        ("other field only", {"job_ids": [real]}),
        ("array body", [real]),
        ("string body", real),
    ]
    for name, payload in cases:
        with subtests.test(case=name):
            r = api.client.post(f"{api.base}/batch-delete", json=payload)
            msg = assert_error(r, 400, "12000002")
            if isinstance(payload, dict) and name != "other field only":
                assert "job_id_list" in msg or "force" in msg, msg
    for raw in (b"", b"{", b"null"):
        with subtests.test(raw=raw):
            r = api.client.post(f"{api.base}/batch-delete", content=raw)
            assert_error(r, 400, "12000002")
    assert visible(api, real)
    assert audit_rows(api.store, "batch_delete") == []


def test_exactly_1000_ids(api) -> None:
    rows = [job_row(api.project_id, api.cluster_id, submitted_ms=i) for i in range(1000)]
    ids = insert_jobs(api.store, rows)
    keep = insert_job(api.store, api.project_id, api.cluster_id)
    r = delete(api, ids)
    assert r.status_code == 202, r.text
    assert api.client.get(api.base).json()["total_record"] == 1
    assert count_jobs(api.store, deleted_ms=0) == 1
    (row,) = audit_rows(api.store, "batch_delete")
    assert row["detail"]["count"] == 1000 and len(row["detail"]["job_ids"]) == 1000
    assert visible(api, keep)


def test_1000_ids_with_an_unknown_one_names_only_it(api) -> None:
    rows = [job_row(api.project_id, api.cluster_id) for _ in range(999)]
    ids = insert_jobs(api.store, rows)
    ghost = str(uuid.uuid4())
    msg = assert_error(delete(api, [*ids[:600], ghost, *ids[600:]]), 400, "0176")
    assert msg == f"The job does not exist: {ghost}"
    assert count_jobs(api.store, deleted_ms=0) == 999


def test_duplicates_count_once(api) -> None:
    a, b = api.submit("a"), api.submit("b")
    r = delete(api, [a, a, b, a, b])
    assert r.status_code == 202, r.text
    assert not visible(api, a) and not visible(api, b)
    (row,) = audit_rows(api.store, "batch_delete")
    assert row["detail"]["job_ids"] == [a, b]
    assert row["detail"]["count"] == 2


@pytest.mark.parametrize("weird", ["a\x00b", "x" * 5000, "../../etc", "%", "' OR 1=1 --"])
def test_ids_that_cannot_be_jobs_are_0176(api, weird: str) -> None:
    real = api.submit("real")
    msg = assert_error(delete(api, [real, weird]), 400, "0176")
    assert msg.startswith("The job does not exist: ")
    assert real not in msg
    assert visible(api, real)


def test_live_jobs_are_hidden_at_once_and_left_for_the_supervisor(api) -> None:
    queued = api.submit("queued")
    accepted = api.submit("accepted")
    transition_path(api.store, accepted, "ACCEPTED")
    running = api.submit("running")
    transition_path(api.store, running, "ACCEPTED", "RUNNING")
    done = api.submit("done")
    transition_path(api.store, done, "ACCEPTED", "RUNNING", "FINISHED", result="SUCCEEDED")
    killed = api.submit("killed")
    assert api.client.post(f"{api.base}/{killed}/kill").status_code == 202
    ids = [queued, accepted, running, done, killed]
    r = delete(api, ids)
    assert r.status_code == 202, r.text
    assert listed(api) == set()
    for job_id in ids:
        assert not visible(api, job_id)
        row = raw_job(api.store, job_id)
        assert row is not None, "the record stays until the supervisor purges it"
        assert row["deleted_ms"] > 0
    # The service does not end launched jobs itself: the supervisor kills, then purges.
    assert raw_job(api.store, running)["state"] == "RUNNING"
    assert raw_job(api.store, accepted)["state"] == "ACCEPTED"
    (row,) = audit_rows(api.store, "batch_delete")
    assert row["detail"]["live"] == 3  # queued, accepted and running: not yet ended
    assert row["detail"]["running"] == 2  # the launched ones, whose processes must be killed
    assert row["detail"]["count"] == 5


def test_audit_row_outlives_the_purge(api) -> None:
    a = api.submit("a")
    b = api.submit("b")
    transition_path(api.store, b, "ACCEPTED", "RUNNING")
    add_sql_results(api.store, a, {0: [{"result": "succeed"}]})
    r = delete(api, [b, a])
    assert r.status_code == 202
    hidden_at = {raw_job(api.store, a)["deleted_ms"], raw_job(api.store, b)["deleted_ms"]}
    with api.store.write() as conn:
        job_store.purge(conn, [a, b])
    assert raw_job(api.store, a) is None and raw_job(api.store, b) is None
    (row,) = audit_rows(api.store, "batch_delete")
    with api.store.read() as conn:
        cred = credential_by_ak(conn, api.ak)
    assert row["detail"]["job_ids"] == [b, a]
    assert row["detail"]["live"] == 2 and row["detail"]["running"] == 1
    assert row["detail"]["count"] == 2
    assert row["request_id"] == r.headers["x-request-id"]
    assert row["credential_id"] == cred.id
    assert row["project_id"] == api.project_id and row["cluster_id"] == api.cluster_id
    assert row["outcome"] == "deleted"
    assert hidden_at == {row["at_ms"]}  # one transaction, one instant


def test_store_failure_is_0161_and_changes_nothing(api, monkeypatch) -> None:
    a, b = api.submit("a"), api.submit("b")

    def broken(*_args: object, **_kwargs: object) -> None:
        raise OperationalError("INSERT INTO audit", {}, Exception("disk I/O error"))

    # Fails after the jobs were marked, inside the same transaction: all must roll back.
    monkeypatch.setattr(batch_delete_module, "record_audit", broken)
    r = delete(api, [a, b])
    assert assert_error(r, 500, "0161") == "Failed to delete jobs in batches."
    assert visible(api, a) and visible(api, b)
    assert raw_job(api.store, a)["deleted_ms"] == 0
    monkeypatch.undo()
    assert delete(api, [a, b]).status_code == 202
