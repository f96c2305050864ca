"""FHIR export: every resource of every example's and demo patient's Bundle validates with the
fhir.resources R4B models, references resolve inside the Bundle, and each part of the history
and its assessment is where docs/fhir.md ("Export") says it is."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle

from trdnav import __version__
from trdnav.core.assessment import Assessment, assess
from trdnav.core.history import History, Medication
from trdnav.demo import PLANS, generated_patient
from trdnav.history_files import load_history, parse_history
from trdnav.identity import Identifier, PatientIdentity
from trdnav.interop.fhir.codes import tables
from trdnav.interop.fhir.export import ExportError, export_fhir
from trdnav.interop.fhir.export_codes import (
    CONDITION_CLINICAL,
    CS_ASSESSMENT,
    CS_OPTION,
    CS_OUTCOME,
    CS_TRD_STATUS,
    EXT_ADHERENCE,
    EXT_OPTION_RANK,
    EXT_OUTCOME,
    ICD10CM,
    LOINC,
    NS_PATIENT,
    RXNORM,
    SNOMED,
)
from trdnav.knowledge.load import Knowledge, default_knowledge

TODAY = date(2024, 6, 1)
WHEN = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))
Json = dict[str, Any]

# A history with every field of the format filled in somewhere (also the round trip's).
EVERY_FIELD = {
    "patient": {
        "id": "KS-1 (every field)",
        "birth_date": "1980-02-29",
        "sex": "female",
        "breastfeeding": True,
    },
    "assessed_on": "2024-06-01",
    "episode": {"onset": "2023-01-10", "diagnosis": "mdd_recurrent", "severity": "moderate"},
    "conditions": [
        {"name": "hypertension", "status": "controlled"},
        {"name": "substance_use_disorder", "status": "remission"},
        {"name": "insomnia"},
    ],
    "treatments": [
        {
            "type": "medication",
            "drug": "Zoloft",
            "start": "2023-02-01",
            "stop": "2023-05-01",
            "doses": [
                {"from": "2023-02-01", "mg_per_day": 50},
                {"from": "2023-02-15", "mg_per_day": 150},
            ],
            "adherence": 0.85,
            "outcome": "response_lost",
            "response_lost_on": "2023-04-20",
            "note": "lost response in April",
        },
        {
            "type": "medication",
            "drug": "lithium",
            "augments": "Zoloft",
            "start": "2023-03-01",
            "stop": "2023-05-01",
            "doses": [{"from": "2023-03-01", "mg_per_day": 600}],
            "serum_level": 0.6,
            "outcome": "no_response",
        },
        {
            "type": "medication",
            "drug": "mirtazapine",
            "start": "2023-06-01",
            "stop": "2023-06-20",
            "outcome": "intolerance",
        },
        {
            "type": "ketamine",
            "start": "2023-07-01",
            "stop": "2023-08-01",
            "sessions": 6,
            "route": "iv",
            "mg_per_kg": 0.5,
            "outcome": "partial_response",
        },
        {
            "type": "esketamine",
            "start": "2023-09-01",
            "stop": "2023-11-01",
            "sessions": 16,
            "mg_per_session": 84,
            "outcome": "no_response",
            "note": "REMS enrolled",
        },
        {
            "type": "ect",
            "start": "2023-12-01",
            "sessions": 10,
            "electrode_placement": "right_unilateral",
        },
        {"type": "psychotherapy", "modality": "cbasp", "start": "2024-01-05", "outcome": "unknown"},
        {
            "type": "rtms",
            "protocol": "accelerated_itbs",
            "start": "2024-03-01",
            "stop": "2024-03-06",
            "sessions": 50,
            "outcome": "response",
        },
    ],
    "measurements": [
        {"instrument": "phq9", "date": "2024-01-05", "items": [3, 2, None, 2, 1, 2, 2, 1, 0]},
        {"instrument": "PHQ-9", "date": "2024-02-05", "total": 14.0},
        {"instrument": "MADRS", "date": "2024-02-05", "total": 30},
        {"instrument": "GAD-7", "date": "2024-02-05", "items": [1, 1, 1, 1, 1, 1, 1], "total": 7},
    ],
    "staging_inputs": {
        "functional_impairment": "moderate",
        "childhood_trauma": True,
        "psychotherapy_trials": 2,
        "intensified_treatment": "none",
    },
    "clinician_alerts": [
        {
            "date": "2024-05-01",
            "severity": "moderate",
            "note": "passive ideation",
            "entered_by": "dr. who",
        },
        {"date": "2024-05-20", "severity": "low"},
    ],
    "labs": [{"test": "TSH", "value": 2.5, "unit": "mIU/L", "date": "2024-01-10"}],
    "pgx": [{"gene": "CYP2D6", "phenotype": "intermediate"}],
    "current_medications": [
        {
            "drug": "amlodipine",
            "mg_per_day": 5,
            "start": "2020-01-01",
            "note": "for blood pressure",
        },
        {"drug": "some herbal tea"},
    ],
}


@cache
def _kb() -> Knowledge:
    return default_knowledge()


@cache
def example(name: str) -> tuple[History, Assessment]:
    kb = _kb()
    path = next(p for p in EXAMPLES if p.name.startswith(name))
    history = load_history(path, kb, TODAY)
    return history, assess(history, kb)


@cache
def exported(name: str) -> Json:
    history, assessment = example(name)
    return export_fhir(history, assessment, _kb(), timestamp=WHEN)


def resources(bundle: Json, kind: str | None = None) -> list[Json]:
    rows = [e["resource"] for e in bundle["entry"]]
    return [r for r in rows if kind is None or r["resourceType"] == kind]


def codes(concept: Json, system: str) -> list[str]:
    return [c["code"] for c in concept.get("coding", []) if c["system"] == system]


def references(value: Any) -> list[str]:
    """Every ``reference`` string anywhere inside ``value``."""
    if isinstance(value, dict):
        found = [value["reference"]] if isinstance(value.get("reference"), str) else []
        return found + [r for v in value.values() for r in references(v)]
    if isinstance(value, list):
        return [r for v in value for r in references(v)]
    return []


def assert_valid(bundle: Json, each: bool = True) -> None:
    """Each resource against its own R4B model (the Bundle's model validates each entry with its
    resource's model too, so ``each=False`` checks the same, once), ids and references."""
    for entry in bundle["entry"]:
        r = entry["resource"]
        if each:
            get_fhir_model_class(r["resourceType"]).model_validate(r)
        assert entry["fullUrl"] == f"urn:uuid:{r['id']}"
    entries = bundle["entry"] if not each else [{"fullUrl": e["fullUrl"]} for e in bundle["entry"]]
    Bundle.model_validate({**bundle, "entry": entries})
    assert bundle["type"] == "collection"
    urls = [e["fullUrl"] for e in bundle["entry"]]
    assert len(urls) == len(set(urls)), "resource ids are unique"
    dangling = set(references(bundle)) - set(urls)
    assert not dangling, f"references outside the Bundle: {dangling}"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_resource_of_every_example_validates(path: Path, kb: Knowledge) -> None:
    bundle = exported(path.name[:2])
    assert_valid(bundle)
    kinds = Counter(r["resourceType"] for r in resources(bundle))
    for needed in ("Patient", "Condition", "Observation", "CarePlan", "Device", "Provenance"):
        assert kinds[needed] >= 1, needed


def test_a_demo_patient_of_every_journey_validates(kb: Knowledge) -> None:
    """One generated demo patient of each journey (ECT, rTMS, esketamine, lost response …); the
    examples, the demo's other patients, are above."""
    first_of_kind = {plan.write: n for n, plan in reversed(list(enumerate(PLANS, start=1)))}
    assert len(first_of_kind) >= 8
    for n in sorted(first_of_kind.values()):
        data = generated_patient(n, TODAY)
        history = parse_history(data, kb, TODAY)
        assert_valid(export_fhir(history, assess(history, kb), kb, timestamp=WHEN), each=False)


def test_the_patient_carries_the_clinic_id_and_the_identity_when_given(kb: Knowledge) -> None:
    history, assessment = example("10")
    bare = resources(exported("10"), "Patient")[0]
    assert bare["identifier"] == [{"system": NS_PATIENT, "value": "EX10"}]
    assert bare["gender"] == "female" and bare["birthDate"] == "1988-11-05"
    assert "name" not in bare
    who = PatientIdentity(
        given=("Ada", "Maria"),
        family="Lovelace",
        mrn="MRN-0042",
        identifiers=(Identifier(system="urn:oid:2.16.840.1.113883.4.1", value="123-45-6789"),),
    )
    bundle = export_fhir(history, assessment, kb, who, timestamp=WHEN)
    assert_valid(bundle)
    patient = resources(bundle, "Patient")[0]
    assert patient["name"] == [{"use": "official", "family": "Lovelace", "given": ["Ada", "Maria"]}]
    values = {i["value"]: i for i in patient["identifier"]}
    assert values["MRN-0042"]["type"]["coding"][0]["code"] == "MR"
    assert values["123-45-6789"]["system"] == "urn:oid:2.16.840.1.113883.4.1"


def test_the_episode_is_coded_from_the_concept_sets(kb: Knowledge) -> None:
    episode = next(c for c in resources(exported("03"), "Condition") if "onsetDateTime" in c)
    assert codes(episode["code"], ICD10CM) == ["F33.2"]  # recurrent, severe
    assert codes(episode["code"], SNOMED) == ["370143000"]
    assert episode["onsetDateTime"] == "2022-03-01"
    assert codes(episode["severity"], SNOMED) == ["24484000"]
    # a psychotic single episode: F32.3, from the mdd_psychotic concept set
    psychotic = next(c for c in resources(exported("15"), "Condition") if "onsetDateTime" in c)
    assert example("15")[0].episode.severity.value == "severe_psychotic"
    assert codes(psychotic["code"], ICD10CM) == ["F32.3"]  # single episode, psychotic features
    # a comorbid condition is our vocabulary with its text
    anxiety = [c for c in resources(exported("03"), "Condition") if "onsetDateTime" not in c]
    assert [c["code"]["text"] for c in anxiety] == ["anxiety_disorder"]


def test_a_trial_is_one_medication_statement_per_dose_step(kb: Knowledge) -> None:
    history, _ = example("10")
    sertraline = history.treatments[1]
    assert isinstance(sertraline, Medication) and len(sertraline.doses) == 4
    steps = [
        s
        for s in resources(exported("10"), "MedicationStatement")
        if s["identifier"][0]["value"] == "EX10/treatments/1"
    ]
    assert len(steps) == 4
    drug = kb.resolve_drug("sertraline")
    assert drug is not None and drug.rxnorm
    for s, step in zip(steps, sertraline.doses, strict=True):
        assert codes(s["medicationCodeableConcept"], RXNORM) == [drug.rxnorm]
        assert s["effectivePeriod"]["start"] == step.from_.isoformat()
        rate = s["dosage"][0]["doseAndRate"][0]["rateRatio"]
        assert rate["numerator"]["value"] == step.mg_per_day and rate["numerator"]["code"] == "mg"
        assert rate["denominator"] == {"value": 1, "unit": "d", "system": UCUM_URI, "code": "d"}
        extensions = {e["url"]: e for e in s["extension"]}
        assert extensions[EXT_ADHERENCE]["valueDecimal"] == 0.9
        assert extensions[EXT_OUTCOME]["valueCoding"]["code"] == "no_response"
        assert extensions[EXT_OUTCOME]["valueCoding"]["system"] == CS_OUTCOME
    # each step ends when the next begins; the last at the trial's stop
    assert [s["effectivePeriod"].get("end") for s in steps] == [
        "2023-09-15",
        "2023-10-13",
        "2023-11-27",
        "2023-12-08",
    ]
    assert steps[-1]["status"] == "completed"
    # the brand written in the history stays as the text; the code is the ingredient
    lexapro = resources(exported("03"), "MedicationStatement")[0]
    assert lexapro["medicationCodeableConcept"]["text"] == "Lexapro"
    escitalopram = kb.resolve_drug("escitalopram")
    assert escitalopram is not None
    assert codes(lexapro["medicationCodeableConcept"], RXNORM) == [escitalopram.rxnorm]
    # an ongoing trial's last step is active and open
    venlafaxine = [
        s
        for s in resources(exported("10"), "MedicationStatement")
        if s["identifier"][0]["value"] == "EX10/treatments/2"
    ]
    assert venlafaxine[-1]["status"] == "active" and "end" not in venlafaxine[-1]["effectivePeriod"]


UCUM_URI = "http://unitsofmeasure.org"


def test_scores_are_observations_with_loinc_band_and_items(kb: Knowledge) -> None:
    bundle = exported("10")
    history, _ = example("10")
    phq9 = [
        o
        for o in resources(bundle, "Observation")
        if codes(o["code"], LOINC) == [kb.instruments["phq9"].loinc.total]
    ]
    assert len(phq9) == sum(m.instrument == "PHQ-9" for m in history.measurements)
    first = phq9[0]
    assert first["effectiveDateTime"] == "2023-09-01"
    assert first["valueQuantity"]["value"] == 22
    assert first["interpretation"][0]["text"] == "severe"
    items = first["component"]
    assert [c["valueInteger"] for c in items] == [3, 3, 3, 3, 2, 3, 2, 3, 0]
    assert codes(items[8]["code"], LOINC) == ["44260-8"]  # item 9
    # the answered form is a QuestionnaireResponse the Observation derives from
    forms = {f"urn:uuid:{q['id']}": q for q in resources(bundle, "QuestionnaireResponse")}
    form = forms[first["derivedFrom"][0]["reference"]]
    assert [i["answer"][0]["valueInteger"] for i in form["item"]] == [3, 3, 3, 3, 2, 3, 2, 3, 0]
    assert form["item"][0]["linkId"] == "1" and form["authored"] == "2023-09-01"
    # an unscored instrument (C-SSRS screener): its answers, no value
    cssrs = next(
        o for o in resources(bundle, "Observation") if o["code"]["text"] == "C-SSRS screener"
    )
    assert "valueQuantity" not in cssrs and len(cssrs["component"]) == 7


def test_the_assessment_is_observations_in_our_code_system(kb: Knowledge) -> None:
    bundle = exported("10")
    _, assessment = example("10")
    ours = {
        codes(o["code"], CS_ASSESSMENT)[0]: o
        for o in resources(bundle, "Observation")
        if codes(o["code"], CS_ASSESSMENT)
    }
    status = ours["trd-status"]
    assert codes(status["valueCodeableConcept"], CS_TRD_STATUS) == [assessment.trd.status]
    assert status["effectiveDateTime"] == "2024-06-01"
    failed = ours["failed-adequate-trials"]
    assert failed["valueInteger"] == assessment.trd.failed_adequate_trials == 2
    assert len(failed["derivedFrom"]) == 2  # the first dose step of each failed trial
    assert {f"staging-{m}" for m in assessment.staging} <= set(ours)
    assert ours["staging-mgh_s"]["valueQuantity"]["value"] == assessment.staging["mgh_s"].score
    assert ours["staging-thase_rush"]["valueInteger"] == assessment.staging["thase_rush"].stage
    maudsley = ours["staging-maudsley"]
    assert maudsley["interpretation"][0]["text"] == assessment.staging["maudsley"].band


def test_the_plan_is_a_care_plan_of_the_ranked_options(kb: Knowledge) -> None:
    _, assessment = example("11")
    plan = resources(exported("11"), "CarePlan")[0]
    details = [a["detail"] for a in plan["activity"]]
    assert [codes(d["code"], CS_OPTION)[0] for d in details] == [o.id for o in assessment.options]
    ranks = [
        next(e["valueInteger"] for e in d["extension"] if e["url"] == EXT_OPTION_RANK)
        for d in details
    ]
    assert ranks == sorted(ranks) and ranks[0] == 1
    for d, o in zip(details, assessment.options, strict=True):
        assert d["statusReason"]["coding"][0]["code"] == o.status
        assert d["doNotPerform"] == (o.status == "contraindicated")
        assert [r["text"] for r in d.get("reasonCode", [])] == list(o.reasons)
    assert plan["intent"] == "proposal" and plan["created"] == "2024-06-01"


def test_provenance_names_the_software_and_knowledge_base(kb: Knowledge) -> None:
    bundle = exported("05")
    prov = resources(bundle, "Provenance")[0]
    agent = prov["agent"][0]["who"]
    assert __version__ in agent["display"] and kb.kb_version in agent["display"]
    device = resources(bundle, "Device")[0]
    assert [v["value"] for v in device["version"]] == [__version__, kb.kb_version]
    assert agent["reference"] == f"urn:uuid:{device['id']}"
    others = {f"urn:uuid:{r['id']}" for r in resources(bundle) if r["resourceType"] != "Provenance"}
    assert {t["reference"] for t in prov["target"]} == others
    assert prov["recorded"] == WHEN.isoformat() and bundle["timestamp"] == WHEN.isoformat()


def test_non_drug_treatments_labs_pgx_and_current_drugs_are_exported(kb: Knowledge) -> None:
    ect = resources(exported("08"), "Procedure")
    assert {c["code"] for p in ect for c in p["code"]["coding"]} >= {"90870", "90868"}
    labs = [
        o
        for o in resources(exported("20"), "Observation")
        if o["category"][0]["coding"][0]["code"] == "laboratory"
    ]
    assert [o["code"]["text"] for o in labs][:2] == ["TSH", "vitamin B12"]
    assert labs[1]["valueQuantity"] == {"value": 110, "unit": "pmol/L"}
    pgx = [o for o in resources(exported("21"), "Observation") if "phenotype" in o["code"]["text"]]
    assert [o["valueCodeableConcept"]["text"] for o in pgx] == ["poor metabolizer", "NM"]
    current = [
        s
        for s in resources(exported("21"), "MedicationStatement")
        if s["category"]["coding"][0]["code"] == "current-medication"
    ]
    assert [s["medicationCodeableConcept"]["text"] for s in current] == ["carbamazepine"]


def test_exporting_twice_gives_the_same_ids(kb: Knowledge) -> None:
    history, assessment = example("10")
    a = export_fhir(history, assessment, kb, timestamp=WHEN)
    b = export_fhir(history, assessment, kb, timestamp=WHEN)
    assert a == b


def test_an_assessment_of_another_patient_is_refused(kb: Knowledge) -> None:
    history, _ = example("10")
    _, other = example("03")
    with pytest.raises(ExportError, match="EX03"):
        export_fhir(history, other, kb)


def test_a_history_with_every_field_validates(kb: Knowledge) -> None:
    history = parse_history(EVERY_FIELD, kb, TODAY)
    bundle = export_fhir(history, assess(history, kb), kb, timestamp=WHEN)
    assert_valid(bundle)
    kinds = Counter(r["resourceType"] for r in resources(bundle))
    assert kinds["Procedure"] == 5 and kinds["RiskAssessment"] == 2
    assert kinds["MedicationStatement"] == 2 + 1 + 1 + 2  # dose steps, no dose, current drugs
    breastfeeding = [
        o for o in resources(bundle, "Observation") if codes(o["code"], LOINC) == ["63895-7"]
    ]
    assert len(breastfeeding) == 1
    ketamine = next(p for p in resources(bundle, "Procedure") if p["code"]["text"] == "ketamine")
    assert ketamine["status"] == "completed" and ketamine["performedPeriod"]["end"] == "2023-08-01"
    ect = next(p for p in resources(bundle, "Procedure") if p["code"]["text"].startswith("electro"))
    assert ect["status"] == "in-progress"  # no stop: ongoing


@pytest.mark.parametrize(
    ("diagnosis", "severity"), sorted(tables(default_knowledge()).export_icd_diagnosis)
)
def test_every_mdd_code_of_the_table_is_in_a_concept_set(
    diagnosis: str, severity: str, kb: Knowledge
) -> None:
    """A concept set that stops including a code makes the export fall back to SNOMED and text:
    this test says so instead of letting a code vanish quietly."""
    data = {
        "patient": {"id": "DX"},
        "assessed_on": "2024-06-01",
        "episode": {"onset": "2024-01-01", "diagnosis": diagnosis, "severity": severity},
    }
    history = parse_history(data, kb, TODAY)
    bundle = export_fhir(history, assess(history, kb), kb, timestamp=WHEN)
    episode = next(c for c in resources(bundle, "Condition") if "onsetDateTime" in c)
    assert codes(episode["code"], ICD10CM) == [
        tables(kb).export_icd_diagnosis[(diagnosis, severity)][0]
    ]
    assert codes(episode["code"], SNOMED) == ["370143000"]


def test_a_bipolar_episode_has_the_bipolar_snomed_root_and_no_mdd_code(kb: Knowledge) -> None:
    data = {
        "patient": {"id": "BP"},
        "assessed_on": "2024-06-01",
        "episode": {
            "onset": "2024-01-01",
            "diagnosis": "bipolar_ii_depression",
            "severity": "severe",
        },
    }
    history = parse_history(data, kb, TODAY)
    bundle = export_fhir(history, assess(history, kb), kb, timestamp=WHEN)
    episode = next(c for c in resources(bundle, "Condition") if "onsetDateTime" in c)
    assert codes(episode["code"], SNOMED) == ["13746004"]
    assert codes(episode["code"], ICD10CM) == []
    assert episode["code"]["text"] == "bipolar II disorder, current episode depressed"


# Required bindings the R4B models do not check (a status of "bogus" passes them): the R4 codes.
REQUIRED_CODES: dict[tuple[str, str], set[str]] = {
    ("Observation", "status"): {"registered", "preliminary", "final", "amended"},
    ("MedicationStatement", "status"): {"active", "completed", "stopped", "on-hold", "unknown"},
    ("Procedure", "status"): {"preparation", "in-progress", "on-hold", "stopped", "completed"},
    ("QuestionnaireResponse", "status"): {"in-progress", "completed", "amended", "stopped"},
    ("RiskAssessment", "status"): {"registered", "preliminary", "final", "amended"},
    ("CarePlan", "status"): {"draft", "active", "on-hold", "revoked", "completed", "unknown"},
    ("CarePlan", "intent"): {"proposal", "plan", "order", "option"},
    ("Patient", "gender"): {"male", "female", "other", "unknown"},
}
ACTIVITY_STATUSES = {"not-started", "scheduled", "in-progress", "on-hold", "completed", "cancelled"}
CLINICAL_STATUSES = {"active", "recurrence", "relapse", "inactive", "remission", "resolved"}


def test_every_code_of_a_required_binding_is_an_r4_code(kb: Knowledge) -> None:
    bundles = [exported(p.name[:2]) for p in EXAMPLES]
    history = parse_history(EVERY_FIELD, kb, TODAY)
    bundles.append(export_fhir(history, assess(history, kb), kb, timestamp=WHEN))
    for bundle in bundles:
        for r in resources(bundle):
            kind = r["resourceType"]
            for (of, element), allowed in REQUIRED_CODES.items():
                if of == kind:
                    assert r[element] in allowed, (kind, element, r[element])
            if kind == "Condition":
                assert codes(r["clinicalStatus"], CONDITION_CLINICAL)[0] in CLINICAL_STATUSES
            if kind == "CarePlan":
                assert {a["detail"]["status"] for a in r["activity"]} <= ACTIVITY_STATUSES
            if kind == "Provenance":
                assert {e["role"] for e in r["entity"]} <= {"derivation", "revision", "source"}
