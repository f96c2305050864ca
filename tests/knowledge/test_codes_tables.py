"""The FHIR code tables as knowledge-base data (knowledge/data/codes/): validation at load, the
mapped terms, the ICD-10-CM prefix semantics, and the lookup tables the import and export read."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.interop.fixtures import fhir_bundles
from trdnav.core.history import Diagnosis, Severity
from trdnav.errors import KnowledgeError, Problem
from trdnav.interop.fhir import codes
from trdnav.interop.fhir.conditions import _diagnosis, _pregnancy, _term
from trdnav.interop.fhir.import_ import import_fhir
from trdnav.knowledge.codes import CodesKnowledge, load_codes
from trdnav.knowledge.load import Knowledge, load_knowledge

DATA = Path(__file__).parents[2] / "src" / "trdnav" / "knowledge" / "data"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
SNOMED = "http://snomed.info/sct"

Rows = list[dict[str, Any]]


@pytest.fixture
def codes_dir(tmp_path: Path) -> Path:
    """A copy of knowledge/data/codes under tmp_path/data (the root load_codes reads)."""
    shutil.copytree(DATA / "codes", tmp_path / "data" / "codes")
    return tmp_path / "data"


def _edit(root: Path, file: str, table: str, change: Callable[[Rows], None]) -> None:
    path = root / "codes" / file
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data[table])
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def _row(rows: Rows, code: str) -> dict[str, Any]:
    return next(r for r in rows if r["code"] == code)


def _load(root: Path, kb: Knowledge) -> tuple[CodesKnowledge | None, list[Problem]]:
    problems: list[Problem] = []
    found = load_codes(
        root,
        problems,
        conditions={c.id: c.statuses for c in kb.conditions.values()},
        labs=set(kb.workup.labs),
        drugs=set(kb.drugs),
    )
    return found, problems


def _one_problem(root: Path, kb: Knowledge, file: str, loc: str, words: str) -> None:
    found, problems = _load(root, kb)
    assert found is None
    assert [(Path(p.file or "").name, p.loc) for p in problems] == [(file, loc)]
    assert words in problems[0].message


# --- validation at load ---------------------------------------------------------------------------


def test_the_packaged_tables_load_without_a_problem(kb: Knowledge) -> None:
    found, problems = _load(DATA, kb)
    assert problems == [] and found == kb.codes
    assert all(getattr(kb.codes, t) for t in ("diagnoses", "conditions", "labs", "procedures"))


def test_an_unknown_condition_term_names_the_file_and_the_entry(
    codes_dir: Path, kb: Knowledge
) -> None:
    _edit(
        codes_dir,
        "conditions.yaml",
        "conditions",
        lambda r: _row(r, "G40").update(condition="fits"),
    )
    _one_problem(codes_dir, kb, "conditions.yaml", "conditions[icd10cm G40].condition", "'fits'")


def test_a_status_the_condition_term_does_not_have_is_refused(
    codes_dir: Path, kb: Knowledge
) -> None:
    _edit(codes_dir, "conditions.yaml", "conditions", lambda r: _row(r, "I16").update(status="x"))
    _one_problem(codes_dir, kb, "conditions.yaml", "conditions[icd10cm I16].status", "'x'")


def test_an_unknown_lab_id_names_the_file_and_the_entry(codes_dir: Path, kb: Knowledge) -> None:
    _edit(codes_dir, "labs.yaml", "labs", lambda r: _row(r, "3016-3").update(lab="thyroid"))
    _one_problem(codes_dir, kb, "labs.yaml", "labs[loinc 3016-3].lab", "unknown lab 'thyroid'")


def test_an_unknown_drug_of_a_level_is_refused(codes_dir: Path, kb: Knowledge) -> None:
    _edit(codes_dir, "labs.yaml", "labs", lambda r: _row(r, "14334-7").update(drug_level="li"))
    _one_problem(codes_dir, kb, "labs.yaml", "labs[loinc 14334-7].drug_level", "unknown drug 'li'")


def test_an_unknown_diagnosis_value_names_the_file_and_the_entry(
    codes_dir: Path, kb: Knowledge
) -> None:
    _edit(
        codes_dir, "diagnoses.yaml", "diagnoses", lambda r: _row(r, "F33").update(diagnosis="mdd")
    )
    _one_problem(codes_dir, kb, "diagnoses.yaml", "diagnoses[icd10cm F33].diagnosis", "'mdd'")


def test_an_unknown_severity_is_refused(codes_dir: Path, kb: Knowledge) -> None:
    _edit(codes_dir, "diagnoses.yaml", "severities", lambda r: r[0].update(export_for=["light"]))
    _one_problem(
        codes_dir, kb, "diagnoses.yaml", "severities[snomed 255604002].severity", "'light'"
    )


def test_a_code_listed_twice_is_refused_however_it_is_spelled(
    codes_dir: Path, kb: Knowledge
) -> None:
    def add_twin(rows: Rows) -> None:
        twin = dict(_row(rows, "F33.1"), code="F331")
        rows.append(twin)

    _edit(codes_dir, "diagnoses.yaml", "diagnoses", add_twin)
    _one_problem(codes_dir, kb, "diagnoses.yaml", "diagnoses[icd10cm F331]", "duplicate code")


def test_a_code_in_two_tables_is_a_duplicate(codes_dir: Path, kb: Knowledge) -> None:
    def add(rows: Rows) -> None:
        rows.append(
            {
                "system": "snomed",
                "code": "77386006",
                "display": "Pregnant",
                "condition": "catatonia",
                "source": ["snomed_ct_international"],
                "verified": False,
            }
        )

    _edit(codes_dir, "conditions.yaml", "conditions", add)
    found, problems = _load(codes_dir, kb)
    assert found is None
    assert [(p.loc, p.message) for p in problems] == [
        (
            "pregnancy[snomed 77386006]",
            "duplicate code: snomed 77386006 is also conditions[snomed 77386006]",
        )
    ]


def test_verified_without_checked_against_is_a_load_error(codes_dir: Path, kb: Knowledge) -> None:
    _edit(codes_dir, "labs.yaml", "labs", lambda r: _row(r, "718-7").pop("checked_against"))
    _one_problem(
        codes_dir, kb, "labs.yaml", "labs[loinc 718-7].checked_against", "verified: true needs"
    )


def test_only_icd10cm_codes_can_be_prefixes(codes_dir: Path, kb: Knowledge) -> None:
    _edit(codes_dir, "answers.yaml", "answers", lambda r: r[0].update(prefix=True))
    _one_problem(codes_dir, kb, "answers.yaml", "answers[loinc LA6568-5].prefix", "ICD-10-CM")


def test_one_export_code_per_treatment(codes_dir: Path, kb: Knowledge) -> None:
    _edit(
        codes_dir, "procedures.yaml", "procedures", lambda r: _row(r, "G2083").update(export=True)
    )
    _one_problem(
        codes_dir, kb, "procedures.yaml", "procedures[hcpcs G2083].export", "already exports G2082"
    )


def test_a_misspelt_field_names_the_file(codes_dir: Path, kb: Knowledge) -> None:
    _edit(codes_dir, "answers.yaml", "answers", lambda r: r[0].update(scor=0))
    found, problems = _load(codes_dir, kb)
    assert found is None
    assert {Path(p.file or "").name for p in problems} == {"answers.yaml"}
    assert any(p.loc.endswith("scor") for p in problems)


@pytest.mark.parametrize(
    ("file", "table", "code", "change", "words"),
    [
        ("answers.yaml", "answers", "LA6568-5", {"source": ["no_such_key"]}, "no_such_key"),
        ("conditions.yaml", "conditions", "H40", {"condition": "eye"}, "unknown condition term"),
    ],
)
def test_load_knowledge_refuses_an_unknown_citation_key_or_term(
    file: str,
    table: str,
    code: str,
    change: dict[str, Any],
    words: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TRDNAV_PROTOCOLS_DIR", raising=False)
    root = tmp_path / "data"
    shutil.copytree(DATA, root)
    _edit(root, file, table, lambda r: _row(r, code).update(change))
    with pytest.raises(KnowledgeError) as exc:
        load_knowledge(root)
    assert words in str(exc.value) and code in str(exc.value)


# --- every mapped term exists -------------------------------------------------------------------


def test_every_mapped_term_exists_in_the_knowledge_base(kb: Knowledge) -> None:
    c = kb.codes
    assert {e.condition for e in c.conditions} <= set(kb.conditions)
    for e in c.conditions:
        assert e.status is None or e.status in kb.conditions[e.condition].statuses, e.id
    assert {e.lab for e in c.labs if e.lab} == set(kb.workup.labs)  # every lab has a code
    assert {e.drug_level for e in c.labs if e.drug_level} == {"lithium"}
    assert {e.drug_level for e in c.labs if e.drug_level} <= set(kb.drugs)
    diagnoses = {Diagnosis(e.diagnosis) for e in c.diagnoses if e.diagnosis}
    assert diagnoses == set(Diagnosis) - {Diagnosis.OTHER}
    for e in (*c.diagnoses, *c.severities):
        for s in (*((e.severity,) if e.severity else ()), *e.export_for):
            Severity(s)
    assert {e.treatment for e in c.procedures if e.export} == set(kb.population.concept_sets) & {
        "ect",
        "rtms",
        "esketamine",
    }


def test_every_exported_procedure_code_is_in_its_concept_set(kb: Knowledge) -> None:
    for e in kb.codes.procedures:
        if e.export:
            included = {i.code for i in kb.population.concept_sets[e.treatment].include}
            assert e.code in included, e.id


# --- prefix semantics ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("F33.1", (Diagnosis.MDD_RECURRENT, Severity.MODERATE)),
        ("F331", (Diagnosis.MDD_RECURRENT, Severity.MODERATE)),
        ("f33.1", (Diagnosis.MDD_RECURRENT, Severity.MODERATE)),
        ("F33.41", (Diagnosis.MDD_RECURRENT, None)),  # in remission: no severity
        ("F33.9", (Diagnosis.MDD_RECURRENT, None)),
        ("F32.3", (Diagnosis.MDD_SINGLE, Severity.SEVERE_PSYCHOTIC)),
        ("F32.A", None),  # depression, unspecified: not MDD
        ("F32.81", None),  # premenstrual dysphoric disorder
        ("F33.8", None),
        ("F34.1", (Diagnosis.PERSISTENT_DEPRESSIVE_DISORDER, None)),
        ("F31.81", (Diagnosis.BIPOLAR_II_DEPRESSION, None)),
        ("F31.32", (Diagnosis.BIPOLAR_I_DEPRESSION, Severity.MODERATE)),
        ("F31.31", (Diagnosis.BIPOLAR_I_DEPRESSION, Severity.MILD)),
        ("F31.4", (Diagnosis.BIPOLAR_I_DEPRESSION, Severity.SEVERE)),
        ("F31.5", (Diagnosis.BIPOLAR_I_DEPRESSION, Severity.SEVERE_PSYCHOTIC)),
        ("F31.9", (Diagnosis.BIPOLAR_I_DEPRESSION, None)),
        ("F41.1", None),
    ],
)
def test_the_longest_icd10cm_prefix_wins_for_the_diagnosis(
    code: str, expected: tuple[Diagnosis, Severity | None] | None, kb: Knowledge
) -> None:
    assert _diagnosis(code, ICD10CM, codes.tables(kb)) == expected


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("N18.32", ("renal_impairment", "moderate")),
        ("N18.9", ("renal_impairment", None)),
        ("F10.21", ("alcohol_use_disorder", "remission")),
        ("F10.20", ("alcohol_use_disorder", None)),
        ("F12.11", ("substance_use_disorder", "remission")),
        ("F17.210", None),  # nicotine dependence is not a substance use disorder here
        ("I16.0", ("hypertension", "uncontrolled")),
        ("G40.909", ("seizure_disorder", None)),
        ("Z95.810", ("implanted_stimulator", None)),
        ("Z95.818", None),
    ],
)
def test_the_longest_icd10cm_prefix_wins_for_the_condition(
    code: str, expected: tuple[str, str | None] | None, kb: Knowledge
) -> None:
    assert _term(code, ICD10CM, codes.tables(kb)) == expected


def test_pregnancy_codes(kb: Knowledge) -> None:
    t = codes.tables(kb)
    assert _pregnancy("Z33.1", ICD10CM, t) and _pregnancy("O09.90", ICD10CM, t)
    assert not _pregnancy("Z33.2", ICD10CM, t)  # elective termination
    assert _pregnancy("77386006", SNOMED, t) and not _pregnancy("77386006", ICD10CM, t)


# --- the lookup tables are those the former Python literals held --------------------------------

FORMER_LAB_LOINC = {
    "3016-3": "tsh",
    "11580-8": "tsh",
    "2132-9": "b12",
    "14685-2": "b12",
    "2284-8": "folate",
    "14732-2": "folate",
    "1989-3": "vitamin_d",
    "62292-8": "vitamin_d",
    "2276-4": "ferritin",
    "718-7": "haemoglobin",
    "1988-5": "crp",
    "30522-7": "crp",
}
FORMER_ANSWERS = {
    "LA6568-5": 0,
    "LA6569-3": 1,
    "LA6570-1": 2,
    "LA6571-9": 3,
    "LA32-8": 0,
    "LA33-6": 1,
}
FORMER_EXPORT_DIAGNOSIS = {
    ("mdd_single", "mild"): "F32.0",
    ("mdd_single", "moderate"): "F32.1",
    ("mdd_single", "severe"): "F32.2",
    ("mdd_single", "severe_psychotic"): "F32.3",
    ("mdd_single", "subsyndromal"): "F32.9",
    ("mdd_recurrent", "mild"): "F33.0",
    ("mdd_recurrent", "moderate"): "F33.1",
    ("mdd_recurrent", "severe"): "F33.2",
    ("mdd_recurrent", "severe_psychotic"): "F33.3",
    ("mdd_recurrent", "subsyndromal"): "F33.9",
}


def test_the_tables_hold_what_the_former_python_literals_held(kb: Knowledge) -> None:
    t = codes.tables(kb)
    # and the three codes added since, which reference laboratories report under
    added = {"11579-0": "tsh", "20567-4": "ferritin"}
    assert dict(t.lab_loinc) == FORMER_LAB_LOINC | added
    assert dict(t.drug_level_loinc) == {"14334-7": "lithium", "74806-1": "lithium"}
    assert dict(t.loinc_answers) == FORMER_ANSWERS
    assert dict(t.mg_per_session) == {"G2082": 56.0, "G2083": 84.0}
    assert {c for c, v in t.cpt_procedures.items() if v == "psychotherapy"} == {
        "90832",
        "90834",
        "90837",
        "90845",
        "90853",
    }
    assert dict(t.snomed_procedures) == {"23835007": "ect", "304891004": "psychotherapy"}
    assert dict(t.snomed_procedure_detail) == {"304891004": "cbt"}
    assert {k: v[0] for k, v in t.export_icd_diagnosis.items()} == FORMER_EXPORT_DIAGNOSIS
    assert {k: v[0] for k, v in t.export_severity.items()} == {
        "mild": "255604002",
        "moderate": "6736007",
        "severe": "24484000",
        "severe_psychotic": "24484000",
    }
    assert dict(t.export_procedure) == {
        "ect": ("cpt", "90870"),
        "rtms": ("cpt", "90868"),
        "esketamine": ("hcpcs", "G2082"),
    }
    assert t.status_observation["pregnant"][0] == "82810-3"
    assert t.status_observation["breastfeeding"][0] == "63895-7"
    assert t.status_answer[("pregnant", True)][0] == "LA15173-0"
    assert t.status_answer[("pregnant", False)][0] == "LA26683-5"
    assert t.status_answer[("breastfeeding", True)][0] == "LA29252-6"
    assert t.icd_pregnancy == ("Z331", "O") and t.snomed_pregnancy == {"77386006"}


def test_the_tables_are_built_once_per_knowledge_base(
    kb: Knowledge, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRDNAV_PROTOCOLS_DIR", raising=False)
    assert codes.tables(kb) is codes.tables(kb)
    other = load_knowledge()
    assert codes.tables(other) is not codes.tables(kb)
    assert codes.tables(other) == codes.tables(kb)


@pytest.mark.parametrize("name", ["ehr_requests", "statements_free_text", "example10_ehr"])
def test_the_example_bundles_import_the_same_with_a_fresh_knowledge_base(
    name: str, kb: Knowledge, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRDNAV_PROTOCOLS_DIR", raising=False)
    data = getattr(fhir_bundles, name)()
    today = date(2025, 1, 15)
    first = import_fhir(data, kb, today)
    again = import_fhir(data, load_knowledge(), today)
    assert first.history == again.history and first.report == again.report


def test_the_status_observations_the_export_writes_must_be_there(
    codes_dir: Path, kb: Knowledge
) -> None:
    _edit(codes_dir, "patient.yaml", "patient_status", lambda r: r.remove(_row(r, "LA26683-5")))
    _one_problem(codes_dir, kb, "patient.yaml", "patient_status", "pregnant answer false")
