"""The printable summary and its PDF, as served to a signed-in user."""

from __future__ import annotations

import io

from fastapi.testclient import TestClient
from pypdf import PdfReader

from trdnav.knowledge.load import Knowledge

from .conftest import signed_in, store_examples


def test_the_printable_summary_is_a_self_contained_document_without_scripts(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "03")
    signed_in(client, "reader")
    page = client.get("/patients/EX03/summary")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script" not in csp
    assert "<script" not in page.text
    assert "EX03" in page.text and "escitalopram" in page.text.lower()


def test_the_pdf_downloads_with_the_trials_stage_and_plan(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "03")
    signed_in(client, "clinician")
    response = client.get("/patients/EX03/summary.pdf")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert 'filename="trd-summary-EX03-' in response.headers["content-disposition"]
    assert response.content.startswith(b"%PDF")
    text = " ".join(p.extract_text() for p in PdfReader(io.BytesIO(response.content)).pages)
    assert "EX03" in text
    assert "Thase" in text
    assert "not a medical device" in text.lower()


def test_documents_need_a_signed_in_user(client: TestClient, db_url: str, kb: Knowledge) -> None:
    store_examples(db_url, kb, "03")
    assert client.get("/patients/EX03/summary.pdf").status_code == 303
