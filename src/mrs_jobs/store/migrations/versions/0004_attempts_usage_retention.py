"""retries, what a job cost, retention: jobs.attempt, retry_at_ms, cpu_seconds, peak_memory_mb

Revision ID: 0004
Revises: 0003

- ``attempt`` (1-based) and ``retry_at_ms``: a failed attempt with retries left goes back to
  the queue (``mrs.job.retries``); it is not claimed before ``retry_at_ms`` (the backoff).
- ``cpu_seconds`` and ``peak_memory_mb``: what the job's processes (or its application on the
  cluster) used; NULL where unknown.
- ``ix_jobs_ended`` (cluster, finished_ms): retention finds a cluster's oldest ended jobs in
  order without reading its live or recent ones (live jobs have finished_ms 0).

Plain ADD COLUMN / CREATE INDEX: a batch copy of ``jobs`` would drop its triggers (0002).
"""

from alembic import op
import sqlalchemy as sa


revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("jobs", sa.Column("attempt", sa.Integer(), nullable=False, server_default="1"))
    op.add_column(
        "jobs", sa.Column("retry_at_ms", sa.BigInteger(), nullable=False, server_default="0")
    )
    op.add_column("jobs", sa.Column("cpu_seconds", sa.Float(), nullable=True))
    op.add_column("jobs", sa.Column("peak_memory_mb", sa.Integer(), nullable=True))
    op.create_index("ix_jobs_ended", "jobs", ["cluster_id", "finished_ms"])


def downgrade() -> None:
    op.drop_index("ix_jobs_ended", table_name="jobs")
    op.drop_column("jobs", "peak_memory_mb")
    op.drop_column("jobs", "cpu_seconds")
    op.drop_column("jobs", "retry_at_ms")
    op.drop_column("jobs", "attempt")
