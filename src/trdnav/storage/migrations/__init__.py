"""Alembic migrations, run programmatically: the only way tables are created."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from trdnav.storage.settings import database_url, normalise_url

HERE = Path(__file__).resolve().parent


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("sqlalchemy.url", (normalise_url(url) if url else database_url()))
    return config


def upgrade(url: str | None = None, revision: str = "head") -> None:
    """``alembic upgrade head`` against ``url`` (default the configured database)."""
    command.upgrade(alembic_config(url), revision)
