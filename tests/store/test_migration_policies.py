"""Migration 0006: credentials that existed before policies keep full access."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from mrs_jobs.store.migrate import alembic_config


def test_existing_credentials_get_full_access_and_audit_rows_no_decision(store) -> None:
    cfg = alembic_config()
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0005")
    with store.engine.begin() as conn:
        assert "policy" not in {
            c for c in conn.execute(text("SELECT * FROM credentials LIMIT 0")).keys()
        }
        conn.execute(text("INSERT INTO projects (id, name, created_ms) VALUES ('p1', 'p', 1)"))
        conn.execute(
            text(
                "INSERT INTO credentials (id, project_id, kind, user_name, access_key, "
                "secret_key, disabled, created_ms) VALUES "
                "('c1', 'p1', 'aksk', 'old', 'AK1', 'sealed', false, 1)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO audit (at_ms, action, project_id, detail, outcome) "
                "VALUES (1, 'submit', 'p1', '{}', 'accepted')"
            )
        )
    store.migrate()
    with store.read() as conn:
        assert conn.execute(text("SELECT policy FROM credentials")).scalar_one() == (
            "MRS FullAccess"
        )
        row = conn.execute(text("SELECT permission, decision FROM audit")).one()
        assert tuple(row) == (None, None)
