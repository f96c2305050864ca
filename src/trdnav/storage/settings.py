"""Where the database is: ``TRDNAV_DATABASE_URL``, default a SQLite file in the current folder."""

from __future__ import annotations

import os

DEFAULT_DATABASE_URL = "sqlite:///./trdnav.db"
ENV_VAR = "TRDNAV_DATABASE_URL"


def database_url() -> str:
    """The configured URL; ``postgresql://`` URLs are mapped to the psycopg (v3) driver."""
    url = os.environ.get(ENV_VAR) or DEFAULT_DATABASE_URL
    return normalise_url(url)


def normalise_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url
