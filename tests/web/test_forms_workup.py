"""Lab, pharmacogenomic and current-medication forms: validated by the core's workup checks."""

from __future__ import annotations

from datetime import date

from fastapi.testclient import TestClient

from trdnav.knowledge.load import Knowledge

from .conftest import signed_in, store_examples
from .test_forms import field_error, marked_invalid, open_form, stored, stored_version


def test_a_lab_result_is_stored_as_entered_in_its_own_unit(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    page = client.get("/patients/EX01/labs/new").text
    assert 'name="date" value="2024-06-01"' in page  # today by default
    form = open_form(client, "/patients/EX01/labs/new")
    entered = {"test": "vitamin B12", "value": "96", "unit": "pmol/L", "date": "2024-05-02"}
    response = client.post("/patients/EX01/labs/new", data=form | entered)
    assert response.status_code == 303
    history, version = stored(db_url, "EX01")
    assert version == 2
    lab = history.labs[-1]
    assert (lab.test, lab.value, lab.unit, lab.date) == (
        "vitamin B12",
        96.0,
        "pmol/L",
        date(2024, 5, 2),
    )
    assert "vitamin B12 deficiency" in client.get("/patients/EX01").text


def test_a_unit_the_test_does_not_accept_is_refused_next_to_the_unit(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    form = open_form(client, "/patients/EX01/labs/new")
    entered = {"test": "TSH", "value": "2.1", "unit": "pmol/L", "date": "2024-05-02"}
    page = client.post("/patients/EX01/labs/new", data=form | entered)
    assert page.status_code == 422
    assert "not accepted for TSH" in field_error(page.text, "f-unit")
    assert 'aria-invalid="true"' in page.text
    assert '<option value="mIU/L"' in page.text  # the test's own units are offered
    assert stored_version(db_url, "EX01") == 1


def test_an_impossible_lab_value_is_refused_next_to_the_value(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    form = open_form(client, "/patients/EX01/labs/new")
    entered = {"test": "TSH", "value": "-1", "unit": "mIU/L", "date": "2024-05-02"}
    page = client.post("/patients/EX01/labs/new", data=form | entered)
    assert page.status_code == 422
    assert "not a possible TSH value" in field_error(page.text, "f-value")
    assert marked_invalid(page.text, "f-value")
    assert 'value="-1"' in page.text
    assert stored_version(db_url, "EX01") == 1


def test_the_units_follow_the_chosen_test(client: TestClient, db_url: str, kb: Knowledge) -> None:
    store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    part = client.get(
        "/patients/EX01/labs/new", params={"test": "folate"}, headers={"HX-Request": "true"}
    )
    assert part.status_code == 200 and "<html" not in part.text
    assert '<option value="nmol/L"' in part.text and "mIU/L" not in part.text
    whole = client.get("/patients/EX01/labs/new").text  # no test yet: every unit, by test
    assert '<optgroup label="TSH">' in whole and '<optgroup label="folate">' in whole


def test_a_pharmacogenomic_result_is_stored_as_entered(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    form = open_form(client, "/patients/EX01/pgx/new")
    entered = {"gene": "CYP2C19", "phenotype": "poor", "date": "2023-12-12"}
    assert client.post("/patients/EX01/pgx/new", data=form | entered).status_code == 303
    result = stored(db_url, "EX01")[0].pgx[-1]
    assert (result.gene, result.phenotype, result.date) == ("CYP2C19", "poor", date(2023, 12, 12))
    assert "CYP2C19" in client.get("/patients/EX01/pgx/new").text  # listed as recorded


def test_a_phenotype_the_gene_does_not_have_is_refused_next_to_the_phenotype(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    form = open_form(client, "/patients/EX01/pgx/new")
    entered = {"gene": "CYP2D6", "phenotype": "rapid", "date": ""}
    page = client.post("/patients/EX01/pgx/new", data=form | entered)
    assert page.status_code == 422
    assert "unknown CYP2D6 phenotype 'rapid'" in field_error(page.text, "f-phenotype")
    assert stored_version(db_url, "EX01") == 1
    part = client.get(
        "/patients/EX01/pgx/new", params={"gene": "CYP2D6"}, headers={"HX-Request": "true"}
    )
    assert 'value="poor"' in part.text and 'value="rapid"' not in part.text


def test_a_current_medication_is_stored_as_entered(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    form = open_form(client, "/patients/EX01/medications/new")
    entered = {"drug": "carbamazepine", "mg_per_day": "400", "start": "2024-04-01", "note": ""}
    assert client.post("/patients/EX01/medications/new", data=form | entered).status_code == 303
    history, version = stored(db_url, "EX01")
    assert version == 2
    med = history.current_medications[-1]
    assert med.model_dump(exclude_none=True) == {
        "drug": "carbamazepine",
        "mg_per_day": 400.0,
        "start": date(2024, 4, 1),
    }


def test_a_current_medication_with_bad_input_is_refused_field_by_field(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    form = open_form(client, "/patients/EX01/medications/new")
    entered = {"drug": "", "mg_per_day": "lots", "start": "2024-07-01"}
    page = client.post("/patients/EX01/medications/new", data=form | entered)
    assert page.status_code == 422
    assert "required" in field_error(page.text, "f-drug")
    assert "enter a number" in field_error(page.text, "f-mg_per_day")
    assert 'value="lots"' in page.text
    assert stored_version(db_url, "EX01") == 1
    dated = {"drug": "omeprazole", "start": "2024-07-01"}
    page = client.post("/patients/EX01/medications/new", data=form | dated)
    assert "after the assessment date" in field_error(page.text, "f-start")
    assert stored_version(db_url, "EX01") == 1
