"""The real server through the official SDK's **v1** job calls, unmodified:
``create_and_execute_job``, ``list_execute_job``, ``show_job_exes`` and
``delete_job_execution`` (``/v1.1/{project_id}/jobs/submit-job``, ``job-exes``,
``job-executions``), with the job seen through the v2 client's ``show_single_job_exe`` too.
A DistCp of a small local file: fast, and it runs for real."""

from __future__ import annotations

from mrs_acceptance import TERMINAL, RunningServer, expect_error, under_sdk_home

with under_sdk_home():  # the SDK writes ~/.huaweicloud on import
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkmrs.v1 import (
        CreateAndExecuteJobRequest,
        DeleteJobExecutionRequest,
        ListExecuteJobRequest,
        MrsClient,
        ShowJobExesRequest,
        SubmitJobReqV11,
    )


def v1(server: RunningServer) -> MrsClient:
    return (
        MrsClient.new_builder()
        .with_credentials(BasicCredentials(server.boot["ak"], server.boot["sk"], server.project_id))
        .with_endpoints([server.endpoint])
        .build()
    )


def test_every_v1_job_call_on_a_distcp(server: RunningServer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "in.txt"
    src.write_text("v1 says hello\n")
    dst = tmp_path / "out.txt"  # a file to a path that does not exist: copied to that path
    client = v1(server)

    created = client.create_and_execute_job(
        CreateAndExecuteJobRequest(
            body=SubmitJobReqV11(
                job_type=5,
                job_name="v1-copy",
                cluster_id=server.cluster_id,
                input=str(src),
                output=str(dst),
                file_action="import",
                job_log="obs://logs/v1/",
            )
        )
    )
    job_id = created.id
    assert job_id and created.job_type == 5 and created.job_state == 1
    assert (created.cluster_id, created.tenant_id) == (server.cluster_id, server.project_id)
    assert (created.input, created.output) == (str(src), str(dst))
    server.submitted.add(job_id)

    # The same job through the v2 client (and so the console).
    detail = server.wait_state(job_id, TERMINAL, 60)
    assert (detail.job_type, detail.job_name) == ("DistCp", "v1-copy")
    assert (detail.job_state, detail.job_result) == ("FINISHED", "SUCCEEDED"), detail
    assert dst.read_text() == "v1 says hello\n"

    exe = client.show_job_exes(ShowJobExesRequest(job_exe_id=job_id)).job_execution
    assert (exe.id, exe.job_type, exe.job_state, exe.job_final_status) == (job_id, 5, 3, 2)
    assert (exe.input, exe.output, exe.job_name) == (str(src), str(dst), "v1-copy")
    assert (exe.file_action, exe.job_log) == ("import", "obs://logs/v1/")  # as sent
    assert exe.create_at > 10**12 and exe.end_time >= exe.start_time > 0  # milliseconds
    assert exe.progress == "100%"

    listed = client.list_execute_job(
        ListExecuteJobRequest(
            cluster_id=server.cluster_id, page_size="10", current_page="1", state="3"
        )
    )
    assert job_id in [j.id for j in listed.job_executions]
    assert listed.total_record == len(listed.job_executions)
    only = client.list_execute_job(ListExecuteJobRequest(cluster_id=server.cluster_id, id=job_id))
    assert (only.total_record, only.job_executions[0].job_name) == (1, "v1-copy")

    # What v1 cannot do here is a clear 400, as the SDK reports it.
    expect_error(
        lambda: client.create_and_execute_job(
            CreateAndExecuteJobRequest(
                body=SubmitJobReqV11(
                    job_type=7, job_name="sql", cluster_id=server.cluster_id, hql="gc2hvdw=="
                )
            )
        ),
        400,
        "12000002",
    )

    client.delete_job_execution(DeleteJobExecutionRequest(job_execution_id=job_id))
    expect_error(lambda: client.show_job_exes(ShowJobExesRequest(job_exe_id=job_id)), 400, "0176")
    expect_error(lambda: server.show(job_id), 400, "0176")  # gone from v2 too
