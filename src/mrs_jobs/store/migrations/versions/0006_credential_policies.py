"""who may do what: credentials.policy; audit.permission and audit.decision

Revision ID: 0006
Revises: 0005

- ``credentials.policy``: the credential's policy, a system policy's name or an IAM-shaped
  JSON document (domain/policies.py). Every existing credential gets ``MRS FullAccess``, the
  access it had before policies existed.
- ``audit.permission`` and ``audit.decision``: the action a request was checked for and the
  answer (allow | deny); NULL on rows written before, or by the operator's own commands.

Plain ADD COLUMN with a server default: no table copy on SQLite, no rewrite on PostgreSQL 11+.
"""

from alembic import op
import sqlalchemy as sa


revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "credentials",
        sa.Column("policy", sa.Text(), nullable=False, server_default="MRS FullAccess"),
    )
    op.add_column("audit", sa.Column("permission", sa.String(64), nullable=True))
    op.add_column("audit", sa.Column("decision", sa.String(8), nullable=True))


def downgrade() -> None:
    op.drop_column("audit", "decision")
    op.drop_column("audit", "permission")
    op.drop_column("credentials", "policy")
