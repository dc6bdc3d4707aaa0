"""A credential's policy decides which routes answer: 403 naming the action, nothing changed,
the refusal in the audit; allowed changes carry their action in the audit too."""

from __future__ import annotations

import json

from mrs_jobs.api.credcache import TTL_SECONDS, CredentialCache
from mrs_jobs.store.audit import list_audit


def token_client(api, policy: str, user: str = "dash"):
    token = api.credentials.create_token(api.project_id, user, 3600, policy=policy)
    client = api.signed_as(api.ak, api.sk, api.project_id)
    client.auth = None
    client.headers["X-Auth-Token"] = token
    return client


def test_read_only_reads_but_cannot_submit_and_the_refusal_is_audited(api) -> None:
    job_id = api.submit("kept")
    ro = token_client(api, "MRS ReadOnlyAccess")
    assert ro.get(api.base).status_code == 202
    assert ro.get(f"{api.base}/{job_id}").status_code == 202
    r = ro.post(api.base, json={"job_type": "SparkSubmit", "job_name": "x", "arguments": ["a"]})
    assert r.status_code == 403
    assert r.json() == {
        "error_code": "APIGW.0302",
        "error_msg": "Policy doesn't allow mrs:job:submit to be performed.",
    }
    assert api.client.get(api.base).json()["total_record"] == 1  # nothing was created
    with api.store.read() as conn:
        rows = list_audit(conn, project_id=api.project_id)
    refused = [a for a in rows if a["decision"] == "deny"]
    assert [(a["permission"], a["outcome"], a["cluster_id"]) for a in refused] == [
        ("mrs:job:submit", "refused", api.cluster_id)
    ]
    assert refused[0]["detail"]["user_name"] == "dash"
    accepted = [a for a in rows if a["action"] == "submit"]
    assert [(a["permission"], a["decision"]) for a in accepted] == [("mrs:job:submit", "allow")]


def test_deny_in_a_custom_policy_wins_and_a_change_applies_after_the_cache_period(api) -> None:
    now = [1000.0]
    api.client.app.state.credential_cache = CredentialCache(clock=lambda: now[0])
    job_id = api.submit("victim")
    custom = json.dumps(
        {
            "Version": "1.1",
            "Statement": [
                {"Effect": "Allow", "Action": ["mrs:job:*"]},
                {"Effect": "Deny", "Action": ["mrs:job:stop"]},
            ],
        }
    )
    client = token_client(api, custom)
    r = client.post(f"{api.base}/{job_id}/kill")
    assert r.status_code == 403 and "mrs:job:stop" in r.json()["error_msg"]
    assert api.client.get(f"{api.base}/{job_id}").json()["job_detail"]["job_state"] != "KILLED"
    creds = api.credentials.list_credentials(api.project_id)
    cred = next(c for c in creds if c.user_name == "dash")
    api.credentials.set_policy(cred.id, "MRS FullAccess")
    now[0] += TTL_SECONDS - 0.5  # the server has not read the change yet (documented delay)
    assert client.post(f"{api.base}/{job_id}/kill").status_code == 403
    now[0] += 0.5
    assert client.post(f"{api.base}/{job_id}/kill").status_code == 202


def test_permissions_route_describes_the_callers_own_policy(api) -> None:
    ro = token_client(api, "ReadOnlyAccess")
    body = ro.get(f"/v2/{api.project_id}/permissions").json()
    assert body["policy"]["name"] == "MRS ReadOnlyAccess"
    assert body["user_name"] == "dash"
    assert body["actions"]["mrs:job:list"] is True
    assert body["actions"]["mrs:job:submit"] is False
    assert body["actions"]["mrs:job:stopAny"] is False
    full = api.client.get(f"/v2/{api.project_id}/permissions").json()
    assert all(full["actions"].values()) and full["policy"]["name"] == "MRS FullAccess"


def test_authentication_is_checked_before_the_policy(api) -> None:
    ro = token_client(api, "MRS ReadOnlyAccess")
    ro.headers["X-Auth-Token"] = "mrsj_not-a-token"
    r = ro.post(api.base, json={})
    assert r.status_code == 401
