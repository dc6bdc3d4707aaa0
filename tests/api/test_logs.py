"""The log extension: byte ranges, tail, follow offsets, scoping."""

from __future__ import annotations

from mrs_jobs.store.supervision import set_fields


def test_log_ranges_and_tail(api, tmp_path) -> None:
    job_id = api.submit("logs")
    (tmp_path / "stdout.log").write_bytes(b"line1\nline2\nline3\n")
    (tmp_path / "stderr.log").write_bytes(b"oops\n")
    with api.store.write() as conn:
        set_fields(conn, job_id, workdir=str(tmp_path))
    r = api.client.get(f"{api.base}/{job_id}/log")
    assert r.status_code == 200 and r.text == "line1\nline2\nline3\n"
    assert r.headers["x-log-next-offset"] == "18" and r.headers["x-request-id"]
    r = api.client.get(f"{api.base}/{job_id}/log", params={"offset": 6, "limit": 6})
    assert r.text == "line2\n" and r.headers["x-log-next-offset"] == "12"
    r = api.client.get(f"{api.base}/{job_id}/log", params={"offset": -6})
    assert r.text == "line3\n"
    r = api.client.get(f"{api.base}/{job_id}/log", params={"type": "stderr"})
    assert r.text == "oops\n"
    r = api.client.get(f"{api.base}/{job_id}/log", params={"type": "secret"})
    assert r.status_code == 400 and r.json()["error_code"] == "12000002"


def test_log_of_unknown_or_deleted_job(api) -> None:
    job_id = api.submit("logs")
    r = api.client.get(f"{api.base}/{job_id}/log")
    assert r.status_code == 200 and r.text == ""  # not launched yet
    assert (
        api.client.post(f"{api.base}/batch-delete", json={"job_id_list": [job_id]}).status_code
        == 202
    )
    r = api.client.get(f"{api.base}/{job_id}/log")
    assert r.status_code == 400 and r.json()["error_code"] == "0176"


def test_log_never_follows_a_symlink_planted_in_the_job_dir(api, tmp_path) -> None:
    job_id = api.submit("planted")
    secret = tmp_path / "root-only.txt"
    secret.write_text("TOP-SECRET-CONTENT\n")
    workdir = tmp_path / "wd"
    workdir.mkdir()
    (workdir / "stdout.log").symlink_to(secret)
    (workdir / "stderr.log").symlink_to("/dev/zero")
    with api.store.write() as conn:
        set_fields(conn, job_id, workdir=str(workdir))
    for kind in ("stdout", "stderr"):
        r = api.client.get(f"{api.base}/{job_id}/log", params={"type": kind})
        assert r.status_code == 200 and r.text == ""
