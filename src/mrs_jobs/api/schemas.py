"""Request and response models, split by direction. Requests forbid unknown fields."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr

__all__ = [
    "FileListResponse",
    "FileStatusModel",
    "ERROR_RESPONSES",
    "BatchDeleteRequest",
    "ErrorBody",
    "JobDetailResponse",
    "JobListResponse",
    "JobModel",
    "SqlCancelResponse",
    "SqlExecutionRequest",
    "SqlExecutionResponse",
    "SqlResultResponse",
    "SubmitRequest",
    "SubmitResponse",
]


class SubmitRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job_type: StrictStr
    job_name: StrictStr
    arguments: list[StrictStr] = []
    properties: dict[StrictStr, StrictStr] = {}


class BatchDeleteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Element types are checked by the service so the error can name the bad index.
    job_id_list: list[object]


class JobModel(BaseModel):
    job_id: str
    user: str
    job_name: str
    job_result: str
    job_state: str
    job_progress: float
    job_type: str
    started_time: int
    submitted_time: int
    finished_time: int
    elapsed_time: int
    queue: str
    arguments: str
    launcher_id: str
    properties: str
    app_id: str
    tracking_url: str
    attempt: int = Field(
        default=1,
        description="Ours: the job's attempt, 1-based; above 1 once a failed attempt was retried "
        "(mrs.job.retries).",
    )
    diagnostics: str = Field(
        description="Ours: why the job ended as it did (empty while nothing is wrong), "
        "at most 4 KB, secrets masked."
    )
    cpu_seconds: float | None = Field(
        default=None,
        description="Ours: CPU seconds the ended job used (YARN: vcore-seconds); null if unknown.",
    )
    peak_memory_mb: int | None = Field(
        default=None,
        description="Ours: the largest resident size (MB) of one of its processes (YARN: its "
        "average allocation); null if unknown.",
    )


class SubmitResult(BaseModel):
    job_id: str
    state: str


class SubmitResponse(BaseModel):
    job_submit_result: SubmitResult


class JobListResponse(BaseModel):
    total_record: int
    job_list: list[JobModel]


class JobDetailResponse(BaseModel):
    job_detail: JobModel


class JobEventModel(BaseModel):
    event_time: int  # epoch ms
    from_state: str | None  # null: the job was created
    to_state: str
    reason: str
    caused_by: str  # "request <id> by <user>", "supervisor <id>", "service shutdown (...)"


class JobEventsResponse(BaseModel):
    """Ours (not in MRS): a job's history."""

    job_events: list[JobEventModel]


class FileStatusModel(BaseModel):
    """MRS's FileStatusV2."""

    path_suffix: str
    owner: str
    group: str
    permission: str
    replication: int
    block_size: int
    length: int
    type: str
    children_num: int
    access_time: int
    modification_time: int


class FileListResponse(BaseModel):
    total_count: int
    files: list[FileStatusModel]


class SqlResultResponse(BaseModel):
    sql_results: dict[str, list[dict[str, str]]]


class SqlExecutionRequest(BaseModel):
    """MRS's SqlExecutionReq."""

    model_config = ConfigDict(extra="forbid")

    sql_type: StrictStr
    sql_content: StrictStr
    database: StrictStr | None = None
    archive_path: StrictStr | None = None


class SqlExecutionResponse(BaseModel):
    """MRS's ExecuteSqlResponse and ShowSqlResultResponse (fields absent when not known)."""

    id: str
    statement: str
    status: str
    message: str | None = None
    result_location: str | None = None
    content: list[list[str]] | None = None


class SqlCancelResponse(BaseModel):
    """MRS's CancelSqlResponse."""

    status: str
    message: str | None = None


class ErrorBody(BaseModel):
    """Every error (contract section 10): exactly these two strings, with X-Request-Id."""

    model_config = ConfigDict(extra="forbid")

    error_code: str
    error_msg: str


#: The error statuses of contract section 10, declared on every operation (OpenAPI only).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "Invalid parameter or body, unknown cluster or job, or a refused operation"),
        (401, "Missing or wrong signature, unknown AK, bad or expired token"),
        (403, "The credential's project is not the path's project"),
        (404, "Unknown route"),
        (413, "Body over the size limit"),
        (429, "Too many jobs queued for the cluster (with Retry-After)"),
        (500, "Store failure"),
        (503, "Shutting down or store unavailable (with Retry-After)"),
    )
}
