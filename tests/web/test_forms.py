"""The clinician's forms: what is entered is stored exactly; bad input is shown next to its field,
kept, and stores nothing; a concurrent save is a conflict; only writers with a CSRF token may use
them. Patients, episodes and treatments here; measurements, labs and the rest in test_forms_*.py.
"""

from __future__ import annotations

import html
import re
from datetime import date

import pytest
from fastapi.testclient import TestClient

from trdnav.core.history import History, Medication
from trdnav.knowledge.load import Knowledge
from trdnav.storage import records, repository
from trdnav.storage.engine import make_engine, make_sessionmaker

from .conftest import TODAY, signed_in, store_examples


def stored(db_url: str, patient_id: str) -> tuple[History, int]:
    """The record as the store holds it (bypassing the app)."""
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as session:
            return repository.load_record(session, patient_id, "test")
    finally:
        engine.dispose()


def stored_version(db_url: str, patient_id: str) -> int | None:
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as session:
            return repository.patient_version(session, patient_id)
    finally:
        engine.dispose()


def save_elsewhere(db_url: str, kb: Knowledge, patient_id: str) -> None:
    """Another clinician saves the record meanwhile (a new lab result)."""
    engine = make_engine(db_url)
    lab = {"test": "TSH", "value": 2.0, "unit": "mIU/L", "date": "2024-05-01"}
    try:
        with make_sessionmaker(engine)() as session:
            records.change(
                session,
                patient_id,
                lambda data: data.setdefault("labs", []).append(lab),
                kb,
                TODAY,
                "other",
                None,
            )
    finally:
        engine.dispose()


def hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', page)
    assert found, f"no hidden field {name}"
    return found.group(1)


def open_form(client: TestClient, url: str) -> dict[str, str]:
    """GET a form page; return its csrf_token and version fields (what a browser posts back)."""
    page = client.get(url)
    assert page.status_code == 200, page.text
    return {"csrf_token": hidden(page.text, "csrf_token"), "version": hidden(page.text, "version")}


def field_error(page: str, field_id: str) -> str:
    """The error message shown next to the field with this id ('' when none)."""
    found = re.search(rf'id="{re.escape(field_id)}-error">([^<]*)<', page)
    return html.unescape(found.group(1)) if found else ""


def marked_invalid(page: str, field_id: str) -> bool:
    tag = re.search(rf'<(?:input|select|textarea)[^>]*id="{re.escape(field_id)}"[^>]*>', page)
    assert tag, f"no field {field_id}"
    return 'aria-invalid="true"' in tag.group(0) and f"{field_id}-error" in tag.group(0)


NEW_PATIENT = {
    "patient.id": "P-100",
    "patient.birth_date": "1980-02-29",
    "patient.sex": "female",
    "patient.breastfeeding": "on",
    "episode.onset": "2023-11-01",
    "episode.diagnosis": "mdd_recurrent",
    "episode.severity": "severe",
    "conditions.hypertension": "on",
    "conditions.hypertension.status": "controlled",
    "conditions.chronic_pain": "on",
    "staging_inputs.functional_impairment": "moderate",
    "staging_inputs.childhood_trauma": "no",
    "staging_inputs.psychotherapy_trials": "1",
}


# --- new patient ---------------------------------------------------------------------------------


def test_a_new_patient_is_stored_as_entered_and_opens_on_its_page(
    client: TestClient, db_url: str
) -> None:
    signed_in(client, "clinician")
    form = open_form(client, "/patients/new")
    response = client.post("/patients/new", data=form | NEW_PATIENT)
    assert response.status_code == 303
    assert response.headers["location"] == "/patients/P-100"
    history, version = stored(db_url, "P-100")
    assert version == 1
    assert history.patient.model_dump() == {
        "id": "P-100",
        "birth_date": date(1980, 2, 29),
        "sex": "female",
        "pregnant": False,
        "breastfeeding": True,
    }
    assert (history.episode.onset, history.episode.diagnosis, history.episode.severity) == (
        date(2023, 11, 1),
        "mdd_recurrent",
        "severe",
    )
    assert [(c.name, c.status) for c in history.conditions] == [
        ("hypertension", "controlled"),
        ("chronic_pain", None),
    ]
    assert history.staging_inputs is not None
    assert history.staging_inputs.model_dump(exclude_none=True) == {
        "functional_impairment": "moderate",
        "childhood_trauma": False,
        "psychotherapy_trials": 1,
    }
    assert history.assessed_on is None  # a live record, assessed as of today
    assert client.get("/patients/P-100").status_code == 200
    assert "P-100" in client.get("/patients").text  # its list summary was written too


def test_a_duplicate_patient_id_is_refused_next_to_the_id_field(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    form = open_form(client, "/patients/new")
    page = client.post("/patients/new", data=form | NEW_PATIENT | {"patient.id": "EX01"})
    assert page.status_code == 422
    assert "already exists" in field_error(page.text, "f-patient-id")
    assert marked_invalid(page.text, "f-patient-id")
    assert 'value="1980-02-29"' in page.text  # the entered values are kept
    assert stored_version(db_url, "EX01") == 1
    assert stored(db_url, "EX01")[0].patient.birth_date == date(1992, 3, 14)


def test_a_new_patient_with_bad_input_shows_every_problem_and_stores_nothing(
    client: TestClient, db_url: str
) -> None:
    signed_in(client, "clinician")
    form = open_form(client, "/patients/new")
    bad = NEW_PATIENT | {
        "patient.id": "P/1",
        "patient.birth_date": "29.02.1980",
        "episode.diagnosis": "",
        "staging_inputs.psychotherapy_trials": "two",
    }
    page = client.post("/patients/new", data=form | bad)
    assert page.status_code == 422
    text = page.text
    assert "page address" in field_error(text, "f-patient-id")
    assert "YYYY-MM-DD" in field_error(text, "f-patient-birth_date")
    assert "required" in field_error(text, "f-episode-diagnosis")
    assert "whole number" in field_error(text, "f-staging_inputs-psychotherapy_trials")
    assert 'value="29.02.1980"' in text and 'value="P/1"' in text
    assert "4 problems to correct" in text
    assert stored_version(db_url, "P/1") is None and stored_version(db_url, "P-100") is None


def test_an_episode_onset_after_today_is_refused_by_the_core_next_to_the_onset(
    client: TestClient, db_url: str
) -> None:
    signed_in(client, "clinician")
    form = open_form(client, "/patients/new")
    page = client.post("/patients/new", data=form | NEW_PATIENT | {"episode.onset": "2024-07-01"})
    assert page.status_code == 422
    assert "after the assessment date 2024-06-01" in field_error(page.text, "f-episode-onset")
    assert stored_version(db_url, "P-100") is None


def test_new_is_not_a_patient_identifier(client: TestClient, db_url: str) -> None:
    signed_in(client, "clinician")
    form = open_form(client, "/patients/new")
    page = client.post("/patients/new", data=form | NEW_PATIENT | {"patient.id": "new"})
    assert page.status_code == 422
    assert "reserved" in field_error(page.text, "f-patient-id")


# --- editing the patient and episode -------------------------------------------------------------


def test_editing_the_patient_changes_those_fields_and_keeps_the_rest(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    before, _ = stored(db_url, "EX01")
    signed_in(client, "clinician")
    page = client.get("/patients/EX01/edit")
    assert 'value="1992-03-14"' in page.text and 'value="2023-09-01"' in page.text
    form = {"csrf_token": hidden(page.text, "csrf_token"), "version": hidden(page.text, "version")}
    response = client.post(
        "/patients/EX01/edit",
        data=form
        | {
            "patient.birth_date": "1992-03-14",
            "patient.sex": "female",
            "patient.pregnant": "on",
            "episode.onset": "2023-08-15",
            "episode.diagnosis": "mdd_single",
            "episode.severity": "severe",
            "conditions.sleep_apnea.status": "treated",  # a status alone selects the condition
        },
    )
    assert response.status_code == 303
    after, version = stored(db_url, "EX01")
    assert version == 2
    assert after.patient.pregnant is True and after.patient.id == "EX01"
    assert after.episode.onset == date(2023, 8, 15) and after.episode.severity == "severe"
    assert [(c.name, c.status) for c in after.conditions] == [("sleep_apnea", "treated")]
    assert after.treatments == before.treatments
    assert after.measurements == before.measurements


def test_an_episode_starting_before_birth_is_shown_at_the_onset_and_stores_nothing(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    form = open_form(client, "/patients/EX01/edit")
    page = client.post(
        "/patients/EX01/edit",
        data=form
        | {
            "patient.birth_date": "1992-03-14",
            "episode.onset": "1990-01-01",
            "episode.diagnosis": "mdd_single",
            "episode.severity": "moderate",
        },
    )
    assert page.status_code == 422
    assert "before the birth date" in field_error(page.text, "f-episode-onset")
    assert marked_invalid(page.text, "f-episode-onset")
    assert 'value="1990-01-01"' in page.text
    assert stored_version(db_url, "EX01") == 1


# --- treatments ----------------------------------------------------------------------------------

ESCITALOPRAM = {
    "type": "medication",
    "drug": "Lexapro",
    "start": "2024-01-16",
    "stop": "2024-04-30",
    "doses[0].from": "2024-01-16",
    "doses[0].mg_per_day": "10",
    "doses[1].from": "2024-02-13",
    "doses[1].mg_per_day": "20",
    "adherence": "90",
    "outcome": "no_response",
    "note": "stopped for lack of effect",
}


def test_a_medication_trial_is_stored_exactly_as_entered(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    form = open_form(client, "/patients/EX01/treatments/new")
    entered = ESCITALOPRAM | {"serum_level": "", "doses[2].from": "", "doses[2].mg_per_day": ""}
    response = client.post("/patients/EX01/treatments/new", data=form | entered)
    assert response.status_code == 303
    assert response.headers["location"] == "/patients/EX01"
    history, version = stored(db_url, "EX01")
    assert version == 2
    added = history.treatments[-1]
    assert isinstance(added, Medication)
    assert added.model_dump(by_alias=True, exclude_none=True) == {
        "type": "medication",
        "drug": "Lexapro",
        "start": date(2024, 1, 16),
        "stop": date(2024, 4, 30),
        "doses": (
            {"from": date(2024, 1, 16), "mg_per_day": 10.0},
            {"from": date(2024, 2, 13), "mg_per_day": 20.0},
        ),
        "adherence": 0.9,
        "outcome": "no_response",
        "note": "stopped for lack of effect",
    }


def test_an_add_on_keeps_what_it_augments_and_its_serum_level(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    form = open_form(client, "/patients/EX01/treatments/new")
    lithium = {
        "type": "medication",
        "drug": "lithium",
        "augments": "Cymbalta",
        "start": "2024-05-13",
        "doses[0].from": "2024-05-13",
        "doses[0].mg_per_day": "600",
        "serum_level": "0.65",
        "adherence": "100",
        "outcome": "unknown",
    }
    assert client.post("/patients/EX01/treatments/new", data=form | lithium).status_code == 303
    added = stored(db_url, "EX01")[0].treatments[-1]
    assert isinstance(added, Medication)
    assert (added.augments, added.serum_level, added.adherence, added.stop) == (
        "Cymbalta",
        0.65,
        1.0,
        None,
    )


def test_adding_a_second_failed_adequate_trial_turns_the_patient_into_trd(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    assert "Not TRD" in client.get("/patients", params={"q": "EX01"}).text
    form = open_form(client, "/patients/EX01/treatments/new")
    assert client.post("/patients/EX01/treatments/new", data=form | ESCITALOPRAM).status_code == 303
    listed = client.get("/patients", params={"q": "EX01"}).text
    assert "Not TRD" not in listed and ">TRD<" in listed
    page = client.get("/patients/EX01").text
    assert '<span class="badge badge-trd">TRD</span>' in page
    assert "<strong>2</strong> failed adequate antidepressant trials" in page


def test_an_unknown_drug_is_refused_next_to_the_drug_field_with_the_closest_names(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    form = open_form(client, "/patients/EX01/treatments/new")
    page = client.post(
        "/patients/EX01/treatments/new", data=form | ESCITALOPRAM | {"drug": "escitaloprem"}
    )
    assert page.status_code == 422
    message = field_error(page.text, "f-drug")
    assert "unknown drug" in message and "escitalopram" in message
    assert marked_invalid(page.text, "f-drug")
    assert 'value="escitaloprem"' in page.text and 'value="2024-02-13"' in page.text
    assert stored_version(db_url, "EX01") == 1


def test_a_dose_problem_lands_on_its_own_row_even_after_an_empty_row(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    form = open_form(client, "/patients/EX01/treatments/new")
    course = {k: v for k, v in ESCITALOPRAM.items() if not k.startswith("doses")}
    rows = {
        "doses[0].from": "",
        "doses[0].mg_per_day": "",
        "doses[1].from": "2024-01-16",
        "doses[1].mg_per_day": "10",
        "doses[2].from": "2024-05-10",  # after the trial's stop
        "doses[2].mg_per_day": "20",
    }
    page = client.post("/patients/EX01/treatments/new", data=form | course | rows)
    assert page.status_code == 422
    text = page.text
    assert "outside the trial" in field_error(text, "f-doses-2-from")
    assert marked_invalid(text, "f-doses-2-from")
    assert field_error(text, "f-doses-1-from") == "" and field_error(text, "f-doses-0-from") == ""
    assert stored_version(db_url, "EX01") == 1


def test_dose_amounts_the_form_or_the_core_refuse_are_shown_on_their_rows(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    form = open_form(client, "/patients/EX01/treatments/new")
    course = {k: v for k, v in ESCITALOPRAM.items() if not k.startswith("doses")}
    rows = {
        "doses[0].from": "2024-01-16",
        "doses[0].mg_per_day": "-5",
        "doses[1].from": "2024-03-01",
        "doses[1].mg_per_day": "20,5",
    }
    page = client.post("/patients/EX01/treatments/new", data=form | course | rows)
    assert page.status_code == 422
    text = page.text
    assert "greater than or equal to 0" in field_error(text, "f-doses-0-mg_per_day")
    assert "decimal point" in field_error(text, "f-doses-1-mg_per_day")
    assert 'value="-5"' in text and 'value="20,5"' in text
    assert stored_version(db_url, "EX01") == 1


def test_adherence_is_a_percentage_and_out_of_range_says_so(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    form = open_form(client, "/patients/EX01/treatments/new")
    page = client.post(
        "/patients/EX01/treatments/new", data=form | ESCITALOPRAM | {"adherence": "150"}
    )
    assert page.status_code == 422
    assert field_error(page.text, "f-adherence") == "enter a percentage from 0 to 100"
    assert stored_version(db_url, "EX01") == 1


def test_add_a_dose_step_shows_one_more_row_and_stores_nothing(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    form = open_form(client, "/patients/EX01/treatments/new")
    page = client.post("/patients/EX01/treatments/new", data=form | ESCITALOPRAM | {"add_row": "1"})
    assert page.status_code == 200
    assert 'name="doses[2].from"' in page.text and 'name="doses[3].from"' not in page.text
    assert 'value="2024-02-13"' in page.text  # entered rows kept
    assert re.search(r'id="f-doses-2-from"[^>]* autofocus', page.text)
    assert stored_version(db_url, "EX01") == 1


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"type": "ect", "sessions": "12", "electrode_placement": "right_unilateral"},
            {"sessions": 12, "electrode_placement": "right_unilateral"},
        ),
        ({"type": "rtms", "sessions": "30", "protocol": "itbs"}, {"protocol": "itbs"}),
        (
            {"type": "esketamine", "sessions": "8", "mg_per_session": "84"},
            {"mg_per_session": 84.0},
        ),
        (
            {"type": "ketamine", "sessions": "6", "route": "im", "mg_per_kg": "0.5"},
            {"route": "im", "mg_per_kg": 0.5},
        ),
        (
            {"type": "psychotherapy", "sessions": "16", "modality": "cbasp"},
            {"modality": "cbasp", "sessions": 16},
        ),
    ],
)
def test_every_other_treatment_type_is_stored_with_its_own_fields(
    client: TestClient,
    db_url: str,
    kb: Knowledge,
    fields: dict[str, str],
    expected: dict[str, object],
) -> None:
    store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    form = open_form(client, f"/patients/EX01/treatments/new?type={fields['type']}")
    course = {"start": "2024-02-01", "stop": "2024-03-15", "outcome": "partial_response"}
    response = client.post("/patients/EX01/treatments/new", data=form | course | fields)
    assert response.status_code == 303, response.text
    added = stored(db_url, "EX01")[0].treatments[-1].model_dump(exclude_none=True)
    assert added["type"] == fields["type"]
    assert (added["start"], added["stop"], added["outcome"]) == (
        date(2024, 2, 1),
        date(2024, 3, 15),
        "partial_response",
    )
    assert expected.items() <= added.items()


def test_the_type_fields_are_swapped_in_by_htmx_and_shown_whole_without_it(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    part = client.get("/patients/EX01/treatments/new?type=ect", headers={"HX-Request": "true"})
    assert part.status_code == 200
    assert "<html" not in part.text and 'name="electrode_placement"' in part.text
    assert 'name="drug"' not in part.text and 'value="ect"' in part.text
    whole = client.get("/patients/EX01/treatments/new?type=ect")
    assert "<html" in whole.text and 'name="electrode_placement"' in whole.text
    assert 'name="version" value="1"' in whole.text
    medication = client.get("/patients/EX01/treatments/new").text
    assert '<datalist id="drug-names">' in medication
    assert '<option value="Lexapro">brand of escitalopram</option>' in medication


def test_editing_a_treatment_replaces_it_in_place(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    before, _ = stored(db_url, "EX01")
    signed_in(client, "clinician")
    page = client.get("/patients/EX01/treatments/0/edit")
    assert page.status_code == 200
    text = page.text
    assert 'value="sertraline"' in text and 'value="95"' in text  # adherence as a percentage
    assert 'name="doses[1].mg_per_day"' in text and 'value="100"' in text
    assert 'name="doses[2].from"' in text  # one empty row for a new step
    form = {"csrf_token": hidden(text, "csrf_token"), "version": hidden(text, "version")}
    edited = {
        "drug": "sertraline",
        "start": "2023-10-02",
        "stop": "2024-02-01",
        "doses[0].from": "2023-10-02",
        "doses[0].mg_per_day": "50",
        "doses[1].from": "2023-10-30",
        "doses[1].mg_per_day": "150",
        "adherence": "80",
        "outcome": "partial_response",
    }
    assert client.post("/patients/EX01/treatments/0/edit", data=form | edited).status_code == 303
    after, version = stored(db_url, "EX01")
    assert version == 2 and len(after.treatments) == len(before.treatments)
    first = after.treatments[0]
    assert isinstance(first, Medication)
    assert (first.stop, first.adherence, first.outcome) == (
        date(2024, 2, 1),
        0.8,
        "partial_response",
    )
    assert [d.mg_per_day for d in first.doses] == [50.0, 150.0]
    assert after.treatments[1:] == before.treatments[1:]


def test_an_edit_keeps_the_treatments_type(client: TestClient, db_url: str, kb: Knowledge) -> None:
    store_examples(db_url, kb, "08")
    history, _ = stored(db_url, "EX08")
    index = next(i for i, t in enumerate(history.treatments) if t.type == "ect")
    signed_in(client, "clinician")
    form = open_form(client, f"/patients/EX08/treatments/{index}/edit")
    course = {"type": "medication", "start": "2024-01-02", "sessions": "9", "outcome": "response"}
    response = client.post(f"/patients/EX08/treatments/{index}/edit", data=form | course)
    assert response.status_code == 303
    edited = stored(db_url, "EX08")[0].treatments[index]
    assert edited.type == "ect" and edited.model_dump()["sessions"] == 9


def test_deleting_a_treatment_asks_first_then_removes_only_it(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    before, _ = stored(db_url, "EX01")
    signed_in(client, "clinician")
    form = open_form(client, "/patients/EX01/treatments/0/edit")
    confirm = client.post("/patients/EX01/treatments/0/delete", data=form)
    assert confirm.status_code == 200
    assert "Delete treatment 1?" in confirm.text and "sertraline" in confirm.text
    assert 'name="confirm" value="yes"' in confirm.text
    assert stored_version(db_url, "EX01") == 1
    done = client.post("/patients/EX01/treatments/0/delete", data=form | {"confirm": "yes"})
    assert done.status_code == 303 and done.headers["location"] == "/patients/EX01"
    after, version = stored(db_url, "EX01")
    assert version == 2
    assert after.treatments == before.treatments[1:]


def test_a_treatment_that_is_not_there_is_a_404_page(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    assert client.get("/patients/EX01/treatments/9/edit").status_code == 404
    assert client.get("/patients/NOPE/treatments/new").status_code == 404


# --- conflicts -----------------------------------------------------------------------------------


def test_a_form_saved_after_someone_else_saved_is_a_conflict_and_stores_nothing(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    form = open_form(client, "/patients/EX01/treatments/new")
    save_elsewhere(db_url, kb, "EX01")
    page = client.post("/patients/EX01/treatments/new", data=form | ESCITALOPRAM)
    assert page.status_code == 409
    assert (
        "Someone else saved this record" in page.text and "Nothing of yours was stored" in page.text
    )
    assert 'value="Lexapro"' in page.text and 'value="2024-02-13"' in page.text
    history, version = stored(db_url, "EX01")
    assert version == 2 and len(history.treatments) == 2
    # an add form comes back at the current version: saving again adds to the record as it is now
    assert hidden(page.text, "version") == "2"
    again = client.post(
        "/patients/EX01/treatments/new", data=form | ESCITALOPRAM | {"version": "2"}
    )
    assert again.status_code == 303
    assert len(stored(db_url, "EX01")[0].treatments) == 3


def test_an_edit_after_someone_else_saved_keeps_the_old_version_so_it_cannot_overwrite(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    form = open_form(client, "/patients/EX01/edit")
    save_elsewhere(db_url, kb, "EX01")
    entered = {
        "episode.onset": "2023-09-01",
        "episode.diagnosis": "mdd_single",
        "episode.severity": "mild",
    }
    page = client.post("/patients/EX01/edit", data=form | entered)
    assert page.status_code == 409
    assert "open this form again" in page.text
    assert hidden(page.text, "version") == "1"
    assert stored(db_url, "EX01")[0].episode.severity == "moderate"
    form = open_form(client, "/patients/EX01/treatments/0/edit")
    save_elsewhere(db_url, kb, "EX01")
    deleted = client.post("/patients/EX01/treatments/0/delete", data=form | {"confirm": "yes"})
    assert deleted.status_code == 409
    assert len(stored(db_url, "EX01")[0].treatments) == 2


def test_a_form_without_its_version_is_refused_as_a_conflict(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    form = open_form(client, "/patients/EX01/treatments/new")
    page = client.post("/patients/EX01/treatments/new", data=form | ESCITALOPRAM | {"version": ""})
    assert page.status_code == 409
    assert stored_version(db_url, "EX01") == 1
