"""The domain error tree. No HTTP here: ``api/errors.py`` maps each class to a status and code."""

from __future__ import annotations

__all__ = [
    "AuthError",
    "BatchDeleteFailed",
    "ClusterNotFound",
    "ComponentMissing",
    "DomainError",
    "HistoryNotFound",
    "HistoryNotReady",
    "InvalidParameter",
    "JobAlreadyEnded",
    "JobNotFinished",
    "JobNotFound",
    "PermissionDenied",
    "ProjectMismatch",
    "QueueFull",
    "SqlExecutionNotFound",
    "StoreFailure",
    "StoreUnavailable",
    "WrongJobType",
]


class DomainError(Exception):
    """Base of every error a user can see; ``message`` is shown as ``error_msg``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidParameter(DomainError):
    """A request parameter or body field is invalid."""


class ClusterNotFound(DomainError):
    def __init__(self, cluster_id: str) -> None:
        super().__init__(f"The cluster does not exist: {cluster_id}")


class ComponentMissing(DomainError):
    """The cluster has no engine for the job type (Spark 0057, Hive 0168, Flink 0169)."""

    def __init__(self, component: str, message: str) -> None:
        super().__init__(message)
        self.component = component


class JobNotFound(DomainError):
    def __init__(self, job_ids: list[str] | str) -> None:
        ids = [job_ids] if isinstance(job_ids, str) else job_ids
        super().__init__("The job does not exist: " + ", ".join(ids))
        self.job_ids = ids


class SqlExecutionNotFound(DomainError):
    """No SQL execution (MRS ``sql-execution``) of that id in the project and cluster."""

    def __init__(self, sql_id: str) -> None:
        super().__init__(f"The SQL execution does not exist: {sql_id}")


class JobAlreadyEnded(DomainError):
    def __init__(self, job_id: str, state: str) -> None:
        super().__init__(f"The job {job_id} has already ended ({state}) and cannot be killed.")


class WrongJobType(DomainError):
    def __init__(self, job_type: str) -> None:
        super().__init__(f"SQL results exist only for SQL jobs; this job is {job_type}.")


class JobNotFinished(DomainError):
    def __init__(self, job_id: str, state: str) -> None:
        super().__init__(f"The job {job_id} has not finished yet (state {state}).")


class QueueFull(DomainError):
    def __init__(self, cluster_id: str, limit: int, retry_after: int = 5) -> None:
        super().__init__(
            f"Too many jobs are queued for cluster {cluster_id} (limit {limit}); retry later."
        )
        self.retry_after = retry_after


class AuthError(DomainError):
    """Missing or wrong signature, unknown AK, bad or expired token, clock skew."""


class ProjectMismatch(DomainError):
    def __init__(self) -> None:
        super().__init__("The credential does not belong to the project in the path.")


class PermissionDenied(DomainError):
    """The caller's policy does not allow the action (domain/policies.py)."""

    def __init__(self, action: str, why: str = "") -> None:
        super().__init__(f"Policy doesn't allow {action} to be performed.{why}")
        self.action = action


class StoreFailure(DomainError):
    """The store failed in the middle of an operation; nothing was changed."""


class BatchDeleteFailed(StoreFailure):
    def __init__(self) -> None:
        super().__init__("Failed to delete jobs in batches.")


class StoreUnavailable(DomainError):
    def __init__(self, retry_after: int = 5) -> None:
        super().__init__("The job store is unavailable; retry later.")
        self.retry_after = retry_after


class HistoryNotFound(DomainError):
    """No Spark history of that application on that cluster here (answered 404)."""

    def __init__(self, cluster_id: str, app_id: str) -> None:
        super().__init__(f"No Spark history of application {app_id} on cluster {cluster_id}.")


class HistoryNotReady(DomainError):
    """The cluster's Spark History Server has not loaded the application yet."""

    def __init__(self, app_id: str, retry_after: int = 5) -> None:
        super().__init__(
            f"The Spark history server has not loaded application {app_id} yet; retry later."
        )
        self.retry_after = retry_after
