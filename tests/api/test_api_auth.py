"""Authentication over HTTP (contract §11): AK/SK signatures, tokens, project binding.

The signature algorithm itself (and the contract's test vectors) is covered in
tests/unit/test_signing.py; here every case goes through the real app and the store.
"""

from __future__ import annotations

import json
from datetime import timedelta

from api_helpers import Signer, assert_error, client_for, new_cluster, other_project
from jobrows import count_jobs
from sqlalchemy import update

from mrs_jobs.api.credcache import CredentialCache
from mrs_jobs.store.jobs import now_ms
from mrs_jobs.store.tables import credentials
from mrs_jobs.store.tenants import credential_by_ak, set_credential_disabled

SUBMIT = {"job_type": "SparkSubmit", "job_name": "auth"}


def signed(api, **knobs):  # type: ignore[no-untyped-def]
    return client_for(api.client.app, Signer(api.ak, api.sk, api.project_id, **knobs))


def refused(r) -> None:  # type: ignore[no-untyped-def]
    msg = assert_error(r, 401, "APIGW.0301")
    assert "Authentication failed" in msg or "token" in msg


def test_correctly_signed_request_works(api) -> None:
    r = signed(api).get(api.base)
    assert r.status_code == 202, r.text
    r = signed(api, date_offset=timedelta(minutes=-10)).get(api.base)
    assert r.status_code == 202, "10 minutes of skew are inside the 15-minute window"


def test_unsigned_request(api) -> None:
    plain = client_for(api.client.app)
    job_id = api.submit()
    for method, path, payload in [
        ("GET", api.base, None),
        ("POST", api.base, SUBMIT),
        ("GET", f"{api.base}/{job_id}", None),
        ("POST", f"{api.base}/{job_id}/kill", None),
        ("POST", f"{api.base}/batch-delete", {"job_id_list": [job_id]}),
        ("GET", f"{api.base}/{job_id}/sql-result", None),
    ]:
        refused(plain.request(method, path, json=payload))
    assert count_jobs(api.store) == 1
    assert api.client.get(f"{api.base}/{job_id}").json()["job_detail"]["job_state"] == "SUBMITTED"


def test_unsigned_caller_learns_nothing(api) -> None:
    plain = client_for(api.client.app)
    # Not whether the cluster exists, nor whether the body is valid.
    refused(plain.get(f"/v2/{api.project_id}/clusters/ghost/job-executions"))
    refused(plain.post(api.base, content=b"{not json"))
    refused(plain.get(f"{api.base}/0000"))


def test_wrong_secret_and_unknown_access_key(api) -> None:
    wrong_sk = client_for(api.client.app, Signer(api.ak, api.sk + "x", api.project_id))
    refused(wrong_sk.get(api.base))
    refused(wrong_sk.post(api.base, json=SUBMIT))
    unknown = client_for(api.client.app, Signer("NOSUCHAK000000000000", api.sk, api.project_id))
    refused(unknown.get(api.base))
    assert count_jobs(api.store) == 0


def test_body_changed_after_signing(api) -> None:
    signed_body = json.dumps({"job_type": "SparkSubmit", "job_name": "signed"}).encode()
    r = signed(api, sign_body=signed_body).post(
        api.base, json={"job_type": "SparkSubmit", "job_name": "swapped"}
    )
    refused(r)
    assert count_jobs(api.store) == 0


def test_path_query_and_headers_changed_after_signing(api) -> None:
    job_id = api.submit()
    other_cluster = new_cluster(api)
    refused(signed(api, sign_path=f"{api.base}/{job_id}").get(f"{api.base}/{job_id}/sql-result"))
    refused(signed(api, sign_path=api.base.replace(api.cluster_id, other_cluster)).get(api.base))
    refused(signed(api, sign_path=f"{api.base}/{job_id}").post(f"{api.base}/{job_id}/kill"))
    refused(signed(api, sign_query="limit=10").get(api.base, params={"limit": 1000}))
    refused(signed(api, sign_query="").get(api.base, params={"job_state": "RUNNING"}))

    def change(name: str, value: str):  # type: ignore[no-untyped-def]
        def after(request) -> None:  # type: ignore[no-untyped-def]
            request.headers[name] = value

        return after

    refused(signed(api, after=change("User-Agent", "curl/8")).get(api.base))
    refused(signed(api, after=change("X-Sdk-Date", "20250101T120000Z")).get(api.base))
    refused(signed(api, after=change("Content-Type", "text/plain")).get(api.base))
    # Killing was refused: still queued.
    assert api.client.get(f"{api.base}/{job_id}").json()["job_detail"]["job_state"] == "SUBMITTED"


def test_malformed_authorization(api) -> None:
    def set_auth(value: str):  # type: ignore[no-untyped-def]
        def after(request) -> None:  # type: ignore[no-untyped-def]
            request.headers["Authorization"] = value

        return after

    for value in [
        "",
        "Basic YWRtaW46YWRtaW4=",
        f"SDK-HMAC-SHA256 Access={api.ak}",
        f"SDK-HMAC-SHA256 Access={api.ak}, SignedHeaders=host, Signature=zz",
        f"SDK-HMAC-SHA256 Access={api.ak}, SignedHeaders=host;x-sdk-date, Signature={'0' * 64}",
    ]:
        refused(signed(api, after=set_auth(value)).get(api.base))


def test_sdk_date_outside_the_window(api) -> None:
    refused(signed(api, date_offset=timedelta(minutes=-20)).get(api.base))
    refused(signed(api, date_offset=timedelta(minutes=20)).post(api.base, json=SUBMIT))
    r = signed(api, date_offset=timedelta(minutes=-20)).get(api.base)
    assert "X-Sdk-Date" in r.json()["error_msg"]
    assert count_jobs(api.store) == 0


def test_token(api) -> None:
    token = api.credentials.create_token(api.project_id, "scripter", 3600)
    client = client_for(api.client.app)
    r = client.post(api.base, json=SUBMIT, headers={"X-Auth-Token": token})
    assert r.status_code == 200, r.text
    job_id = r.json()["job_submit_result"]["job_id"]
    r = client.get(f"{api.base}/{job_id}", headers={"X-Auth-Token": token})
    assert r.status_code == 202 and r.json()["job_detail"]["user"] == "scripter"
    # Content-Type on a body-less GET is not a problem for a token either.
    r = client.get(api.base, headers={"X-Auth-Token": token, "Content-Type": "application/json"})
    assert r.status_code == 202 and r.json()["total_record"] == 1
    refused(client.get(api.base, headers={"X-Auth-Token": token + "x"}))
    refused(client.get(api.base, headers={"X-Auth-Token": "mrsj_unknown"}))


def test_expired_token(api) -> None:
    # An expiry moved in the store reaches a cached credential only after the cache period
    # (tests/api/test_api_credcache.py); without the cache, at once.
    api.client.app.state.credential_cache = CredentialCache(ttl=0)
    token = api.credentials.create_token(api.project_id, "scripter", 60)
    client = client_for(api.client.app)
    assert client.get(api.base, headers={"X-Auth-Token": token}).status_code == 202
    with api.store.write() as conn:
        conn.execute(
            update(credentials)
            .where(credentials.c.kind == "token", credentials.c.user_name == "scripter")
            .values(expires_ms=now_ms() - 1)
        )
    r = client.get(api.base, headers={"X-Auth-Token": token})
    refused(r)
    assert "expired" in r.json()["error_msg"]


def test_credential_of_another_project(api) -> None:
    other = other_project(api)
    job_id = api.submit()
    # B's AK/SK, correctly signed, on A's path.
    b_on_a = api.signed_as(other.ak, other.sk, api.project_id)
    assert_error(b_on_a.get(api.base), 403, "12000052")
    assert_error(
        b_on_a.post(f"{api.base}/batch-delete", json={"job_id_list": [job_id]}), 403, "12000052"
    )
    assert_error(b_on_a.post(f"{api.base}/{job_id}/kill"), 403, "12000052")
    # ...even naming its own project in X-Project-Id.
    b_as_b = api.signed_as(other.ak, other.sk, other.project_id)
    assert_error(b_as_b.get(api.base), 403, "12000052")
    # A's credential with a different X-Project-Id header on A's path.
    a_as_b = api.signed_as(api.ak, api.sk, other.project_id)
    assert_error(a_as_b.get(api.base), 403, "12000052")
    # B's token on A's path.
    token = api.credentials.create_token(other.project_id, "bob", 600)
    r = client_for(api.client.app).get(api.base, headers={"X-Auth-Token": token})
    assert_error(r, 403, "12000052")
    assert api.client.get(f"{api.base}/{job_id}").json()["job_detail"]["job_state"] == "SUBMITTED"


def test_disabled_credential(api) -> None:
    # Without the credential cache (its delay is tests/api/test_api_credcache.py's subject).
    api.client.app.state.credential_cache = CredentialCache(ttl=0)
    ak, sk = api.credentials.create_aksk(api.project_id, "temp")
    client = api.signed_as(ak, sk, api.project_id)
    assert client.get(api.base).status_code == 202
    with api.store.read() as conn:
        cred = credential_by_ak(conn, ak)
    with api.store.write() as conn:
        assert set_credential_disabled(conn, cred.id, True)
    refused(client.get(api.base))
    refused(client.post(api.base, json=SUBMIT))
    # The other credentials are unaffected, and enabling it again works.
    assert api.client.get(api.base).status_code == 202
    with api.store.write() as conn:
        set_credential_disabled(conn, cred.id, False)
    assert client.get(api.base).status_code == 202


def test_disabled_token(api) -> None:
    token = api.credentials.create_token(api.project_id, "scripter", 600)
    with api.store.write() as conn:
        conn.execute(update(credentials).where(credentials.c.kind == "token").values(disabled=True))
    refused(client_for(api.client.app).get(api.base, headers={"X-Auth-Token": token}))


def test_an_aksk_access_key_is_not_a_token(api) -> None:
    refused(client_for(api.client.app).get(api.base, headers={"X-Auth-Token": api.ak}))
    refused(client_for(api.client.app).get(api.base, headers={"X-Auth-Token": api.sk}))
