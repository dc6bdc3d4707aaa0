"""X-Idempotency-Key on submit: a retry returns the first job; another body is refused."""

from __future__ import annotations

import threading

from jobrows import count_jobs


def _submit(client, base, key, name="idem", args=None):
    body = {"job_type": "SparkSubmit", "job_name": name, "arguments": args or ["/a.py"]}
    return client.post(base, json=body, headers={"X-Idempotency-Key": key})


def test_retry_returns_the_first_job(api) -> None:
    first = _submit(api.client, api.base, "key-1")
    again = _submit(api.client, api.base, "key-1")
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert count_jobs(api.store) == 1
    other = _submit(api.client, api.base, "key-2")
    assert (
        other.json()["job_submit_result"]["job_id"] != first.json()["job_submit_result"]["job_id"]
    )


def test_same_key_other_body_is_refused(api) -> None:
    assert _submit(api.client, api.base, "k").status_code == 200
    r = _submit(api.client, api.base, "k", name="different")
    assert r.status_code == 400 and r.json()["error_code"] == "12000002"
    assert "X-Idempotency-Key" in r.json()["error_msg"]
    assert count_jobs(api.store) == 1


def test_bad_keys_are_refused(api) -> None:
    for key in ["x" * 129, ""]:
        r = api.client.post(
            api.base,
            json={"job_type": "SparkSubmit", "job_name": "n"},
            headers={"X-Idempotency-Key": key},
        )
        assert r.status_code == 400 and r.json()["error_code"] == "12000002"
    assert count_jobs(api.store) == 0


def test_concurrent_retries_create_one_job(api) -> None:
    results: list[str] = []
    errors: list[str] = []

    def go() -> None:
        client = api.signed_as(api.ak, api.sk, api.project_id)
        r = _submit(client, api.base, "race")
        if r.status_code == 200:
            results.append(r.json()["job_submit_result"]["job_id"])
        else:
            errors.append(r.text)

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(results) == 8 and len(set(results)) == 1
    assert count_jobs(api.store) == 1


def test_key_outlives_a_deleted_job(api) -> None:
    job_id = _submit(api.client, api.base, "gone").json()["job_submit_result"]["job_id"]
    assert (
        api.client.post(f"{api.base}/batch-delete", json={"job_id_list": [job_id]}).status_code
        == 202
    )
    again = _submit(api.client, api.base, "gone")
    assert again.json()["job_submit_result"]["job_id"] == job_id


def test_timeout_property_is_validated(api) -> None:
    for bad in ["0", "-1", "1.5", "abc", "99999999"]:
        r = api.client.post(
            api.base,
            json={
                "job_type": "SparkSubmit",
                "job_name": "t",
                "properties": {"mrs.job.timeout": bad},
            },
        )
        assert r.status_code == 400 and "mrs.job.timeout" in r.json()["error_msg"]
    r = api.client.post(
        api.base,
        json={"job_type": "SparkSubmit", "job_name": "t", "properties": {"mrs.job.timeout": "30"}},
    )
    assert r.status_code == 200
