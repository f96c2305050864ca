"""The store: SQLAlchemy 2 models, repository, Alembic migrations and backups.

SQLite by default (``sqlite:///./trdnav.db``), PostgreSQL by URL (``TRDNAV_DATABASE_URL``).
Tables are
created only by the migrations (:func:`trdnav.storage.migrations.upgrade`).
"""
