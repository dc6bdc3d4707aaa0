"""What every admin command shares: the store it administers, error output, time format.

Imports are lazy so ``mrs-jobs --help`` stays instant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from mrs_jobs.secretbox import SecretBox
    from mrs_jobs.settings import Settings
    from mrs_jobs.store import Store

__all__ = ["admin_store", "admin_store_and_key", "fail", "when"]


def _settings() -> Settings:
    from mrs_jobs.datadir import secure_data_dir
    from mrs_jobs.settings import get_settings

    settings = get_settings()
    secure_data_dir(settings)  # the key, a new SQLite store: private from the first byte
    return settings


def _migrated(settings: Settings) -> Store:
    from mrs_jobs.store import Store

    store = Store(settings.effective_database_url)
    store.migrate()
    return store


def admin_store() -> Store:
    """The migrated store of this installation."""
    return _migrated(_settings())


def admin_store_and_key() -> tuple[Store, SecretBox]:
    """The store and the SK-sealing key (AK/SK commands only: the others work without it)."""
    from mrs_jobs.secretbox import load_secret_box

    settings = _settings()
    box = load_secret_box(settings)
    return _migrated(settings), box


def fail(exc: Exception) -> None:
    """Print a domain or key error as one line and exit 2; anything else is a bug: re-raise."""
    from mrs_jobs.errors import DomainError
    from mrs_jobs.secretbox import SecretKeyError

    if isinstance(exc, DomainError):
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(2)
    if isinstance(exc, SecretKeyError):
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)
    raise exc


def when(ms: int | None) -> str:
    from datetime import UTC, datetime

    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
