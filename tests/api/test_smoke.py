from __future__ import annotations


def test_submit_show_list(api) -> None:
    job_id = api.submit("first")
    r = api.client.get(f"{api.base}/{job_id}")
    assert r.status_code == 202, r.text
    d = r.json()["job_detail"]
    assert d["job_state"] == "SUBMITTED"
    assert d["arguments"] == "[/opt/a.py, 1]"
    r = api.client.get(api.base)
    assert r.status_code == 202
    assert r.json()["total_record"] == 1
    assert r.headers["x-request-id"]
