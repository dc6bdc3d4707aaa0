"""Run the Alembic chain programmatically (no alembic.ini needed by users)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

if TYPE_CHECKING:
    from mrs_jobs.store.dialect import Dialect

__all__ = ["alembic_config", "upgrade_head"]

_MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_MIGRATIONS))
    return cfg


def upgrade_head(engine: Engine, dialect: Dialect) -> None:
    cfg = alembic_config()
    with engine.begin() as conn:
        dialect.lock_schema(conn)
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
