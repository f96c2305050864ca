"""FHIR import: realistic EHR inputs in several styles map to the history they describe, every
resource is accounted for, and the same data always gives the same history."""

from __future__ import annotations

import json
import random
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from trdnav.core.assessment import assess
from trdnav.core.history import History, Medication
from trdnav.history_files import load_history
from trdnav.interop.fhir.bundle import decode_fhir, read_fhir_file
from trdnav.interop.fhir.import_ import import_fhir
from trdnav.interop.fhir.report import FhirImport
from trdnav.knowledge.load import Knowledge

from .fixtures import fhir_bundles

FIXTURES = Path(__file__).parent / "fixtures"
EXAMPLES = Path(__file__).parents[2] / "examples"
TODAY = date(2024, 6, 1)


def load(name: str, kb: Knowledge) -> FhirImport:
    return import_fhir(read_fhir_file(FIXTURES / name), kb, TODAY)


def medication(history: History, drug: str) -> Medication:
    found = [t for t in history.treatments if isinstance(t, Medication) and t.drug == drug]
    assert len(found) == 1, [getattr(t, "drug", t.type) for t in history.treatments]
    return found[0]


def refs_in(data: Any) -> set[str]:
    entries = data if isinstance(data, list) else [e["resource"] for e in data["entry"]]
    return {f"{r['resourceType']}/{r['id']}" for r in entries}


def not_mapped(result: FhirImport) -> dict[str, str]:
    return {n.resource: n.code for n in result.report.not_mapped}


def assumptions(result: FhirImport) -> list[str]:
    return [f"{a.resource}: {a.assumption}" for a in result.report.assumptions]


@pytest.mark.parametrize(
    "name",
    [
        "ehr_requests.json",
        "pharmacy_dispenses.ndjson",
        "statements_free_text.json",
        "example10_ehr.json",
    ],
)
def test_every_resource_is_either_mapped_or_reported_with_a_reason(
    name: str, kb: Knowledge
) -> None:
    data = read_fhir_file(FIXTURES / name)
    result = import_fhir(data, kb, TODAY)
    mapped = {m.resource for m in result.report.mapped}
    unmapped = set(not_mapped(result))
    assert mapped | unmapped == refs_in(data)
    assert not mapped & unmapped
    assert result.report.resources == len(refs_in(data))
    assert all(n.reason for n in result.report.not_mapped)
    assert "not_used" not in not_mapped(result).values()


def test_the_generated_fixture_files_are_what_the_generator_makes() -> None:
    assert json.loads((FIXTURES / "ehr_requests.json").read_text()) == (fhir_bundles.ehr_requests())
    assert json.loads((FIXTURES / "example10_ehr.json").read_text()) == (
        fhir_bundles.example10_ehr()
    )
    assert json.loads((FIXTURES / "statements_free_text.json").read_text()) == (
        fhir_bundles.statements_free_text()
    )
    lines = (FIXTURES / "pharmacy_dispenses.ndjson").read_text().splitlines()
    assert [json.loads(x) for x in lines] == fhir_bundles.pharmacy_dispenses()


# --- MedicationRequest-only EHR export --------------------------------------------------------


def test_a_prescription_only_export_gives_patient_identity_episode_and_conditions(
    kb: Knowledge,
) -> None:
    r = load("ehr_requests.json", kb)
    h = r.history
    assert h.patient.id == "MRN-1001"
    assert (h.patient.sex.value, str(h.patient.birth_date)) == ("female", "1979-04-12")
    assert r.identity.display_name == "RIVERA, Ana Lucia"
    assert r.identity.mrn == "MRN-1001"
    assert {i.type for i in r.identity.identifiers} == {"MR", "SS"}
    assert (h.episode.diagnosis.value, h.episode.severity.value) == ("mdd_recurrent", "moderate")
    assert str(h.episode.onset) == "2023-01-15"
    # ICD-10-CM and SNOMED CT to the vocabulary; a resolved condition keeps its status
    assert {(c.name, c.status) for c in h.conditions} == {
        ("hypertension", None),
        ("anxiety_disorder", None),
        ("sleep_apnea", "resolved"),
    }
    # a refuted bipolar diagnosis is dropped with a note: it does not make the episode bipolar
    skipped = not_mapped(r)
    assert skipped["Condition/dx-4"] == "refuted"
    assert skipped["Condition/dx-5"] == "unmapped_condition"
    assert "asthma" in next(n.reason for n in r.report.not_mapped if n.resource.endswith("dx-5"))


def test_clinical_drug_codes_roll_up_to_the_ingredient_with_doses_from_tablets(
    kb: Knowledge,
) -> None:
    r = load("ehr_requests.json", kb)
    sertraline = medication(r.history, "sertraline")
    assert [(str(d.from_), d.mg_per_day) for d in sertraline.doses] == [
        ("2023-02-01", 50),
        ("2023-03-01", 100),
        ("2023-04-01", 150),
    ]
    assert str(sertraline.stop) == "2023-05-31"  # the last dosage's bounds
    assert sertraline.outcome.value == "no_response"
    assert any("RxNorm 999901 is not an ingredient" in a for a in assumptions(r))
    escitalopram = medication(r.history, "escitalopram")
    assert escitalopram.stop is None  # an active prescription: ongoing
    assert [d.mg_per_day for d in escitalopram.doses] == [10, 20]


def test_a_prescription_without_dosage_gives_a_trial_without_doses_said_in_the_report(
    kb: Knowledge,
) -> None:
    r = load("ehr_requests.json", kb)
    aripiprazole = medication(r.history, "aripiprazole")
    assert aripiprazole.doses == ()
    assert aripiprazole.augments == "escitalopram"  # started while escitalopram ran
    said = [a for a in r.report.assumptions if a.resource == "MedicationRequest/rx-ari-1"]
    assert any("no dosage" in a.assumption for a in said)
    assert any("augmenting escitalopram" in a.assumption for a in said)


def test_unknown_codes_other_drugs_labs_and_proposals_are_reported_or_kept_where_they_belong(
    kb: Knowledge,
) -> None:
    r = load("ehr_requests.json", kb)
    skipped = not_mapped(r)
    assert skipped["MedicationRequest/rx-unk-1"] == "unknown_drug"
    assert skipped["MedicationRequest/rx-prop-1"] == "not_an_order"
    assert skipped["Observation/lab-glu"] == "unmapped_observation"
    assert [(m.drug, m.mg_per_day) for m in r.history.current_medications] == [
        ("lisinopril 10 MG Oral Tablet", 10)
    ]
    assert [(x.test, x.value, x.unit) for x in r.history.labs] == [("TSH", 2.4, "mIU/L")]
    assert [m.total for m in r.history.measurements] == [17, 16, 15, 14, 13]


# --- dispense-only pharmacy feed ---------------------------------------------------------------


def test_dispenses_alone_rebuild_doses_and_estimate_adherence_marked_as_estimated(
    kb: Knowledge,
) -> None:
    r = load("pharmacy_dispenses.ndjson", kb)
    venlafaxine = medication(r.history, "venlafaxine")
    assert [(str(d.from_), d.mg_per_day) for d in venlafaxine.doses] == [
        ("2023-01-09", 75),
        ("2023-03-25", 150),
    ]
    # last fill 2023-05-29 + 30 days; 150 of 171 days covered
    assert str(venlafaxine.stop) == "2023-06-28"
    assert venlafaxine.adherence == 0.88
    assert venlafaxine.note is not None
    assert "estimated from pharmacy dispenses" in venlafaxine.note
    bupropion = medication(r.history, "bupropion")
    assert [d.mg_per_day for d in bupropion.doses] == [300]
    # no diagnosis in a pharmacy feed: the episode is a stated assumption, never a guess
    assert r.history.episode.diagnosis.value == "other"
    assert any("no depressive or bipolar Condition" in a for a in assumptions(r))
    assert {m.resource for m in r.report.mapped} >= {"Medication/med-1", "Medication/med-2"}


# --- MedicationStatements with free-text dosage; procedures; a questionnaire -------------------


def test_free_text_dosages_brand_names_and_stop_reasons_are_read_and_said(
    kb: Knowledge,
) -> None:
    r = load("statements_free_text.json", kb)
    fluoxetine = medication(r.history, "fluoxetine")
    assert [(str(d.from_), d.mg_per_day) for d in fluoxetine.doses] == [
        ("2022-06-01", 20),
        ("2022-07-15", 40),
    ]
    assert fluoxetine.outcome.value == "no_response"
    zoloft = medication(r.history, "Zoloft")
    assert [d.mg_per_day for d in zoloft.doses] == [200]  # 100 mg bid
    assert zoloft.outcome.value == "intolerance"
    effexor = medication(r.history, "venlafaxine")
    assert effexor.doses == () and effexor.stop is None
    said = assumptions(r)
    assert any("dose read from the free text '100 mg bid'" in a for a in said)
    assert any("'one capsule daily with food' gives no dose" in a for a in said)
    assert [c.drug for c in r.history.current_medications] == ["St John's wort"]


def test_session_procedures_become_courses_and_a_loinc_form_becomes_items(kb: Knowledge) -> None:
    r = load("statements_free_text.json", kb)
    courses = {t.type: t for t in r.history.treatments if t.type != "medication"}
    ect, rtms = courses["ect"], courses["rtms"]
    assert (ect.sessions, ect.electrode_placement) == (10, "right_unilateral")  # type: ignore[union-attr]
    assert (str(ect.start), str(ect.stop), ect.outcome.value) == (
        "2023-06-05",
        "2023-06-26",
        "partial_response",
    )
    assert (rtms.sessions, rtms.protocol) == (20, "10hz")  # type: ignore[union-attr]
    assert [m.items for m in r.history.measurements] == [
        (3, 3, 2, 2, 2, 3, 2, 1, 1),
        (2, 2, 1, 2, 1, 2, 1, 1, 0),
    ]
    # urn:uuid references of a transaction bundle find their patient
    assert r.history.patient.id == "MRN-3003"
    assert r.history.episode.severity.value == "severe"  # first PHQ-9 of the episode: 19


# --- a known example, written as an EHR holds it -------------------------------------------------


def test_example_10_written_as_ehr_fhir_assesses_to_the_same_trd_status(kb: Knowledge) -> None:
    expected = assess(load_history(EXAMPLES / "10-measured-course.yaml", kb, TODAY), kb)
    r = load("example10_ehr.json", kb)
    got = assess(r.history, kb, today=TODAY)
    assert got.trd.status == expected.trd.status == "trd"
    assert got.trd.failed_drugs == expected.trd.failed_drugs
    assert got.trd.failed_adequate_trials == expected.trd.failed_adequate_trials
    assert {k: (s.stage, s.label) for k, s in got.staging.items()} == {
        k: (s.stage, s.label) for k, s in expected.staging.items()
    }
    original = load_history(EXAMPLES / "10-measured-course.yaml", kb, TODAY)
    assert sorted(original.measurements, key=lambda m: (m.date, m.instrument)) == list(
        r.history.measurements
    )
    assert r.history.conditions == original.conditions
    assert r.history.episode == original.episode
    assert r.report.not_mapped == ()


# --- the same data gives the same history --------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["ehr_requests.json", "statements_free_text.json", "example10_ehr.json"]
)
def test_importing_again_or_in_another_order_or_with_repeats_gives_the_same_history(
    name: str, kb: Knowledge
) -> None:
    data = read_fhir_file(FIXTURES / name)
    first = import_fhir(data, kb, TODAY)
    assert import_fhir(data, kb, TODAY) == first
    shuffled = dict(
        data,
        entry=random.Random(7).sample(  # noqa: S311 (a fixed shuffle, not a secret)
            data["entry"], len(data["entry"])
        ),
    )
    assert import_fhir(shuffled, kb, TODAY).history == first.history
    repeated = dict(data, entry=data["entry"] + data["entry"][:5])
    again = import_fhir(repeated, kb, TODAY)
    assert again.history == first.history
    assert any("appears more than once" in a.assumption for a in again.report.assumptions)


def test_ndjson_text_and_a_bundle_of_the_same_resources_import_alike(kb: Knowledge) -> None:
    resources = fhir_bundles.pharmacy_dispenses()
    ndjson = "".join(json.dumps(r) + "\n" for r in resources)
    as_bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": r} for r in resources],
    }
    assert import_fhir(decode_fhir(ndjson), kb, TODAY) == import_fhir(as_bundle, kb, TODAY)


def test_the_export_of_every_example_imports_back_to_the_same_history(kb: Knowledge) -> None:
    export = pytest.importorskip("trdnav.interop.fhir.export")
    for path in sorted(EXAMPLES.glob("*.yaml")):
        history = load_history(path, kb, TODAY)
        bundle = export.export_fhir(history, assess(history, kb), kb)
        back = import_fhir(bundle, kb, history.assessed_on or TODAY).history
        assert back.model_copy(update={"assessed_on": history.assessed_on}) == history, path.name
