"""The patient list and the patient page show what the core computes, alerts first."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from trdnav.knowledge.load import Knowledge

from .conftest import signed_in, store_examples


def test_the_patient_list_shows_status_stage_last_phq9_and_open_alerts(
    app: FastAPI, client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "10", "01")
    signed_in(client, "reader")
    page = client.get("/patients")
    assert page.status_code == 200
    text = page.text
    assert "EX10" in text and "EX01" in text
    assert "Suicide risk" in text  # EX10 has a positive C-SSRS screener
    # EX10 is listed before EX01: open suicide-risk alerts come first
    assert text.index("EX10") < text.index("EX01")
    assert "Thase–Rush" in text


def test_the_patient_search_filters_by_identifier(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "10", "01")
    signed_in(client, "clinician")
    page = client.get("/patients", params={"q": "x01"})
    assert "EX01" in page.text and "EX10" not in page.text


def test_the_patient_page_puts_the_suicide_risk_alert_first(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "10")
    signed_in(client, "clinician")
    page = client.get("/patients/EX10")
    assert page.status_code == 200
    text = page.text
    assert text.index("Suicide-risk signal") < text.index("Treatments")
    assert "988" in text  # crisis line of the default locale
    for section in ("Assessment", "Pseudo-resistance workup", "Next-step plan", "Staging"):
        assert section in text


def test_an_unknown_patient_is_a_plain_404_page(client: TestClient) -> None:
    signed_in(client, "clinician")
    page = client.get("/patients/NOPE")
    assert page.status_code == 404
    assert "Traceback" not in page.text and "No such patient" in page.text


def test_the_chart_is_an_svg_of_the_patients_scores(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "10")
    signed_in(client, "reader")
    chart = client.get("/patients/EX10/chart.svg", params={"instrument": "phq9"})
    assert chart.status_code == 200
    assert chart.headers["content-type"].startswith("image/svg+xml")
    assert b"<svg" in chart.content[:500]
