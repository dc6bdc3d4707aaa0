"""(ours) The retry properties at submit: out-of-range values are a 400 in MRS's shape (error
code 12000002, the property named) and store nothing; good ones are accepted; show and list
carry the job's ``attempt``."""

from __future__ import annotations

import pytest

from mrs_jobs.store.tables import job_events, jobs


@pytest.mark.parametrize(
    ("key", "bad"),
    [
        ("mrs.job.retries", "11"),
        ("mrs.job.retries", "-1"),
        ("mrs.job.retries", "1.5"),
        ("mrs.job.retries", ""),
        ("mrs.job.retry.delay", "3601"),
        ("mrs.job.retry.delay", "ten"),
    ],
)
def test_bad_retry_properties_are_a_400_and_store_nothing(api, key: str, bad: str) -> None:
    body = {"job_type": "SparkSubmit", "job_name": "r", "properties": {key: bad}}
    r = api.client.post(api.base, json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error_code"] == "12000002"
    assert f"properties[{key}]" in r.json()["error_msg"]
    with api.store.read() as conn:
        assert conn.execute(jobs.select()).first() is None
        assert conn.execute(job_events.select()).first() is None


def test_good_retry_properties_are_accepted_and_show_gives_the_attempt(api) -> None:
    props = {"mrs.job.retries": "10", "mrs.job.retry.delay": "0"}
    job_id = api.submit(properties=props)
    job = api.client.get(f"{api.base}/{job_id}").json()["job_detail"]
    assert job["attempt"] == 1 and job["job_state"] == "SUBMITTED"
    listed = api.client.get(api.base).json()["job_list"]
    assert [j["attempt"] for j in listed if j["job_id"] == job_id] == [1]
