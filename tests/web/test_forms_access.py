"""Only writers may open or post the record forms, and every post needs the session's CSRF token."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from trdnav.knowledge.load import Knowledge

from .conftest import signed_in, store_examples
from .test_forms import stored_version

FORM_PAGES = [
    "/patients/new",
    "/patients/EX01/edit",
    "/patients/EX01/treatments/new",
    "/patients/EX01/treatments/new?type=ect",
    "/patients/EX01/treatments/0/edit",
    "/patients/EX01/measurements/new",
    "/patients/EX01/screens/new",
    "/patients/EX01/labs/new",
    "/patients/EX01/pgx/new",
    "/patients/EX01/medications/new",
]
POSTS = [
    "/patients/new",
    "/patients/EX01/edit",
    "/patients/EX01/treatments/new",
    "/patients/EX01/treatments/0/edit",
    "/patients/EX01/treatments/0/delete",
    "/patients/EX01/measurements/new",
    "/patients/EX01/screens/new",
    "/patients/EX01/labs/new",
    "/patients/EX01/pgx/new",
    "/patients/EX01/medications/new",
]


def test_a_read_only_user_gets_403_on_every_form_page_and_post(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    token = signed_in(client, "reader")
    for url in FORM_PAGES:
        assert client.get(url).status_code == 403, url
        assert client.get(url, headers={"HX-Request": "true"}).status_code == 403, url
    for url in POSTS:
        response = client.post(url, data={"csrf_token": token, "version": "1", "confirm": "yes"})
        assert response.status_code == 403, url
    assert stored_version(db_url, "EX01") == 1


@pytest.mark.parametrize("url", POSTS)
def test_a_post_without_the_csrf_token_is_refused_and_stores_nothing(
    client: TestClient, db_url: str, kb: Knowledge, url: str
) -> None:
    store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    data = {
        "version": "1",
        "confirm": "yes",
        "patient.id": "P-9",
        "episode.onset": "2024-01-01",
        "episode.diagnosis": "mdd_single",
        "episode.severity": "mild",
        "drug": "omeprazole",
    }
    assert client.post(url, data=data).status_code == 403
    assert client.post(url, data=data | {"csrf_token": "forged"}).status_code == 403
    assert stored_version(db_url, "EX01") == 1 and stored_version(db_url, "P-9") is None


def test_signed_out_visitors_are_sent_to_sign_in(client: TestClient) -> None:
    response = client.get("/patients/new")
    assert response.status_code == 303 and response.headers["location"].startswith("/signin")


def test_the_patient_page_links_every_form_for_writers_and_none_for_readers(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    forms = [url for url in FORM_PAGES if url.startswith("/patients/EX01/") and "?" not in url]
    signed_in(client, "clinician")
    page = client.get("/patients/EX01").text
    for url in forms:
        assert f'href="{url}"' in page, url
    signed_in(client, "reader")
    page = client.get("/patients/EX01").text
    assert not [url for url in forms if f'href="{url}"' in page]
