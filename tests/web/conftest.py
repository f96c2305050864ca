"""The web app in process over a real, migrated database — SQLite and PostgreSQL (db_url).

Named users: ``admin``, ``clinician`` and ``reader`` (read_only), each with password ``PASSWORD``.
``signed_in(client, "clinician")`` signs a client in and returns its CSRF token.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from trdnav.cli_web import create_user
from trdnav.history_files import load_history
from trdnav.knowledge.load import Knowledge
from trdnav.storage import records
from trdnav.storage.engine import make_engine, make_sessionmaker
from trdnav.web.app import create_app
from trdnav.web.settings import WebSettings

TODAY = date(2024, 6, 1)
PASSWORD = "correct horse battery staple"
USERS = {"admin": "admin", "clinician": "clinician", "reader": "read_only"}
EXAMPLES = Path(__file__).parents[2] / "examples"


def example(name: str) -> Path:
    return next(EXAMPLES.glob(f"{name}*.yaml"))


def store_examples(url: str, kb: Knowledge, *names: str) -> list[str]:
    """Store example histories (e.g. ``"10"``) and their summaries; returns their patient ids."""
    engine = make_engine(url)
    ids = []
    try:
        with make_sessionmaker(engine)() as session:
            for name in names:
                history = load_history(example(name), kb, TODAY)
                ids.append(records.save(session, history, kb, TODAY, "fixture"))
    finally:
        engine.dispose()
    return ids


def make_settings(url: str, **overrides: object) -> WebSettings:
    values: dict[str, object] = {
        "database_url": url,
        "dev_mode": True,
        "today": TODAY,
        "secret_key": "test-secret-" + "x" * 40,
    }
    values.update(overrides)
    return WebSettings.model_validate(values)


@pytest.fixture
def app(db_url: str, kb: Knowledge) -> Iterator[FastAPI]:
    for name, role in USERS.items():
        create_user(db_url, name, role, PASSWORD)
    application = create_app(make_settings(db_url), kb)
    yield application
    application.state.engine.dispose()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver", follow_redirects=False) as c:
        yield c


def signin_token(client: TestClient) -> str:
    """Open the sign-in page (which sets its cookie) and return the form's CSRF token."""
    page = client.get("/signin")
    assert page.status_code == 200
    marker = 'name="csrf_token" value="'
    start = page.text.index(marker) + len(marker)
    return page.text[start : page.text.index('"', start)]


def signed_in(client: TestClient, username: str) -> str:
    """Sign ``client`` in as ``username``; return the session's CSRF token."""
    form = {"username": username, "password": PASSWORD, "csrf_token": signin_token(client)}
    response = client.post("/signin", data=form)
    assert response.status_code == 303, response.text
    page = client.get("/patients")
    assert page.status_code == 200
    marker = 'data-csrf="'
    start = page.text.index(marker) + len(marker)
    return page.text[start : page.text.index('"', start)]
