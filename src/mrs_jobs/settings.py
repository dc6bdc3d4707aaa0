"""Service settings, read from ``MRS_JOBS_*`` environment variables.

Settings are built by :func:`get_settings` (or directly in tests) and passed down explicitly;
nothing reads the environment at import time.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings", "installation_id"]


def _default_data_dir() -> Path:
    return Path.home() / ".mrs-jobs"


class Settings(BaseSettings):
    """Every knob of the service, with the embedded defaults a fresh machine needs."""

    model_config = SettingsConfigDict(env_prefix="MRS_JOBS_", extra="ignore")

    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Where the SQLite store, job working directories and bootstrap.json live.",
    )
    host: str = Field("127.0.0.1", description="Address the HTTP API listens on.")
    port: int = Field(8080, description="Port the HTTP API listens on (0 picks a free one).")
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the store; default sqlite:///<data_dir>/mrs-jobs.db. "
        "Use postgresql+psycopg://... for several instances.",
    )
    public_endpoint: str | None = Field(
        None, description="Endpoint printed in bootstrap.json; default http://host:port."
    )
    run_supervisor: bool = Field(True, description="Run the job supervisor inside `serve`.")
    poll_interval: float = Field(0.25, description="Seconds between supervisor passes.")
    kill_grace_seconds: float = Field(
        10.0, description="Seconds between SIGTERM and SIGKILL when a job is killed."
    )
    clock_skew_seconds: int = Field(900, description="Allowed X-Sdk-Date skew for AK/SK auth.")
    max_body_bytes: int = Field(1024 * 1024, description="Largest accepted request body.")
    sql_result_row_cap: int = Field(1000, description="Rows kept per SQL statement result.")
    default_max_running: int = Field(10, description="Running-job slots of a new cluster.")
    default_max_queued: int = Field(1000, description="Queue depth of a new cluster.")
    local_parallelism: int = Field(2, description="N in local[N] for the local cluster.")
    java_home: str | None = Field(None, description="JAVA_HOME for engines; default: found.")
    spark_home: str | None = Field(None, description="SPARK_HOME; default: the pyspark package.")
    pyspark_python: str | None = Field(None, description="Python for PySpark jobs.")
    flink_home: str | None = Field(
        None,
        description="FLINK_HOME; default: the one `mrs-jobs engines install flink` put in "
        "<data_dir>/engines, or $FLINK_HOME.",
    )
    engine_idle_seconds: float = Field(
        600.0,
        description="Stop a cluster's long-lived engine service (the Spark SQL server) after "
        "this many seconds without a live job that needs it.",
    )
    kill_jobs_on_shutdown: bool = Field(
        False,
        description="On SIGTERM, kill this supervisor's running jobs cleanly (KILLED) instead "
        "of leaving them running to be re-attached by the next start.",
    )
    heartbeat_seconds: float = Field(5.0, description="Supervisor heartbeat period.")
    log_level: str = Field("INFO", description="Service log level.")
    log_format: Literal["text", "json"] = Field(
        "text",
        description="Log lines as text, or one JSON object per line (time, level, logger, "
        "message, event, request_id, project_id, job_id, and the message's key=value fields).",
    )
    access_log: bool = Field(False, description="Log one http.request line per API request.")

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'mrs-jobs.db'}"

    @property
    def jobs_dir(self) -> Path:
        return self.data_dir / "jobs"


def get_settings(**overrides: object) -> Settings:
    """Build settings from the environment, with explicit overrides winning."""
    return Settings(**overrides)  # type: ignore[arg-type]


def installation_id(settings: Settings) -> str:
    """Stable per installation (store + data dir): marks every engine process we start."""
    key = f"{settings.effective_database_url}|{settings.data_dir.resolve()}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]
