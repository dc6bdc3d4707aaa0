"""Table definitions (SQLAlchemy Core). The Alembic chain must produce exactly these."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

__all__ = [
    "audit",
    "clusters",
    "credentials",
    "event_cursors",
    "job_counts",
    "job_events",
    "jobs",
    "metadata",
    "projects",
    "sql_results",
    "submit_keys",
    "webhook_attempts",
    "webhook_deliveries",
    "webhooks",
    "supervisors",
]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

projects = Table(
    "projects",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)

credentials = Table(
    "credentials",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("project_id", String(64), ForeignKey("projects.id"), nullable=False),
    Column("kind", String(8), nullable=False),  # aksk | token
    Column("user_name", String(64), nullable=False),
    Column("access_key", String(64), nullable=True, unique=True),
    Column("secret_key", String(128), nullable=True),
    Column("token_hash", String(64), nullable=True, unique=True),
    Column("expires_ms", BigInteger, nullable=True),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_ms", BigInteger, nullable=False),
    # A system policy's name or an IAM-shaped JSON document (domain/policies.py).
    Column("policy", Text, nullable=False, server_default="MRS FullAccess"),
)

clusters = Table(
    "clusters",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("project_id", String(64), ForeignKey("projects.id"), nullable=False, index=True),
    Column("name", String(128), nullable=False),
    Column("kind", String(32), nullable=False),  # local (more kinds in later releases)
    Column("components", Text, nullable=False),  # JSON list, e.g. ["Spark", "Hive"]
    Column("config", Text, nullable=False),  # JSON object: spark_master, input_roots, ...
    Column("max_running", Integer, nullable=False),
    Column("max_queued", Integer, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("project_id", String(64), nullable=False),
    Column("cluster_id", String(64), nullable=False),
    Column("job_name", String(64), nullable=False),
    Column("job_type", String(16), nullable=False),
    Column("user_name", String(64), nullable=False),
    Column("queue", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("result", String(16), nullable=False),
    Column("progress", Float, nullable=False, default=0.0),
    Column("submitted_ms", BigInteger, nullable=False),
    Column("started_ms", BigInteger, nullable=False, default=0),
    Column("finished_ms", BigInteger, nullable=False, default=0),
    Column("arguments", Text, nullable=False),  # JSON list of strings
    Column("properties", Text, nullable=False),  # JSON object (secrets kept for the run)
    Column("launcher_id", String(128), nullable=False, default=""),
    Column("app_id", String(128), nullable=False, default=""),
    Column("tracking_url", String(512), nullable=False, default=""),
    Column("reason", Text, nullable=False, default=""),
    # deleted_ms > 0: batch-deleted; invisible to every API, purged once the process is dead.
    Column("deleted_ms", BigInteger, nullable=False, default=0),
    Column("kill_requested_ms", BigInteger, nullable=False, default=0),
    # who asked for the kill ("request <id> by <user>", "service shutdown"): its history says so
    Column("kill_requested_by", String(160), nullable=True),
    Column("kill_sent_ms", BigInteger, nullable=False, default=0),
    Column("owner", String(64), nullable=True),  # supervisor id that launched it
    Column("pid", Integer, nullable=True),
    Column("pid_start", BigInteger, nullable=True),
    Column("workdir", String(1024), nullable=True),
    # epoch ms after which a launched job is stopped and FAILED (property mrs.job.timeout); 0 = none
    Column("deadline_ms", BigInteger, nullable=False, default=0),
    # 1-based attempt; a retried job is queued again and not claimed before retry_at_ms
    Column("attempt", Integer, nullable=False, server_default="1"),
    Column("retry_at_ms", BigInteger, nullable=False, server_default="0"),
    # what the job used (its process tree, or its application's report); NULL where unknown
    Column("cpu_seconds", Float, nullable=True),
    Column("peak_memory_mb", Integer, nullable=True),
    # The list indexes are led by the visibility scope (project, cluster, deleted_ms = 0), so a
    # filtered COUNT is answered from the index alone and a page comes in sort order. They are
    # the only indexes with project_id first, so no query without it can choose them.
    Index("ix_jobs_vis_submitted", "project_id", "cluster_id", "deleted_ms", "submitted_ms", "id"),
    Index(
        "ix_jobs_vis_state", "project_id", "cluster_id", "deleted_ms", "state", "submitted_ms", "id"
    ),
    Index(
        "ix_jobs_vis_type",
        "project_id",
        "cluster_id",
        "deleted_ms",
        "job_type",
        "submitted_ms",
        "id",
    ),
    Index(
        "ix_jobs_vis_name",
        "project_id",
        "cluster_id",
        "deleted_ms",
        "job_name",
        "submitted_ms",
        "id",
    ),
    Index("ix_jobs_state_cluster", "state", "cluster_id"),
    # Retention: a cluster's ended jobs, oldest first (live jobs have finished_ms 0).
    Index("ix_jobs_ended", "cluster_id", "finished_ms"),
    # Partial: only jobs awaiting purge. SQLite (no statistics) would otherwise take a full
    # index on deleted_ms for every "deleted_ms = 0" and walk all visible jobs.
    Index(
        "ix_jobs_deleted",
        "deleted_ms",
        sqlite_where=text("deleted_ms > 0"),
        postgresql_where=text("deleted_ms > 0"),
    ),
)

job_counts = Table(
    "job_counts",
    metadata,
    # Visible (deleted_ms = 0) jobs per cluster, state and type, kept exact by triggers on
    # ``jobs`` (migration 0002) in the writer's own transaction: an unfiltered, state or type
    # list answers total_record with a SUM over a few rows instead of counting jobs.
    Column("cluster_id", String(64), primary_key=True),
    Column("project_id", String(64), primary_key=True),
    Column("state", String(16), primary_key=True),
    Column("job_type", String(16), primary_key=True),
    Column("n", BigInteger, nullable=False),
)

job_events = Table(
    "job_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", String(36), nullable=False, index=True),
    Column("at_ms", BigInteger, nullable=False),
    Column("from_state", String(16), nullable=True),
    Column("to_state", String(16), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    # who caused it: "request <id> by <user>", "supervisor <id>", "service shutdown"...
    Column("actor", String(160), nullable=True),
    # The project's event stream (store/events.py): where the job was and the project-wide
    # cursor, taken from event_cursors in the event's own transaction. NULL only on rows
    # written before migration 0005 whose job was already gone.
    Column("project_id", String(64), nullable=True),
    Column("cluster_id", String(64), nullable=True),
    Column("seq", BigInteger, nullable=True),
    Column("result", String(16), nullable=True),  # of a change to FINISHED: SUCCEEDED|FAILED
    Index("ix_job_events_feed", "project_id", "seq", unique=True),
)

#: The last ``job_events.seq`` of each project: one row, bumped (and so locked until commit)
#: by each transaction that records events, so a project's events commit in cursor order.
event_cursors = Table(
    "event_cursors",
    metadata,
    Column("project_id", String(64), primary_key=True),
    Column("seq", BigInteger, nullable=False),
)

#: Webhook subscriptions of a project (or of one of its clusters).
webhooks = Table(
    "webhooks",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("project_id", String(64), nullable=False, index=True),
    Column("cluster_id", String(64), nullable=True),  # NULL: every cluster of the project
    Column("url", Text, nullable=False),
    Column("events", Text, nullable=False),  # JSON list of event types
    Column("secret", Text, nullable=False),  # the signing secret, sealed (secretbox)
    Column("over_duration_s", Integer, nullable=True),  # job.over_duration after this long
    Column("enabled", Boolean, nullable=False, default=True),
    Column("description", String(200), nullable=False, default=""),
    Column("created_ms", BigInteger, nullable=False),
)

#: The outbox: one row per (event, subscription), written with the event, delivered by the
#: supervisor at least once (``msg_id`` is the ``webhook-id`` every attempt carries).
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("msg_id", String(80), nullable=False, unique=True),
    Column("webhook_id", String(36), nullable=False),
    Column("project_id", String(64), nullable=False),
    Column("job_id", String(36), nullable=False),
    Column("event_type", String(32), nullable=False),
    Column("seq", BigInteger, nullable=True),  # the event's cursor (none for over_duration)
    Column("payload", Text, nullable=False),  # the JSON body, as sent
    Column("state", String(12), nullable=False),  # pending | delivered | dead
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_at_ms", BigInteger, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("finished_ms", BigInteger, nullable=True),  # delivered or dead-lettered at
    Column("last_status", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Index("ix_webhook_deliveries_due", "state", "next_at_ms"),
    Index("ix_webhook_deliveries_order", "webhook_id", "job_id", "id"),
)

#: Each attempt of a delivery: when, the answer's status (NULL: none), what went wrong.
webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("delivery_id", Integer, nullable=False, index=True),
    Column("at_ms", BigInteger, nullable=False),
    Column("status", Integer, nullable=True),
    Column("error", Text, nullable=True),
    Column("duration_ms", Integer, nullable=False),
)

sql_results = Table(
    "sql_results",
    metadata,
    Column("job_id", String(36), primary_key=True),
    Column("statement", Integer, primary_key=True),
    Column("rows", Text, nullable=False),  # JSON list of {column: string}
)

submit_keys = Table(
    "submit_keys",
    metadata,
    # X-Idempotency-Key of a submit: a retry returns the first job; kept after the job is gone.
    Column("project_id", String(64), primary_key=True),
    Column("idem_key", String(128), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("job_id", String(36), nullable=False),
    Column("created_ms", BigInteger, nullable=False, index=True),
)

audit = Table(
    "audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at_ms", BigInteger, nullable=False, index=True),
    Column("action", String(32), nullable=False),
    Column("project_id", String(64), nullable=False),
    Column("cluster_id", String(64), nullable=True),
    Column("credential_id", String(36), nullable=True),
    Column("request_id", String(64), nullable=True),
    Column("detail", Text, nullable=False),  # JSON
    Column("outcome", String(32), nullable=False),
    Column("permission", String(64), nullable=True),  # the action checked (domain/policies.py)
    Column("decision", String(8), nullable=True),  # allow | deny
)

supervisors = Table(
    "supervisors",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_ms", BigInteger, nullable=False),
    Column("heartbeat_ms", BigInteger, nullable=False),
)
