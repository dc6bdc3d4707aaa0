"""Request and response models, split by direction. Requests forbid unknown fields."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, StrictStr

__all__ = [
    "BatchDeleteRequest",
    "JobDetailResponse",
    "JobListResponse",
    "JobModel",
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


class SqlResultResponse(BaseModel):
    sql_results: dict[str, list[dict[str, str]]]
