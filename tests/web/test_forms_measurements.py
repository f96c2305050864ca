"""Measurement and screen forms: each instrument's own items and answers, scored by the core."""

from __future__ import annotations

from datetime import date

from fastapi.testclient import TestClient

from trdnav.knowledge.load import Knowledge

from .conftest import signed_in, store_examples
from .test_forms import field_error, marked_invalid, open_form, stored, stored_version


def answers(*values: int | None) -> dict[str, str]:
    return {f"items[{k}]": "" if v is None else str(v) for k, v in enumerate(values)}


def test_a_phq9_is_stored_with_exactly_the_answers_given(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    form = open_form(client, "/patients/EX01/measurements/new")
    entered = {"instrument": "phq9", "date": "2024-05-27"} | answers(2, 1, 3, 2, 0, 1, 2, 1, 0)
    response = client.post("/patients/EX01/measurements/new", data=form | entered)
    assert response.status_code == 303 and response.headers["location"] == "/patients/EX01"
    history, version = stored(db_url, "EX01")
    assert version == 2
    added = history.measurements[-1]
    assert (added.instrument, added.date, added.items, added.total) == (
        "PHQ-9",
        date(2024, 5, 27),
        (2, 1, 3, 2, 0, 1, 2, 1, 0),
        None,
    )


def test_a_positive_item_9_entered_by_the_clinician_puts_the_suicide_alert_first_on_the_page(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    assert "Suicide-risk signal" not in client.get("/patients/EX01").text
    form = open_form(client, "/patients/EX01/measurements/new")
    entered = {"instrument": "phq9", "date": "2024-06-01"} | answers(2, 2, 2, 2, 1, 2, 2, 1, 1)
    response = client.post("/patients/EX01/measurements/new", data=form | entered)
    assert response.status_code == 303
    page = client.get(response.headers["location"]).text
    assert "Suicide-risk signal" in page
    assert page.index("Suicide-risk signal") < page.index("Treatments")
    listed = client.get("/patients", params={"show": "alerts"}).text
    assert "EX01" in listed


def test_the_form_shows_the_instruments_own_items_and_answer_ranges(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    phq9 = client.get("/patients/EX01/measurements/new").text  # PHQ-9 is the default
    assert "Little interest or pleasure in doing things" in phq9  # wording its licence allows
    assert 'name="items[8]" value="3"' in phq9 and 'name="items[8]" value="4"' not in phq9
    assert 'name="items[9]"' not in phq9
    assert "suicide item" in phq9
    madrs = client.get("/patients/EX01/measurements/new", params={"instrument": "madrs"}).text
    assert 'name="items[9]" value="6"' in madrs  # MADRS items run 0..6
    qids = client.get("/patients/EX01/measurements/new", params={"instrument": "qids_sr16"}).text
    assert "Item 1 — sleep" in qids  # wording not licensed: number and domain only
    assert "item wording is not shown" in qids
    cssrs = client.get("/patients/EX01/measurements/new", params={"instrument": "cssrs"}).text
    assert "<span>No</span>" in cssrs and "<span>Yes</span>" in cssrs
    assert "Only the total is available" not in cssrs  # the screener has no total


def test_measurements_and_screens_list_their_own_instruments(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    measures = client.get("/patients/EX01/measurements/new").text
    screens = client.get("/patients/EX01/screens/new").text
    assert '<option value="phq9" selected>' in measures and 'value="mdq"' not in measures
    assert 'value="cssrs_screener"' in measures and 'value="gad7"' in measures
    for screen in ("mdq", "asrs_v1_1", "pcl5", "audit_c", "stop_bang", "isi"):
        assert f'value="{screen}"' in screens
    assert 'value="phq9"' not in screens
    assert "Choose an instrument above" in screens  # no default screen


def test_an_unanswered_item_9_is_refused_next_to_it_and_stores_nothing(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    form = open_form(client, "/patients/EX01/measurements/new")
    entered = {"instrument": "phq9", "date": "2024-05-27"} | answers(2, 1, 3, 2, 0, 1, 2, 1, None)
    page = client.post("/patients/EX01/measurements/new", data=form | entered)
    assert page.status_code == 422
    assert "item 9 may never be missing" in field_error(page.text, "f-items")
    assert field_error(page.text, "f-items-8") == "not answered"
    assert field_error(page.text, "f-items-0") == ""
    assert 'name="items[2]" value="3" checked' in page.text  # answers kept
    assert stored_version(db_url, "EX01") == 1


def test_an_answer_out_of_range_is_refused_next_to_its_item(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    form = open_form(client, "/patients/EX01/measurements/new")
    entered = {"instrument": "phq9", "date": "2024-05-27"} | answers(2, 1, 7, 2, 0, 1, 2, 1, 0)
    page = client.post("/patients/EX01/measurements/new", data=form | entered)
    assert page.status_code == 422
    assert "item 3 of PHQ-9 must be a whole number from 0 to 3; got 7" in field_error(
        page.text, "f-items-2"
    )
    assert 'aria-invalid="true"' in page.text
    assert stored_version(db_url, "EX01") == 1


def test_a_phq9_with_one_item_missing_is_prorated_by_the_core_and_stored_as_entered(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    form = open_form(client, "/patients/EX01/measurements/new")
    entered = {"instrument": "phq9", "date": "2024-05-27"} | answers(2, 1, None, 2, 0, 1, 2, 1, 0)
    assert client.post("/patients/EX01/measurements/new", data=form | entered).status_code == 303
    assert stored(db_url, "EX01")[0].measurements[-1].items == (2, 1, None, 2, 0, 1, 2, 1, 0)


def test_a_total_alone_is_accepted_where_the_instrument_has_one(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    form = open_form(client, "/patients/EX01/measurements/new?instrument=madrs")
    entered = {"instrument": "madrs", "date": "2024-05-27", "total": "31"} | answers(*[None] * 10)
    assert client.post("/patients/EX01/measurements/new", data=form | entered).status_code == 303
    added = stored(db_url, "EX01")[0].measurements[-1]
    assert (added.instrument, added.items, added.total) == ("MADRS", None, 31.0)


def test_a_total_out_of_range_or_with_answers_is_refused_at_the_total(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    form = open_form(client, "/patients/EX01/measurements/new")
    too_high = {"instrument": "phq9", "date": "2024-05-27", "total": "28"}
    page = client.post("/patients/EX01/measurements/new", data=form | too_high)
    assert page.status_code == 422
    assert "from 0 to 27; got 28" in field_error(page.text, "f-total")
    assert marked_invalid(page.text, "f-total")
    both = {"instrument": "phq9", "date": "2024-05-27", "total": "12", "items[0]": "1"}
    page = client.post("/patients/EX01/measurements/new", data=form | both)
    assert "not both" in field_error(page.text, "f-total")
    assert stored_version(db_url, "EX01") == 1


def test_a_date_after_today_is_refused_next_to_the_date(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    form = open_form(client, "/patients/EX01/measurements/new")
    entered = {"instrument": "phq9", "date": "2024-06-02"} | answers(0, 0, 0, 0, 0, 0, 0, 0, 0)
    page = client.post("/patients/EX01/measurements/new", data=form | entered)
    assert page.status_code == 422
    assert "after the assessment date" in field_error(page.text, "f-date")
    assert stored_version(db_url, "EX01") == 1


def test_a_cssrs_screener_with_yes_answers_is_stored_and_raises_the_alert(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    form = open_form(client, "/patients/EX01/measurements/new?instrument=cssrs_screener")
    entered = {"instrument": "cssrs_screener", "date": "2024-06-01"} | answers(1, 1, 0, 0, 0, 0, 0)
    assert client.post("/patients/EX01/measurements/new", data=form | entered).status_code == 303
    added = stored(db_url, "EX01")[0].measurements[-1]
    assert (added.instrument, added.items) == ("C-SSRS screener", (1, 1, 0, 0, 0, 0, 0))
    assert "Suicide-risk signal" in client.get("/patients/EX01").text


def test_a_screen_is_stored_through_the_same_form(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    form = open_form(client, "/patients/EX01/screens/new?instrument=audit_c")
    entered = {"instrument": "audit_c", "date": "2024-05-20"} | answers(2, 1, 0)
    response = client.post("/patients/EX01/screens/new", data=form | entered)
    assert response.status_code == 303
    added = stored(db_url, "EX01")[0].measurements[-1]
    assert (added.instrument, added.items) == ("AUDIT-C", (2, 1, 0))
    page = client.get("/patients/EX01").text
    assert "AUDIT-C on 2024-05-20" in page  # the workup reads it


def test_a_screen_form_refuses_an_instrument_that_is_not_a_screen(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    form = open_form(client, "/patients/EX01/screens/new")
    entered = {"instrument": "phq9", "date": "2024-05-20"} | answers(0, 0, 0, 0, 0, 0, 0, 0, 0)
    page = client.post("/patients/EX01/screens/new", data=form | entered)
    assert page.status_code == 422
    assert "choose an instrument" in page.text
    assert stored_version(db_url, "EX01") == 1


def test_the_items_are_swapped_in_by_htmx_when_the_instrument_changes(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    part = client.get(
        "/patients/EX01/screens/new", params={"instrument": "mdq"}, headers={"HX-Request": "true"}
    )
    assert part.status_code == 200 and "<html" not in part.text
    assert 'name="instrument" value="mdq"' in part.text and 'name="items[14]"' in part.text
