"""The real server through the official SDK, without running Spark: list filters and paging,
errors, authentication, the start-up output, and stopping on SIGTERM.

Jobs here never reach an engine: they sit in the queue of a cluster with no running slot, or
name an application file that does not exist (refused at launch: FAILED/FAILED at once).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from huaweicloudsdkmrs.v2 import (
    BatchDeleteJobsRequest,
    CreateExecuteJobRequest,
    JobBatchDelete,
    JobExecution,
    ShowHdfsFileListRequest,
    ShowJobExeListNewRequest,
    ShowSqlResultRequest,
    ShowSqlResultWithJobRequest,
    StopJobRequest,
)
from mrs_acceptance import (
    SDK_HOME,
    TERMINAL,
    RunningServer,
    client_for,
    expect_error,
    start_server,
    stop_server,
)
from support import SigV4Auth

MISSING_APP = "/nonexistent/mrs-jobs-acceptance/app.py"


def _list(server: RunningServer, cluster_id: str, client=None, **query):  # type: ignore[no-untyped-def]
    resp = (client or server.client()).show_job_exe_list_new(
        ShowJobExeListNewRequest(cluster_id=cluster_id, **query)
    )
    return resp.total_record, [j.job_id for j in resp.job_list]


# -- start-up ---------------------------------------------------------------------------------


def test_startup_prints_a_working_sdk_snippet_and_bootstrap_is_private(
    server: RunningServer, tmp_path: Path
) -> None:
    out = server.stdout()
    assert f"mrs-jobs is running at {server.endpoint}" in out
    assert server.project_id in out and server.cluster_id in out
    assert "BasicCredentials(" in out and "with_endpoints(" in out
    assert server.boot["sk"] not in out, "the SK must not be printed"
    mode = server.bootstrap_path.stat().st_mode & 0o777
    assert mode == 0o600, oct(mode)
    assert set(server.boot) >= {"endpoint", "project_id", "cluster_id", "ak", "sk"}

    # The printed snippet must run as is against the running server.
    snippet = "\n".join(line[4:] for line in out.splitlines() if line.startswith("    "))
    assert "huaweicloudsdkmrs" in snippet
    script = tmp_path / "snippet.py"
    script.write_text(snippet + "\n")
    done = subprocess.run(
        [sys.executable, str(script)],
        env={**server.env(), "HOME": str(SDK_HOME)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"the printed snippet failed:\n{snippet}\n{done.stderr}"
    assert "total_record" in done.stdout


# -- list -------------------------------------------------------------------------------------


def test_list_every_filter_and_paging(server: RunningServer) -> None:
    pid = server.project_id
    # A cluster without running slots keeps its jobs SUBMITTED; a second user for `user`.
    held = server.admin("create-cluster", pid, "--name", "held", "--max-running", "0")
    listing = server.admin("create-cluster", pid, "--name", "listing")
    alice_keys = json.loads(server.admin("create-aksk", pid, "--user", "alice"))
    alice = client_for(server.endpoint, alice_keys["ak"], alice_keys["sk"], pid)

    plan = [
        ("alpha", None),
        ("alpha", None),
        ("beta", alice),
        ("alpha", None),
        ("beta", None),
        ("gamma", alice),
        ("beta", alice),
    ]
    ids: list[str] = []
    for name, client in plan:
        ids.append(server.submit([MISSING_APP], name, client=client, cluster_id=held))
        time.sleep(0.005)  # distinct submitted times, so the expected order is unambiguous
    # Killed while queued: KILLED/KILLED at once.
    for victim in (ids[1], ids[5]):
        server.client().stop_job(StopJobRequest(cluster_id=held, job_execution_id=victim))
    killed = {ids[1], ids[5]}
    details = {i: server.show(i, held) for i in ids}
    for i, d in details.items():
        assert (d.job_state, d.job_result) == (
            ("KILLED", "KILLED") if i in killed else ("SUBMITTED", "UNDEFINED")
        )
        assert isinstance(d.submitted_time, int) and d.submitted_time > 0
    by_time = sorted(ids, key=lambda i: (details[i].submitted_time, i))
    assert by_time == ids

    def check(expected: list[str], **query) -> None:  # type: ignore[no-untyped-def]
        total, got = _list(server, held, limit="100", sort_by="asc", **query)
        assert total == len(expected), (query, total, got)
        assert got == expected, query

    check(ids)
    check([ids[0], ids[1], ids[3]], job_name="alpha")
    check([ids[2], ids[4], ids[6]], job_name="beta")
    check([], job_name="alph")  # exact match, not a prefix
    check([ids[4]], job_id=ids[4])
    check([], job_id=str(uuid.uuid4()))
    check([ids[2], ids[5], ids[6]], user="alice")
    check([ids[0], ids[1], ids[3], ids[4]], user="admin")
    check(ids, queue="default")
    check([], queue="other")
    check(ids, job_type="SparkSubmit")
    check([], job_type="SparkSql")
    check([i for i in ids if i not in killed], job_state="SUBMITTED")
    check([ids[1], ids[5]], job_state="KILLED")
    check([], job_state="RUNNING")
    check([i for i in ids if i not in killed], job_result="UNDEFINED")
    check([ids[1], ids[5]], job_result="KILLED")
    check([ids[5]], user="alice", job_state="KILLED")
    times = [details[i].submitted_time for i in ids]
    check(ids[2:5], submitted_time_begin=times[2], submitted_time_end=times[4])  # inclusive
    check(ids[3:], submitted_time_begin=times[3])
    check(ids[:2], submitted_time_end=times[1])
    check([ids[6]], submitted_time_begin=times[6], submitted_time_end=times[6])

    # Paging: offset is the 1-based page number; total_record counts every match.
    pages = [_list(server, held, limit="3", offset=str(n), sort_by="asc") for n in (1, 2, 3, 4)]
    assert [t for t, _ in pages] == [7, 7, 7, 7]
    assert [p for _, p in pages] == [ids[0:3], ids[3:6], ids[6:7], []]
    assert _list(server, held, limit="3", offset="0", sort_by="asc") == (7, ids[0:3])
    assert _list(server, held, limit="2", offset="2") == (7, list(reversed(ids))[2:4])  # desc
    assert _list(server, held, limit="2", offset="2", user="alice") == (3, [ids[2]])
    assert _list(server, held) == (7, list(reversed(ids)))  # default limit 10, newest first

    # FAILED/FAILED jobs on another cluster; neither cluster's list shows the other's jobs.
    failed = [server.submit([MISSING_APP], "broken", cluster_id=listing) for _ in range(2)]
    for job_id in failed:
        d = server.wait_state(job_id, TERMINAL, timeout=15, cluster_id=listing)
        assert (d.job_state, d.job_result) == ("FAILED", "FAILED")
    assert _list(server, listing, job_state="FAILED", sort_by="asc") == (2, failed)
    assert _list(server, listing, job_result="FAILED", sort_by="asc") == (2, failed)
    assert _list(server, listing, job_result="SUCCEEDED") == (0, [])
    assert _list(server, listing, job_id=ids[0]) == (0, [])
    assert _list(server, held, job_state="FAILED") == (0, [])


# -- errors -----------------------------------------------------------------------------------


def test_sql_result_of_a_spark_submit_job_is_0179(server: RunningServer) -> None:
    job_id = server.submit([MISSING_APP], "not-sql")
    client = server.client()
    # In SDK 3.1.219 the job's SQL result is show_sql_result_with_job (GET .../job-executions/
    # {id}/sql-result); show_sql_result is the SQL-execution API (GET .../sql-execution/{sql_id}).
    expect_error(
        lambda: client.show_sql_result_with_job(
            ShowSqlResultWithJobRequest(cluster_id=server.cluster_id, job_execution_id=job_id)
        ),
        400,
        "0179",
    )
    server.wait_state(job_id, TERMINAL, timeout=15)
    expect_error(
        lambda: client.show_sql_result_with_job(
            ShowSqlResultWithJobRequest(cluster_id=server.cluster_id, job_execution_id=job_id)
        ),
        400,
        "0179",
    )
    # show_sql_result is the SQL execution API: a job's id is no SQL execution's id.
    exc = expect_error(
        lambda: client.show_sql_result(
            ShowSqlResultRequest(cluster_id=server.cluster_id, sql_id=job_id)
        ),
        400,
        "12000002",
    )
    assert "SQL execution does not exist" in exc.error_msg


def test_nul_in_an_argument_and_unknown_cluster(server: RunningServer) -> None:
    client = server.client()
    before = _list(server, server.cluster_id, limit="1000")[0]
    exc = expect_error(
        lambda: client.create_execute_job(
            CreateExecuteJobRequest(
                cluster_id=server.cluster_id,
                body=JobExecution(
                    job_type="SparkSubmit", job_name="nul", arguments=["/tmp/a.py", "x\x00y"]
                ),
            )
        ),
        400,
        "12000002",
    )
    assert "arguments[1]" in exc.error_msg
    assert _list(server, server.cluster_id, limit="1000")[0] == before, "nothing was created"

    unknown = str(uuid.uuid4())
    expect_error(
        lambda: client.create_execute_job(
            CreateExecuteJobRequest(
                cluster_id=unknown,
                body=JobExecution(job_type="SparkSubmit", job_name="x", arguments=[MISSING_APP]),
            )
        ),
        400,
        "12000003",
    )
    expect_error(
        lambda: client.show_job_exe_list_new(ShowJobExeListNewRequest(cluster_id=unknown)),
        400,
        "12000003",
    )


def test_files_listing_through_the_sdk(server: RunningServer, tmp_path: Path) -> None:
    """show_hdfs_file_list over a directory under the bootstrap cluster's roots (the tests'
    temp root), paged and sorted; outside the roots and a rootless cluster are 400."""
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "one.txt").write_bytes(b"1")
    (tmp_path / "d" / "three.txt").write_bytes(b"333")
    client = server.client()

    def ls(**query):  # type: ignore[no-untyped-def]
        req = ShowHdfsFileListRequest(cluster_id=server.cluster_id, path=str(tmp_path / "d"))
        for k, v in query.items():
            setattr(req, k, v)
        return client.show_hdfs_file_list(req)

    resp = ls(sort_key="length", order="desc", limit="1", offset="1")
    assert resp.total_count == 2
    [big] = resp.files
    assert (big.path_suffix, big.length, big.type, big.replication) == ("three.txt", 3, "FILE", 1)
    assert isinstance(big.modification_time, int) and big.modification_time > 0
    assert [f.path_suffix for f in ls(order="asc").files] == ["one.txt", "three.txt"]
    expect_error(
        lambda: client.show_hdfs_file_list(
            ShowHdfsFileListRequest(cluster_id=server.cluster_id, path="/etc")
        ),
        400,
        "12000002",
    )
    bare = server.admin("create-cluster", server.project_id, "--name", "no-roots").strip()
    exc = expect_error(
        lambda: client.show_hdfs_file_list(ShowHdfsFileListRequest(cluster_id=bare, path="/tmp")),
        400,
        "12000002",
    )
    assert "no input roots" in exc.error_msg


def test_batch_delete_with_an_unknown_id_deletes_nothing(server: RunningServer) -> None:
    job_id = server.submit([MISSING_APP], "keep-me")
    client = server.client()
    missing = str(uuid.uuid4())
    exc = expect_error(
        lambda: client.batch_delete_jobs(
            BatchDeleteJobsRequest(
                cluster_id=server.cluster_id, body=JobBatchDelete(job_id_list=[job_id, missing])
            )
        ),
        400,
        "0176",
    )
    assert missing in exc.error_msg
    assert server.show(job_id).job_id == job_id


# -- authentication ---------------------------------------------------------------------------


def test_wrong_sk_and_unknown_ak_are_401(server: RunningServer) -> None:
    request = ShowJobExeListNewRequest(cluster_id=server.cluster_id)
    wrong_sk = server.client(
        sk=server.boot["sk"][:-1] + ("A" if server.boot["sk"][-1] != "A" else "B")
    )
    expect_error(lambda: wrong_sk.show_job_exe_list_new(request), 401, "APIGW.0301")
    unknown_ak = server.client(ak="UNKNOWNAK0000000000X")
    expect_error(lambda: unknown_ak.show_job_exe_list_new(request), 401, "APIGW.0301")
    server.client().show_job_exe_list_new(request)  # the real keys still work


def test_unsigned_and_tampered_requests_are_401(server: RunningServer) -> None:
    url = f"{server.endpoint}/v2/{server.project_id}/clusters/{server.cluster_id}/job-executions"
    with httpx.Client(timeout=10, trust_env=False) as http:
        r = http.get(url, headers={"Content-Type": "application/json"})
        assert r.status_code == 401
        assert r.json()["error_code"] == "APIGW.0301"
        assert r.headers["x-request-id"]

        # Sign a batch delete of an unknown id, then send it as signed (authenticated: 0176)
        # and with its body changed after signing (401).
        body = json.dumps({"job_id_list": [str(uuid.uuid4())]}).encode()
        original = httpx.Request("POST", f"{url}/batch-delete", content=body)
        flow = SigV4Auth(server.boot["ak"], server.boot["sk"], server.project_id).auth_flow(
            original
        )
        signed = next(flow)
        headers = {k: v for k, v in signed.headers.items() if k.lower() != "content-length"}
        altered = json.dumps({"job_id_list": [str(uuid.uuid4())]}).encode()
        assert len(altered) == len(body) and altered != body
        tampered = httpx.Request("POST", f"{url}/batch-delete", content=altered, headers=headers)
        r = http.send(tampered)
        assert r.status_code == 401, r.text
        assert r.json()["error_code"] == "APIGW.0301"

        r = http.send(signed)
        assert r.status_code == 400, r.text
        assert r.json()["error_code"] == "0176"


# -- stopping ---------------------------------------------------------------------------------


def test_sigterm_stops_the_server_cleanly(tmp_path: Path) -> None:
    srv = start_server(tmp_path)
    try:
        srv.proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        try:
            code = srv.proc.wait(15)
        except subprocess.TimeoutExpired:
            pytest.fail("the server did not exit within 15 s of SIGTERM")
        assert code == 0, f"exit status {code}; stderr:\n{srv.stderr()}"
        assert time.monotonic() - started < 15
        assert "Traceback" not in srv.stderr()
    finally:
        stop_server(srv)
