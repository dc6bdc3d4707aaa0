"""Run the Alembic chain programmatically (no alembic.ini needed by users)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from mrs_jobs.store.db import dialect_of

__all__ = ["alembic_config", "upgrade_head"]

_MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


def upgrade_head(engine: Engine) -> None:
    cfg = alembic_config()
    with engine.begin() as conn:
        dialect_of(conn).lock_schema(conn)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
