"""Service settings, read from ``MRS_JOBS_*`` environment variables.

Settings are built by :func:`get_settings` (or directly in tests) and passed down explicitly;
nothing reads the environment at import time.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, model_validator
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
    workers: int = Field(
        1,
        ge=1,
        description="API processes of `serve` (`--workers`): with more than 1, the first "
        "process binds, migrates, bootstraps and runs the one supervisor, and N spawned "
        "processes serve HTTP on its socket, each with its own rate limits, caches and "
        '/metrics (docs/deploy.md, "Several API processes"). 1 = one process.',
    )
    poll_interval: float = Field(0.25, description="Seconds between supervisor passes.")
    kill_grace_seconds: float = Field(
        10.0, description="Seconds between SIGTERM and SIGKILL when a job is killed."
    )
    clock_skew_seconds: int = Field(900, description="Allowed X-Sdk-Date skew for AK/SK auth.")
    max_body_bytes: int = Field(1024 * 1024, description="Largest accepted request body.")
    sql_result_row_cap: int = Field(
        1000, ge=1, description="Rows kept per SQL statement result (a failed one keeps its error)."
    )
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
    spark_history_idle_seconds: float = Field(
        300.0,
        description="Stop a cluster's Spark History Server (started when an ended local Spark "
        "job's tracking_url is opened) after this many seconds without such a request or a "
        "local Spark job ending.",
    )
    kill_jobs_on_shutdown: bool = Field(
        False,
        description="On SIGTERM, kill this supervisor's running jobs cleanly (KILLED) instead "
        "of leaving them running to be re-attached by the next start.",
    )
    request_head_timeout_seconds: float = Field(
        10.0, description="Close a connection whose request head has not arrived in time."
    )
    max_connections: int = Field(
        1000,
        ge=2,
        description="Connections served at once. When full, a new connection closes the oldest "
        "one still waiting for a request head (new or idle) instead of being refused; only when "
        "every connection is busy do new requests get 503 (docs/security.md).",
    )
    max_waiting_connections_per_address: int = Field(
        64,
        ge=0,
        description="Connections one client address may hold without a complete request head "
        "(new or idle keep-alive), loopback included; a new one past it closes that address's "
        "oldest. Busy connections (requests, event streams) are not counted. 0 = no cap.",
    )
    trusted_proxies: str = Field(
        "",
        description="Comma-separated addresses or networks of reverse proxies whose "
        "X-Forwarded-For / X-Forwarded-Proto are believed (the client address then comes from "
        "them, for rate limits and logs); they are also exempt from the per-address connection "
        "cap. Empty (default): no forwarded header is trusted, from anywhere.",
    )
    metrics_token: SecretStr | None = Field(
        None,
        description="When set, GET /metrics answers only with `Authorization: Bearer <token>` "
        "(Prometheus: `authorization: {credentials: ...}`); unset, it is open to whoever "
        "reaches the port (keep the port on loopback or behind a proxy; docs/OPERATIONS.md).",
    )
    heartbeat_seconds: float = Field(5.0, description="Supervisor heartbeat period.")
    credential_cache_seconds: float = Field(
        5.0,
        ge=0,
        description="How long a server keeps an opened AK/SK credential or a token's credential "
        "(saves a database read per request). A credential disabled, deleted, expired or given "
        "another policy elsewhere keeps its old state this long in each server; 0 = every "
        "request reads the store.",
    )
    lost_supervisor_seconds: float = Field(
        300.0,
        description="A supervisor on another host silent this long has its launched jobs "
        "failed (nothing here can watch them); on the same host they are adopted after three "
        "missed heartbeats. Long enough for a host restart or an upgrade.",
    )
    log_level: str = Field("INFO", description="Service log level.")
    log_format: Literal["text", "json"] = Field(
        "text",
        description="Log lines as text, or one JSON object per line (time, level, logger, "
        "message, event, request_id, project_id, job_id, and the message's key=value fields).",
    )
    access_log: bool | None = Field(
        None,
        description="Log one http.request line per API request (method, route template, "
        "status, duration_ms, request_id). Default: on with log_format json, off with text.",
    )
    job_user: str | None = Field(
        None,
        description="OS user (name or uid) engine processes run as; needs the service to run "
        "as root. Unset = jobs run as the service's own user (a root service logs a warning). "
        "A cluster's `run_as_user` config overrides it. The data directory must be "
        "traversable by that user.",
    )
    box_jobs: bool = Field(
        True,
        description="Start every local process of a job inside a bubblewrap box (its own "
        "view of the files, its own processes; docs/security.md). On by default where the host "
        "supports it; without it the service serves one project only unless "
        "allow_uncontained_jobs is set.",
    )
    bootstrap_output_roots: list[str] = Field(
        default_factory=list,
        description="Output roots (JSON list of absolute paths) of the cluster created on the "
        "first start: where its jobs may write besides their own directory. Later: "
        "`mrs-jobs admin update-cluster <id> --set output_roots=[...]`.",
    )
    allow_uncontained_jobs: bool = Field(
        False,
        description="Serve several projects even when jobs cannot be boxed (bwrap missing, "
        "user namespaces off, or box_jobs=false). Every job can then read the service's data "
        "directory, its keys and database, and every other job's files: only for tenants "
        "that trust each other.",
    )
    job_limit_address_space_mb: int | None = Field(
        None,
        description="RLIMIT_AS of every engine process in MiB (cluster: "
        "`limit_address_space_mb`). Unset = not limited; JVMs need several GiB of it.",
    )
    job_limit_cpu_seconds: int | None = Field(
        None,
        description="RLIMIT_CPU of every engine process in seconds (cluster: "
        "`limit_cpu_seconds`): SIGXCPU at the limit, SIGKILL 5 s later. Unset = not limited.",
    )
    job_limit_open_files: int | None = Field(
        None,
        description="RLIMIT_NOFILE of every engine process (cluster: `limit_open_files`). "
        "Unset = inherited from the service.",
    )
    job_limit_processes: int | None = Field(
        None,
        description="RLIMIT_NPROC (processes and threads of the job user, all its jobs "
        "together; not enforced for root) (cluster: `limit_processes`). Unset = inherited.",
    )
    rate_limit_per_second: float = Field(
        200.0,
        description="Authenticated API requests per second allowed per project (token bucket, "
        "per process); over it: 429 0202 with Retry-After. 0 disables.",
    )
    rate_limit_burst: int = Field(400, description="Burst size of the per-project rate limit.")
    auth_failure_per_second: float = Field(
        5.0,
        description="Failed authentications (401) per second allowed per client address before "
        "it is answered 429 without any check. 0 disables.",
    )
    auth_failure_burst: int = Field(
        50, description="Burst size of the failed-authentication limit per client address."
    )
    replay_protection: bool = Field(
        False,
        description="Refuse an exact re-send of a signed POST/PUT/PATCH/DELETE inside the "
        "X-Sdk-Date window (401 APIGW.0301). Off by default: X-Sdk-Date has one-second "
        "resolution, so identical requests signed in the same second look like replays. "
        "See docs/security.md.",
    )
    replay_cache_size: int = Field(
        100_000, description="Signatures remembered for replay protection (per process)."
    )
    secret_key: SecretStr | None = Field(
        None,
        description="Key sealing stored SKs (AES-256-GCM): base64 of 32 bytes. Wins over "
        "secret_key_file. Every instance on one database needs the same key.",
    )
    secret_key_file: Path | None = Field(
        None,
        description="File holding the SK-sealing key (base64 of 32 bytes, mode 0600); default "
        "<data_dir>/secret.key, created on first start.",
    )
    old_secret_key_files: str = Field(
        "",
        description="Comma-separated key files of earlier keys, so SKs sealed before a key "
        "rotation still open (until `mrs-jobs admin reencrypt-secrets` reseals them).",
    )
    retention_days: int = Field(
        30,
        ge=0,
        description="Days an ended job (and an ended SQL execution) is kept after it ended, "
        "unless its cluster's retention_days says otherwise; 0 keeps them forever.",
    )
    retention_max_jobs: int = Field(
        0,
        ge=0,
        description="Ended jobs a cluster keeps at most (its newest), unless its cluster's "
        "retention_max_jobs says otherwise; 0: no limit by count.",
    )
    audit_retention_days: int = Field(
        365, ge=0, description="Days an audit record is kept; 0 keeps them forever."
    )
    retention_interval_seconds: float = Field(
        60.0,
        gt=0,
        description="Seconds between the supervisor's retention checks (sooner while a "
        "backlog of expired jobs is being removed).",
    )

    webhook_allow_private: bool = Field(
        False,
        description="Let webhooks target loopback, private, link-local and reserved addresses "
        "(checked when a webhook is created and again before each attempt). Off: the service "
        "must not be a way into its own network.",
    )
    webhook_retry_base_seconds: float = Field(
        5.0,
        gt=0,
        description="First wait after a failed webhook attempt; each next one doubles (up to "
        "webhook_retry_max_seconds), with ±20 % jitter.",
    )
    webhook_retry_max_seconds: float = Field(
        3600.0, gt=0, description="Longest wait between two attempts of a webhook delivery."
    )
    webhook_max_age_hours: float = Field(
        24.0,
        gt=0,
        description="A webhook delivery not delivered this long after its event is "
        "dead-lettered (kept, listed by `admin list-deliveries --state dead`, not retried).",
    )
    webhook_timeout_seconds: float = Field(
        10.0, gt=0, description="Time a webhook receiver has to answer one attempt."
    )
    webhook_workers: int = Field(
        8, ge=1, description="Webhook attempts the supervisor has in flight at once."
    )
    webhook_retention_days: float = Field(
        7.0,
        gt=0,
        description="Days a delivered or dead-lettered webhook delivery (and its attempts) is "
        "kept after it finished.",
    )

    @model_validator(mode="after")
    def _access_log_default(self) -> Settings:
        """An access log by default where logs are read by machines (JSON), not in text."""
        if self.access_log is None:
            self.access_log = self.log_format == "json"
        return self

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'mrs-jobs.db'}"

    @property
    def jobs_dir(self) -> Path:
        return self.data_dir / "jobs"


def get_settings(**overrides: object) -> Settings:
    """Build settings from the environment, with explicit overrides winning. A value that
    breaks its rules exits with one line per setting (``MRS_JOBS_WORKERS: Input should be
    greater than or equal to 1 (got '0')``), not a traceback."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = [_setting_error(err) for err in exc.errors()]
        raise SystemExit("mrs-jobs: invalid settings:\n  " + "\n  ".join(lines)) from None


def installation_id(settings: Settings) -> str:
    """Stable per installation (store + data dir): marks every engine process we start."""
    key = f"{settings.effective_database_url}|{settings.data_dir.resolve()}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _setting_error(err: dict) -> str:
    """One line for a refused setting; the value is shown unless the setting is a secret."""
    name = str(err["loc"][0]) if err["loc"] else ""
    field = Settings.model_fields.get(name)
    secret = field is not None and "SecretStr" in str(field.annotation)
    got = "" if secret else f" (got {err.get('input')!r})"
    return f"MRS_JOBS_{name.upper() or 'SETTINGS'}: {err['msg']}{got}"
