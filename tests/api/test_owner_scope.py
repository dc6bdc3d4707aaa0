"""A cluster's owner scope: kill and delete of a job only by its submitting user, unless the
caller's policy allows mrs:job:stopAny / mrs:job:deleteAny; refusals change nothing and are
audited."""

from __future__ import annotations

import pytest

from mrs_jobs.errors import InvalidParameter
from mrs_jobs.store.audit import list_audit

BODY = {"job_type": "SparkSubmit", "job_name": "x", "arguments": ["/opt/a.py"]}


def as_user(api, user: str, policy: str):
    token = api.credentials.create_token(api.project_id, user, 3600, policy=policy)
    client = api.signed_as(api.ak, api.sk, api.project_id)
    client.auth = None
    client.headers["X-Auth-Token"] = token
    return client


def submitted_by(client, api) -> str:
    r = client.post(api.base, json=BODY)
    assert r.status_code == 200, r.text
    return r.json()["job_submit_result"]["job_id"]


def state(api, job_id: str) -> str:
    return api.client.get(f"{api.base}/{job_id}").json()["job_detail"]["job_state"]


def scope(api, on: bool) -> None:
    api.clusters.update_cluster(api.cluster_id, settings={"owner_scope": "true" if on else "false"})


def test_another_users_job_is_neither_killed_nor_deleted(api) -> None:
    scope(api, True)
    first = as_user(api, "team-a", "MRS CommonOperations")
    second = as_user(api, "team-b", "MRS CommonOperations")
    job_id = submitted_by(first, api)
    r = second.post(f"{api.base}/{job_id}/kill")
    assert r.status_code == 403 and r.json()["error_code"] == "APIGW.0302"
    assert "mrs:job:stopAny" in r.json()["error_msg"] and job_id in r.json()["error_msg"]
    own = submitted_by(second, api)
    r = second.post(f"{api.base}/batch-delete", json={"job_id_list": [own, job_id]})
    assert r.status_code == 403 and "mrs:job:deleteAny" in r.json()["error_msg"]
    r = second.delete(f"/v1.1/{api.project_id}/job-executions/{job_id}")
    assert r.status_code == 403 and "mrs:job:deleteAny" in r.json()["error_msg"]
    # nothing changed: both jobs are still there and live, the own one included
    listed = {j["job_id"]: j for j in api.client.get(api.base).json()["job_list"]}
    assert set(listed) == {job_id, own}
    assert state(api, job_id) not in ("KILLED", "FAILED", "FINISHED")
    with api.store.read() as conn:
        denied = [a for a in list_audit(conn, project_id=api.project_id) if a["decision"] == "deny"]
    assert sorted(a["permission"] for a in denied) == [
        "mrs:job:deleteAny",
        "mrs:job:deleteAny",
        "mrs:job:stopAny",
    ]
    # its own jobs: the submitter kills and deletes them
    assert first.post(f"{api.base}/{job_id}/kill").status_code == 202
    assert second.post(f"{api.base}/batch-delete", json={"job_id_list": [own]}).status_code == 202


def test_full_access_may_act_on_any_job_and_without_the_scope_anyone_may(api) -> None:
    scope(api, True)
    owner = as_user(api, "team-a", "MRS CommonOperations")
    admin = as_user(api, "ops", "MRS FullAccess")
    job_id = submitted_by(owner, api)
    assert admin.post(f"{api.base}/{job_id}/kill").status_code == 202
    scope(api, False)
    other = as_user(api, "team-b", "MRS CommonOperations")
    job2 = submitted_by(owner, api)
    assert other.post(f"{api.base}/{job2}/kill").status_code == 202


def test_a_custom_policy_may_grant_the_any_actions(api) -> None:
    scope(api, True)
    owner = as_user(api, "team-a", "MRS CommonOperations")
    doc = (
        '{"Version": "1.1", "Statement": [{"Effect": "Allow", '
        '"Action": ["mrs:job:*"]}]}'  # mrs:job:* covers stopAny and deleteAny
    )
    lead = as_user(api, "lead", doc)
    job_id = submitted_by(owner, api)
    assert lead.post(f"{api.base}/batch-delete", json={"job_id_list": [job_id]}).status_code == 202


def test_the_setting_is_checked_when_saved(api) -> None:
    with pytest.raises(InvalidParameter, match="owner_scope"):
        api.clusters.update_cluster(api.cluster_id, settings={"owner_scope": "sometimes"})
