"""Issue 12, point 4: interactions of esketamine and ketamine, tricyclic cautions, condition
statuses written as FHIR and most people write them, and a misspelling said in the text report."""

from __future__ import annotations

from datetime import date

import pytest
from rich.console import Console

from tests.builders import a_history
from trdnav.core.assessment import assess
from trdnav.core.checks import check_history
from trdnav.knowledge.load import default_knowledge
from trdnav.reports.text import render_assessment

KB = default_knowledge()


def _two_failures():
    return a_history().trial("sertraline", 150).trial("escitalopram", 20)


@pytest.mark.parametrize(
    ("current", "code", "words"),
    [
        ("phenelzine", "blood_pressure_interaction", "blood pressure"),
        ("methylphenidate", "blood_pressure_interaction", "blood pressure"),
        ("modafinil", "blood_pressure_interaction", "blood pressure"),
        ("lorazepam", "sedation_interaction", "sedation"),
        ("oxycodone", "sedation_interaction", "sedation"),
    ],
)
def test_esketamine_and_ketamine_carry_the_label_interactions(current, code, words):
    b = _two_failures()
    b.data["current_medications"] = [{"drug": current}]
    a = assess(b.build(), KB)
    by_id = {o.id: o for o in a.options}
    for oid in ("esketamine", "ketamine_iv"):
        o = by_id[oid]
        assert o.status == "caution", o.reasons
        hit = [r for r in o.reasons if f"with current {current}" in r]
        assert hit and words in hit[0]


def test_without_an_interacting_drug_esketamine_stays_recommended():
    b = _two_failures()
    b.data["current_medications"] = [{"drug": "ibuprofen"}]
    by_id = {o.id: o for o in assess(b.build(), KB).options}
    assert by_id["esketamine"].status == "recommended"


@pytest.mark.parametrize(
    ("status", "expected"), [("unstable", "contraindicated"), ("stable", "caution")]
)
def test_tricyclics_after_a_heart_attack_or_with_cardiac_disease(status, expected):
    by_id = {
        o.id: o
        for o in assess(_two_failures().condition("cardiac_disease", status).build(), KB).options
    }
    assert by_id["switch_tca"].status == expected
    assert any("tricyclic" in r.lower() for r in by_id["switch_tca"].reasons)


def test_tricyclics_with_a_seizure_disorder_are_a_caution():
    by_id = {
        o.id: o for o in assess(_two_failures().condition("seizure_disorder").build(), KB).options
    }
    tca = by_id["switch_tca"]
    assert tca.status == "caution"
    assert any("seizure threshold" in r for r in tca.reasons)


@pytest.mark.parametrize("status", ["active", "present", "recurrence", "relapse"])
def test_a_present_clinical_status_is_accepted_for_any_condition(status):
    h = _two_failures().condition("aneurysmal_vascular_disease", status).build()
    assert check_history(h, KB, date(2024, 6, 1)) == []
    a = assess(h, KB)
    assert {o.id: o for o in a.options}["esketamine"].status == "contraindicated"
    assert a.input_notes == ()


@pytest.mark.parametrize("status", ["resolved", "inactive"])
def test_a_resolved_condition_is_not_counted_and_said_so(status):
    a = assess(_two_failures().condition("seizure_disorder", status).build(), KB)
    assert {o.id: o for o in a.options}["switch_bupropion"].status != "contraindicated"
    assert a.input_notes == (f"conditions[0] seizure_disorder: status {status!r} — not counted",)


def test_a_resolved_history_of_haemorrhage_still_counts():
    a = assess(
        _two_failures().condition("intracerebral_hemorrhage_history", "resolved").build(), KB
    )
    assert {o.id: o for o in a.options}["esketamine"].status == "contraindicated"
    assert "still counted" in a.input_notes[0]


def test_a_status_outside_both_vocabularies_is_still_an_error_naming_the_field():
    h = _two_failures().condition("hypertension", "maybe").build()
    problems = check_history(h, KB, date(2024, 6, 1))
    assert [p.loc for p in problems] == ["conditions[0].status"]
    assert "controlled" in problems[0].message and "active" in problems[0].message


def test_a_known_misspelling_is_said_in_the_text_report():
    a = assess(a_history().trial("sertralin", 150).build(), KB)
    assert a.trials[0].misspelling and a.trials[0].drug == "sertraline"
    console = Console(width=140, record=True)
    console.print(render_assessment(a))
    assert "typed 'sertralin': a known misspelling" in console.export_text()
    brand = assess(a_history().trial("Zoloft", 150).build(), KB)
    assert not brand.trials[0].misspelling
