"""What a job used, through the official SDK against the real server: a local DistCp job (a
Python process of ours, boxed) reports its CPU seconds and peak memory in ``job_detail``;
the SDK's models keep MRS's fields and take the answer without complaint, the roll-up and
``mrs-jobs usage`` count the job."""

from __future__ import annotations

import httpx
from huaweicloudsdkmrs.v2 import ShowJobExeListNewRequest, ShowSingleJobExeRequest
from mrs_acceptance import TERMINAL, RunningServer
from support import SigV4Auth


def test_a_local_job_reports_what_it_used_through_the_sdk(server: RunningServer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("alpha\n" * 1000)
    job_id = server.submit([str(src), str(tmp_path / "copy")], name="used", job_type="DistCp")
    detail = server.wait_state(job_id, TERMINAL, 120)
    assert (detail.job_state, detail.job_result) == ("FINISHED", "SUCCEEDED"), detail
    client = server.client()
    resp = client.show_single_job_exe(
        ShowSingleJobExeRequest(cluster_id=server.cluster_id, job_execution_id=job_id)
    )
    shown = resp.to_json_object()["job_detail"]
    assert 0 < shown["cpu_seconds"] < 60, shown  # a Python process: some CPU, not a minute
    assert 5 <= shown["peak_memory_mb"] < 2000, shown
    listed = client.show_job_exe_list_new(ShowJobExeListNewRequest(cluster_id=server.cluster_id))
    assert job_id in [j.job_id for j in listed.job_list]  # the list parses with the new fields
    url = f"{server.endpoint}/v2/{server.project_id}/clusters/{server.cluster_id}/job-usage"
    auth = SigV4Auth(server.boot["ak"], server.boot["sk"], server.project_id)
    rollup = httpx.get(url, params={"since": "1h", "group_by": "job_type"}, auth=auth).json()
    distcp = next(g for g in rollup["groups"] if g["group"] == "DistCp")
    assert distcp["cpu_seconds"] >= shown["cpu_seconds"] - 0.001
    out = server.cli("usage", "--since", "1h")
    assert out.returncode == 0 and "DistCp" in out.stdout, out.stdout + out.stderr
