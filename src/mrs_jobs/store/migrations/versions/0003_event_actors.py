"""who caused each state change: job_events.actor, jobs.kill_requested_by

Revision ID: 0003
Revises: 0002

A job's history (``GET .../job-executions/{id}/events``) says who caused each change: the
request that submitted or killed it, the supervisor that ran it, the service's shutdown. A kill
is asked in one transaction and done by the supervisor in another, so the job keeps who asked.
Both columns are nullable: rows written before this revision have no actor.
"""

from alembic import op
import sqlalchemy as sa


revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("job_events", sa.Column("actor", sa.String(length=160), nullable=True))
    op.add_column("jobs", sa.Column("kill_requested_by", sa.String(length=160), nullable=True))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite 3.35+): a batch copy of ``jobs`` would drop its triggers.
    op.drop_column("jobs", "kill_requested_by")
    op.drop_column("job_events", "actor")
