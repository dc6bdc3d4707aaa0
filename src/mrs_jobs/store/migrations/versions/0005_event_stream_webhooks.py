"""the event stream and webhooks: job_events cursor columns, event_cursors, webhooks, outbox

Revision ID: 0005
Revises: 0004

- ``job_events`` gains ``project_id``, ``cluster_id``, ``seq`` (a per-project cursor), ``result``
  (of a change to FINISHED: succeeded or failed) and the
  unique index ``ix_job_events_feed (project_id, seq)``: the project's event stream reads it in
  cursor order. Existing rows are filled in from their job; their ``seq`` is their ``id`` (ids
  only grow, so the order is kept), and ``event_cursors`` starts each project at its largest.
- ``event_cursors``: the last seq of each project, bumped by every transaction that records
  events (which so commit in cursor order).
- ``webhooks``, ``webhook_deliveries`` (the outbox) and ``webhook_attempts`` (the delivery log).

Plain ADD COLUMN / CREATE INDEX on ``job_events`` (no batch copy).
"""

from alembic import op
import sqlalchemy as sa


revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("job_events", sa.Column("project_id", sa.String(64), nullable=True))
    op.add_column("job_events", sa.Column("cluster_id", sa.String(64), nullable=True))
    op.add_column("job_events", sa.Column("seq", sa.BigInteger(), nullable=True))
    op.add_column("job_events", sa.Column("result", sa.String(16), nullable=True))
    op.execute(
        "UPDATE job_events SET "
        "project_id = (SELECT jobs.project_id FROM jobs WHERE jobs.id = job_events.job_id), "
        "cluster_id = (SELECT jobs.cluster_id FROM jobs WHERE jobs.id = job_events.job_id), "
        "seq = id"
    )
    op.execute("UPDATE job_events SET seq = NULL WHERE project_id IS NULL")
    op.execute(
        "UPDATE job_events SET "
        "result = (SELECT jobs.result FROM jobs WHERE jobs.id = job_events.job_id) "
        "WHERE to_state = 'FINISHED'"
    )
    op.create_index("ix_job_events_feed", "job_events", ["project_id", "seq"], unique=True)
    op.create_table(
        "event_cursors",
        sa.Column("project_id", sa.String(64), primary_key=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
    )
    op.execute(
        "INSERT INTO event_cursors (project_id, seq) SELECT project_id, MAX(seq) "
        "FROM job_events WHERE project_id IS NOT NULL GROUP BY project_id"
    )
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("cluster_id", sa.String(64), nullable=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("events", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("over_duration_s", sa.Integer(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("description", sa.String(200), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_webhooks_project_id", "webhooks", ["project_id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("msg_id", sa.String(80), nullable=False),
        sa.Column("webhook_id", sa.String(36), nullable=False),
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("job_id", sa.String(36), nullable=False),
        sa.Column("event_type", sa.String(32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_at_ms", sa.BigInteger(), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("finished_ms", sa.BigInteger(), nullable=True),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.UniqueConstraint("msg_id", name="uq_webhook_deliveries_msg_id"),
    )
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries", ["state", "next_at_ms"])
    op.create_index(
        "ix_webhook_deliveries_order", "webhook_deliveries", ["webhook_id", "job_id", "id"]
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("at_ms", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
    )
    op.create_index("ix_webhook_attempts_delivery_id", "webhook_attempts", ["delivery_id"])


def downgrade() -> None:
    op.drop_table("webhook_attempts")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhooks")
    op.drop_table("event_cursors")
    op.drop_index("ix_job_events_feed", table_name="job_events")
    op.drop_column("job_events", "result")
    op.drop_column("job_events", "seq")
    op.drop_column("job_events", "cluster_id")
    op.drop_column("job_events", "project_id")
