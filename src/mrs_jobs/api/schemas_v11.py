"""Request and response models of the MRS v1.1 job APIs (the official SDK v1's
``SubmitJobReqV11``, ``CreateAndExecuteJobResponse``, ``JobExeResult``). Requests forbid unknown
fields; a field left out or null is the same as an empty one."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt, StrictStr

from mrs_jobs.domain.v1jobs import V1Submission

__all__ = [
    "JobExeListResponse",
    "JobExeModel",
    "JobExeResponse",
    "SubmitJobV11Request",
    "SubmitJobV11Response",
]


class SubmitJobV11Request(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job_type: StrictInt
    job_name: StrictStr
    cluster_id: StrictStr
    jar_path: StrictStr | None = None
    arguments: StrictStr | None = None
    input: StrictStr | None = None
    output: StrictStr | None = None
    job_log: StrictStr | None = None
    file_action: StrictStr | None = None
    hql: StrictStr | None = None
    hive_script_path: StrictStr | None = None
    # Sent by the Terraform mrs_job_v1 resources; MRS does not support them either.
    is_protected: StrictBool | None = None
    is_public: StrictBool | None = None

    def submission(self) -> V1Submission:
        return V1Submission(**{k: v for k, v in self.model_dump().items() if v is not None})


class _JobExeFields(BaseModel):
    """The fields a v1.1 job execution has in both the submit answer and the job-exes reads."""

    group_id: str
    jar_path: str
    input: str
    output: str
    job_log: str
    job_type: int
    file_action: str
    arguments: str
    hql: str
    job_state: int
    job_final_status: int
    hive_script_path: str
    create_by: str
    finished_step: int
    job_main_id: str
    job_step_id: str
    postpone_at: int
    step_name: str
    step_num: int
    task_num: int
    update_by: str


class JobExeModel(_JobExeFields):
    id: str
    create_at: int
    update_at: int
    tenant_id: str
    job_id: str
    job_name: str
    start_time: int | None
    end_time: int | None
    cluster_id: str
    spend_time: float | None
    step_seq: int
    progress: str


class JobExeListResponse(BaseModel):
    totalRecord: int  # noqa: N815 - MRS's name
    job_executions: list[JobExeModel]


class JobExeResponse(BaseModel):
    job_execution: JobExeModel


class _SubmittedJobExecution(_JobExeFields):
    templated: bool
    created_at: int
    updated_at: int
    id: str
    tenant_id: str
    job_id: str
    job_name: str
    input_id: str | None
    output_id: str | None
    start_time: int
    end_time: int | None
    cluster_id: str
    engine_job_id: str | None
    return_code: str | None
    is_public: bool
    is_protected: bool
    credentials: str
    user_id: str
    job_configs: dict[str, object] | None
    extra: dict[str, object] | None
    data_source_urls: dict[str, object] | None
    info: dict[str, object] | None


class SubmitJobV11Response(_SubmittedJobExecution):
    """The MRS reference wraps the record in ``job_execution``; the SDK v1 reads it flat."""

    job_execution: _SubmittedJobExecution
