"""list indexes led by the visibility scope, partial ix_jobs_deleted, job_counts

Revision ID: 0002
Revises: 0001

- ``ix_jobs_deleted`` becomes partial (``deleted_ms > 0``): without statistics SQLite chose
  the full one for every ``deleted_ms = 0`` and walked all visible jobs.
- ``ix_jobs_scope_submitted`` is replaced by four indexes led by (project_id, cluster_id,
  deleted_ms): one per list filter (none, state, type, name), each ending in the sort order.
- ``job_counts`` holds the number of visible jobs per (cluster, project, state, type). Triggers
  on ``jobs`` keep it exact inside the writing transaction, whoever the writer is (the
  services, the supervisor, a bulk load, an operator's SQL); existing jobs are back-filled.
  The triggers are created before the back-fill, so on PostgreSQL their lock on ``jobs`` keeps
  writers out until both are committed.
"""

from alembic import op
import sqlalchemy as sa


revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_KEY = "cluster_id, project_id, state, job_type"

_VIS = {
    "ix_jobs_vis_submitted": ["project_id", "cluster_id", "deleted_ms", "submitted_ms", "id"],
    "ix_jobs_vis_state": ["project_id", "cluster_id", "deleted_ms", "state", "submitted_ms", "id"],
    "ix_jobs_vis_type": [
        "project_id",
        "cluster_id",
        "deleted_ms",
        "job_type",
        "submitted_ms",
        "id",
    ],
    "ix_jobs_vis_name": [
        "project_id",
        "cluster_id",
        "deleted_ms",
        "job_name",
        "submitted_ms",
        "id",
    ],
}

# SQLite: row triggers (cheap, in C). A row counts while deleted_ms = 0.
_SQLITE_TRIGGERS = [
    f"""
    CREATE TRIGGER jobs_counts_insert AFTER INSERT ON jobs WHEN NEW.deleted_ms = 0
    BEGIN
      INSERT INTO job_counts ({_KEY}, n)
      VALUES (NEW.cluster_id, NEW.project_id, NEW.state, NEW.job_type, 1)
      ON CONFLICT ({_KEY}) DO UPDATE SET n = n + 1;
    END
    """,
    """
    CREATE TRIGGER jobs_counts_delete AFTER DELETE ON jobs WHEN OLD.deleted_ms = 0
    BEGIN
      UPDATE job_counts SET n = n - 1
      WHERE cluster_id = OLD.cluster_id AND project_id = OLD.project_id
        AND state = OLD.state AND job_type = OLD.job_type;
    END
    """,
    f"""
    CREATE TRIGGER jobs_counts_update
    AFTER UPDATE OF project_id, cluster_id, state, job_type, deleted_ms ON jobs
    WHEN (OLD.deleted_ms = 0 OR NEW.deleted_ms = 0) AND NOT (
      OLD.deleted_ms = 0 AND NEW.deleted_ms = 0 AND OLD.state = NEW.state
      AND OLD.job_type = NEW.job_type AND OLD.project_id = NEW.project_id
      AND OLD.cluster_id = NEW.cluster_id)
    BEGIN
      UPDATE job_counts SET n = n - 1
      WHERE OLD.deleted_ms = 0 AND cluster_id = OLD.cluster_id
        AND project_id = OLD.project_id AND state = OLD.state AND job_type = OLD.job_type;
      INSERT INTO job_counts ({_KEY}, n)
      SELECT NEW.cluster_id, NEW.project_id, NEW.state, NEW.job_type, 1 WHERE NEW.deleted_ms = 0
      ON CONFLICT ({_KEY}) DO UPDATE SET n = n + 1;
    END
    """,
]

# PostgreSQL: one statement-level trigger per operation over its transition tables, so a
# 1,000-row batch delete or a COPY costs one grouped upsert. Counter rows are upserted in key
# order, so two writers touching the same rows cannot deadlock within one statement.
_PG_FUNCTION = f"""
CREATE FUNCTION jobs_counts_delta() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO job_counts AS c ({_KEY}, n)
    SELECT {_KEY}, count(*) FROM new_rows WHERE deleted_ms = 0
    GROUP BY {_KEY} ORDER BY {_KEY}
    ON CONFLICT ({_KEY}) DO UPDATE SET n = c.n + EXCLUDED.n;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO job_counts AS c ({_KEY}, n)
    SELECT {_KEY}, -count(*) FROM old_rows WHERE deleted_ms = 0
    GROUP BY {_KEY} ORDER BY {_KEY}
    ON CONFLICT ({_KEY}) DO UPDATE SET n = c.n + EXCLUDED.n;
  ELSE
    INSERT INTO job_counts AS c ({_KEY}, n)
    SELECT {_KEY}, sum(k) FROM (
      SELECT {_KEY}, -1 AS k FROM old_rows WHERE deleted_ms = 0
      UNION ALL
      SELECT {_KEY}, 1 AS k FROM new_rows WHERE deleted_ms = 0
    ) d
    GROUP BY {_KEY} HAVING sum(k) <> 0 ORDER BY {_KEY}
    ON CONFLICT ({_KEY}) DO UPDATE SET n = c.n + EXCLUDED.n;
  END IF;
  RETURN NULL;
END
$body$
"""

_PG_TRIGGERS = [
    "CREATE TRIGGER jobs_counts_insert AFTER INSERT ON jobs REFERENCING NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION jobs_counts_delta()",
    "CREATE TRIGGER jobs_counts_delete AFTER DELETE ON jobs REFERENCING OLD TABLE AS old_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION jobs_counts_delta()",
    "CREATE TRIGGER jobs_counts_update AFTER UPDATE ON jobs "
    "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows "
    "FOR EACH STATEMENT EXECUTE FUNCTION jobs_counts_delta()",
]


def upgrade() -> None:
    op.drop_index("ix_jobs_deleted", table_name="jobs")
    op.create_index(
        "ix_jobs_deleted",
        "jobs",
        ["deleted_ms"],
        sqlite_where=sa.text("deleted_ms > 0"),
        postgresql_where=sa.text("deleted_ms > 0"),
    )
    op.drop_index("ix_jobs_scope_submitted", table_name="jobs")
    for name, columns in _VIS.items():
        op.create_index(name, "jobs", columns)

    op.create_table(
        "job_counts",
        sa.Column("cluster_id", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("job_type", sa.String(length=16), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "cluster_id", "project_id", "state", "job_type", name=op.f("pk_job_counts")
        ),
    )
    if op.get_bind().dialect.name == "sqlite":
        for ddl in _SQLITE_TRIGGERS:
            op.execute(ddl)
    else:
        op.execute(_PG_FUNCTION)
        for ddl in _PG_TRIGGERS:
            op.execute(ddl)
    op.execute(
        f"INSERT INTO job_counts ({_KEY}, n) SELECT {_KEY}, count(*) FROM jobs "
        f"WHERE deleted_ms = 0 GROUP BY {_KEY}"
    )


def downgrade() -> None:
    for name in ("jobs_counts_insert", "jobs_counts_delete", "jobs_counts_update"):
        if op.get_bind().dialect.name == "sqlite":
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON jobs")
    if op.get_bind().dialect.name != "sqlite":
        op.execute("DROP FUNCTION IF EXISTS jobs_counts_delta()")
    op.drop_table("job_counts")
    for name in _VIS:
        op.drop_index(name, table_name="jobs")
    op.create_index(
        "ix_jobs_scope_submitted", "jobs", ["project_id", "cluster_id", "submitted_ms", "id"]
    )
    op.drop_index("ix_jobs_deleted", table_name="jobs")
    op.create_index("ix_jobs_deleted", "jobs", ["deleted_ms"])
