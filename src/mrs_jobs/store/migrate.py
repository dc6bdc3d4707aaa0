"""Run the Alembic chain programmatically (no alembic.ini needed by users)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

__all__ = ["alembic_config", "upgrade_head"]

_MIGRATIONS = Path(__file__).parent / "migrations"
# PostgreSQL advisory-lock key of the schema upgrade ("mrsjobs" in ASCII): instances starting
# together on an old schema take turns; the later ones then find it at head and do nothing.
_UPGRADE_LOCK = 0x6D72736A6F6273


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


def upgrade_head(engine: Engine) -> None:
    cfg = alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_UPGRADE_LOCK})")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
