"""Form fields <-> history-format data, and problem locations -> fields (no database needed)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from pydantic import TypeAdapter

from trdnav.core import history as h
from trdnav.errors import Problem
from trdnav.history_files import load_history
from trdnav.knowledge.load import Knowledge
from trdnav.storage.records import history_data
from trdnav.web import forms

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))
TODAY = date(2024, 6, 1)
TREATMENT = TypeAdapter(h.Treatment)


def spec_names(spec: forms.Spec, prefix: str = "") -> set[str]:
    return {name.removeprefix(prefix) for name, _ in spec if name.startswith(prefix)}


@pytest.mark.parametrize("kind", h.TREATMENT_TYPES)
def test_every_field_of_a_treatment_is_on_its_form_so_an_edit_never_drops_one(kind: str) -> None:
    model = forms.TREATMENT_MODELS[kind]
    on_form = spec_names(forms.TREATMENT_SPECS[kind]) | {"type"}
    if kind == "medication":
        on_form.add("doses")  # the dose rows
    assert set(model.model_fields) == on_form


def test_every_field_of_patient_episode_and_staging_inputs_is_on_the_patient_form() -> None:
    spec = forms.PATIENT_SPEC
    assert spec_names(spec, "patient.") | {"id"} == set(h.Patient.model_fields)
    assert spec_names(spec, "episode.") == set(h.Episode.model_fields)
    assert spec_names(spec, "staging_inputs.") == set(h.StagingInputs.model_fields)
    assert spec_names(forms.LAB_SPEC) == set(h.Lab.model_fields)
    assert spec_names(forms.PGX_SPEC) == set(h.PgxResult.model_fields)
    assert spec_names(forms.CURRENT_MEDICATION_SPEC) == set(h.CurrentMedication.model_fields)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_record_round_trips_through_its_forms_unchanged(
    path: Path, kb: Knowledge
) -> None:
    history = load_history(path, kb, TODAY)
    data = history_data(history)
    for stored in data.get("treatments", []):
        entry = forms.treatment_entry(forms.treatment_values(stored), stored["type"])
        assert entry.errors == {}
        assert TREATMENT.validate_python(entry.data) == TREATMENT.validate_python(stored)
    entry = forms.patient_entry(forms.patient_values(data), kb, history.patient.id)
    assert entry.errors == {}
    edited = dict(data)
    forms.apply_patient(edited, entry)
    assert h.History.model_validate(edited) == history


@pytest.mark.parametrize(
    ("kind", "text", "value"),
    [
        (forms.Kind.DATE, "2024-02-29", date(2024, 2, 29)),
        (forms.Kind.NUMBER, "37.5", 37.5),
        (forms.Kind.NUMBER, ".5", 0.5),
        (forms.Kind.NUMBER, "-5", -5.0),  # the core judges the range
        (forms.Kind.WHOLE, "12", 12),
        (forms.Kind.PERCENT, "90", 0.9),
        (forms.Kind.PERCENT, "33.3", 0.333),
        (forms.Kind.YESNO, "no", False),
        (forms.Kind.FLAG, "on", True),
        (forms.Kind.FLAG, "", False),
        (forms.Kind.TEXT, "", None),
    ],
)
def test_a_field_is_converted_to_the_history_formats_value(
    kind: forms.Kind, text: str, value: object
) -> None:
    assert forms.convert(kind, text) == (value, None)


@pytest.mark.parametrize(
    ("kind", "text", "expected"),
    [
        (forms.Kind.DATE, "2024-02-30", "YYYY-MM-DD"),
        (forms.Kind.DATE, "01/02/2024", "YYYY-MM-DD"),
        (forms.Kind.NUMBER, "1,200", "decimal point"),
        (forms.Kind.NUMBER, "inf", "enter a number"),
        (forms.Kind.NUMBER, "nan", "enter a number"),
        (forms.Kind.NUMBER, "1e3", "enter a number"),
        (forms.Kind.WHOLE, "2.5", "whole number"),
        (forms.Kind.YESNO, "maybe", "yes, no"),
        (forms.Kind.TEXT, "x" * 201, "at most 200"),
        (forms.Kind.NOTE, "x" * 4001, "at most 4000"),
    ],
)
def test_text_that_is_not_the_expected_kind_says_what_was_expected(
    kind: forms.Kind, text: str, expected: str
) -> None:
    value, error = forms.convert(kind, text)
    assert value is None and error is not None and expected in error


def test_a_problem_lands_on_the_field_of_its_path_inside_the_entry() -> None:
    entry = forms.treatment_entry(
        {"start": "2024-01-01", "doses[1].from": "2024-01-01", "doses[1].mg_per_day": "10"},
        "medication",
    )
    assert entry.field_for("treatments[3].start", "treatments[3]") == "start"
    # the first row was empty: the core's doses[0] is the form's row 1
    assert entry.field_for("treatments[3].doses[0].mg_per_day", "treatments[3]") == (
        "doses[1].mg_per_day"
    )
    assert entry.field_for("treatments[3].doses[0]", "treatments[3]") == "doses[1].from"
    assert entry.field_for("treatments[3].doses", "treatments[3]") == "doses"
    assert entry.field_for("treatments[3]", "treatments[3]") is None
    assert entry.field_for("treatments[30].start", "treatments[3]") is None
    assert entry.field_for("treatments[2].start", "treatments[3]") is None


def test_problems_no_field_owns_go_to_the_top_with_their_place_in_the_record(
    kb: Knowledge,
) -> None:
    entry = forms.measurement_entry({"date": "2024-05-01"}, kb.instruments["phq9"])
    entry.place(
        [
            Problem("measurements[4]", "measurement_empty", "give items or a total"),
            Problem("treatments[0].stop", "stop_before_start", "stop is before start"),
            Problem("measurements[4].items[8]", "invalid_answers", "item 9 must be 0 to 3"),
        ],
        "measurements[4]",
    )
    assert entry.top == ["give items or a total", "treatments[0].stop: stop is before start"]
    assert entry.errors == {"items[8]": "item 9 must be 0 to 3"}


def test_a_field_the_form_could_not_read_keeps_the_forms_own_message() -> None:
    entry = forms.treatment_entry({"start": "soon"}, "ect")
    entry.place([Problem("treatments[0].start", "missing", "required field is missing")], "")
    entry.place([Problem("start", "missing", "required field is missing")])
    assert entry.errors == {"start": "enter a date as YYYY-MM-DD, e.g. 2024-03-15"}


def test_several_problems_on_one_field_are_all_shown() -> None:
    entry = forms.lab_entry({"test": "TSH"})
    entry.place(
        [Problem("labs[0].value", "a", "first"), Problem("labs[0].value", "b", "second")],
        "labs[0]",
    )
    assert entry.errors == {"value": "first; second"}


def test_empty_dose_rows_are_skipped_and_the_rows_shown_are_capped() -> None:
    entry = forms.treatment_entry(
        {"doses[0].from": "", "doses[0].mg_per_day": "", "doses[2].mg_per_day": "5"},
        "medication",
    )
    assert entry.data["doses"] == [{"mg_per_day": 5.0}]
    assert forms.dose_rows({"doses[2].from": ""}, extra=1) == 4
    assert forms.dose_rows({"doses[999999].from": "x"}) == 1
    assert forms.dose_rows({}, extra=forms.MAX_DOSE_ROWS + 5) == forms.MAX_DOSE_ROWS


def test_item_wording_is_shown_only_where_the_licence_allows_it(kb: Knowledge) -> None:
    phq9, qids = kb.instruments["phq9"], kb.instruments["qids_sr16"]
    assert forms.item_label(phq9, phq9.items[0]) == "Little interest or pleasure in doing things"
    assert forms.item_label(qids, qids.items[11]) == "Item 12 — suicidal ideation"
    assert forms.answers(kb.instruments["mdq"], kb.instruments["mdq"].items[0]) == [
        ("0", "No"),
        ("1", "Yes"),
    ]


def test_a_measurement_is_its_answers_or_a_total_alone(kb: Knowledge) -> None:
    phq9 = kb.instruments["phq9"]
    answered = forms.measurement_entry({"date": "2024-05-01", "items[8]": "1"}, phq9)
    assert answered.data["items"] == [None] * 8 + [1] and "total" not in answered.data
    total = forms.measurement_entry({"date": "2024-05-01", "total": "14"}, phq9)
    assert total.data == {"instrument": "PHQ-9", "date": date(2024, 5, 1), "total": 14.0}
    tampered = forms.measurement_entry({"items[0]": "x"}, phq9)
    assert tampered.errors["items[0]"] == "choose one of the answers"


def test_the_choices_are_the_history_formats_own_values() -> None:
    assert [v for v, _ in forms.choices(h.Ect, "electrode_placement")] == [
        "bilateral",
        "bitemporal",
        "bifrontal",
        "right_unilateral",
        "unknown",
    ]
    assert [v for v, _ in forms.choices(h.Episode, "severity")][-1] == "severe_psychotic"
    assert forms.treatment_defaults("ketamine") == {"outcome": "unknown", "route": "iv"}
