"""The pseudo-resistance workup: each cause's status at its boundaries, unit conversion, CPIC."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest

from tests.builders import AS_OF, a_history
from trdnav.core.assessment import assess
from trdnav.core.history import Lab
from trdnav.core.measures import score_measurements
from trdnav.core.workup import (
    WorkupItem,
    pgx_recommendations,
    read_lab,
    workup,
    workup_input_problems,
)

DAY = date(2024, 5, 1)
MDQ_POSITIVE = [1] * 7 + [0] * 6 + [1, 2]
MDQ_NEGATIVE = [1] * 6 + [0] * 7 + [1, 2]


def _items(kb: Any, b: Any) -> dict[str, WorkupItem]:
    h = b.build()
    a = assess(h, kb)
    return {i.id: i for i in workup(h, score_measurements(h, kb), a.trials, AS_OF, kb)}


def _lab(test: str, value: float, unit: str, day: date = DAY) -> dict[str, Any]:
    return {"test": test, "value": value, "unit": unit, "date": day}


def _with(**extra: Any) -> Any:
    b = a_history().trial("sertraline", 150)
    for key, value in extra.items():
        b.data[key] = value
    return b


def test_every_cause_is_missing_for_a_bare_history(kb):
    items = _items(kb, a_history())
    assert list(items) == [c.id for c in kb.workup.checklist]
    for item in items.values():
        assert item.status == "missing"
        assert item.suggestion
        assert item.citations
        assert all(k in kb.bibliography for k in item.citations)


@pytest.mark.parametrize(
    ("value", "unit", "status"),
    [
        (199, "pg/mL", "abnormal"),
        (350, "pg/mL", "normal"),
        (349, "ng/L", "abnormal"),
        (147, "pmol/L", "abnormal"),  # 147 x 1.355 = 199 pg/mL
        (149, "pmol/L", "abnormal"),  # 202 pg/mL: borderline
        (259, "pmol/L", "normal"),  # 351 pg/mL
    ],
)
def test_b12_is_compared_in_pg_per_ml_whatever_the_unit(kb, value, unit, status):
    items = _items(kb, _with(labs=[_lab("vitamin B12", value, unit)]))
    assert items["b12"].status == status
    assert items["b12"].suggestion if status == "abnormal" else items["b12"].suggestion is None


@pytest.mark.parametrize(
    ("test", "value", "unit", "canonical"),
    [
        ("B12", 738, "pmol/L", 1000.0),
        ("vitamin D", 49.92, "nmol/L", 20.0),
        ("folate", 6.798, "nmol/L", 3.0),
        ("hb", 120, "g/L", 12.0),
        ("CRP", 0.5, "mg/dL", 5.0),
        ("TSH", 2.0, "µIU/mL", 2.0),
        ("ferritin", 30, "ug/L", 30.0),
    ],
)
def test_units_convert_to_the_canonical_unit(kb, test, value, unit, canonical):
    reading = read_lab(Lab(test=test, value=value, unit=unit, date=DAY), kb)
    assert reading is not None
    assert reading.canonical_value == pytest.approx(canonical, rel=2e-3)


def test_an_unknown_lab_is_not_read(kb):
    assert read_lab(Lab(test="sodium", value=140, unit="mmol/L", date=DAY), kb) is None


@pytest.mark.parametrize(
    ("cause", "test", "value", "unit", "status"),
    [
        ("thyroid", "TSH", 4.1, "mIU/L", "abnormal"),
        ("thyroid", "TSH", 4.0, "mIU/L", "normal"),
        ("thyroid", "TSH", 0.39, "mIU/L", "abnormal"),
        ("folate", "folate", 2.9, "ng/mL", "abnormal"),
        ("folate", "folate", 3.0, "ng/mL", "normal"),
        ("vitamin_d", "25-OH vitamin D", 19.9, "ng/mL", "abnormal"),
        ("vitamin_d", "25-OH vitamin D", 50, "nmol/L", "normal"),
        ("vitamin_d", "25-OH vitamin D", 101, "ng/mL", "abnormal"),
        ("iron", "ferritin", 29, "ng/mL", "abnormal"),
        ("iron", "ferritin", 30, "ng/mL", "normal"),
        ("iron", "haemoglobin", 11.9, "g/dL", "abnormal"),  # the builder's patient is female
        ("iron", "haemoglobin", 12.0, "g/dL", "normal"),
        ("inflammation", "CRP", 3.1, "mg/L", "abnormal"),
        ("inflammation", "CRP", 3.0, "mg/L", "normal"),
    ],
)
def test_lab_boundaries(kb, cause, test, value, unit, status):
    items = _items(kb, _with(labs=[_lab(test, value, unit)]))
    assert items[cause].status == status
    assert DAY.isoformat() in items[cause].evidence[0]


def test_haemoglobin_threshold_depends_on_sex(kb):
    b = _with(labs=[_lab("Hb", 12.5, "g/dL")])
    assert _items(kb, b)["iron"].status == "normal"
    b.data["patient"]["sex"] = "male"
    assert _items(kb, b)["iron"].status == "abnormal"
    b.data["patient"]["sex"] = "unknown"
    assert _items(kb, b)["iron"].status == "normal"


def test_the_latest_lab_decides(kb):
    labs = [_lab("TSH", 9, "mIU/L", date(2023, 1, 1)), _lab("TSH", 2, "mIU/L", DAY)]
    assert _items(kb, _with(labs=labs))["thyroid"].status == "normal"


def test_a_condition_on_record_is_abnormal(kb):
    items = _items(kb, a_history().condition("hypothyroidism", "treated").condition("ptsd"))
    assert items["thyroid"].status == "abnormal"
    assert "treated" in items["thyroid"].finding
    assert items["ptsd"].status == "abnormal"


@pytest.mark.parametrize(
    ("answers", "status"), [(MDQ_POSITIVE, "abnormal"), (MDQ_NEGATIVE, "normal")]
)
def test_mdq_screen_decides_bipolar_spectrum(kb, answers, status):
    b = _with(measurements=[{"instrument": "MDQ", "date": DAY, "items": answers}])
    assert _items(kb, b)["bipolar_spectrum"].status == status


def test_a_bipolar_diagnosis_or_family_history_is_abnormal(kb):
    b = a_history().episode(diagnosis="bipolar_ii_depression")
    assert _items(kb, b)["bipolar_spectrum"].status == "abnormal"
    b = a_history().condition("bipolar_family_history")
    b.data["measurements"].append({"instrument": "MDQ", "date": DAY, "items": MDQ_NEGATIVE})
    assert _items(kb, b)["bipolar_spectrum"].status == "abnormal"


@pytest.mark.parametrize(("total", "status"), [(3, "abnormal"), (2, "normal")])
def test_audit_c_boundary_for_a_woman(kb, total, status):
    b = _with(measurements=[{"instrument": "AUDIT-C", "date": DAY, "total": total}])
    assert _items(kb, b)["substance_use"].status == status


def test_a_score_without_a_screen_rule_is_done(kb):
    b = _with(measurements=[{"instrument": "ISI", "date": DAY, "total": 10}])
    item = _items(kb, b)["sleep"]
    assert item.status == "done"
    assert item.suggestion is None


def test_adherence(kb):
    assert _items(kb, a_history().trial("sertraline", 150, adherence=0.9))["adherence"].status == (
        "normal"
    )
    poor = _items(kb, a_history().trial("sertraline", 150, adherence=0.79))["adherence"]
    assert poor.status == "abnormal"
    assert "sertraline" in poor.finding
    unknown = a_history().trial("sertraline", 150, adherence=None)
    assert _items(kb, unknown)["adherence"].status == "missing"


def test_inducers_among_current_medications(kb):
    meds = [{"drug": "Tegretol", "mg_per_day": 400}, {"drug": "ramipril"}]
    item = _items(kb, _with(current_medications=meds))["interacting_drugs"]
    assert item.status == "abnormal"
    assert "CYP3A4" in item.finding
    wort = _items(kb, _with(current_medications=[{"drug": "St. John's Wort"}]))
    assert wort["interacting_drugs"].status == "abnormal"
    clean = _items(kb, _with(current_medications=[{"drug": "ramipril"}]))
    assert clean["interacting_drugs"].status == "normal"


def test_cpic_recommendation_for_a_drug_tried(kb):
    b = a_history().trial("citalopram", 40)
    b.data["pgx"] = [{"gene": "cyp2c19", "phenotype": "Poor Metabolizer"}]
    h = b.build()
    recs = pgx_recommendations(h, kb)
    assert [(r.drug, r.gene, r.phenotype, r.context) for r in recs] == [
        ("citalopram", "CYP2C19", "poor", "tried")
    ]
    assert recs[0].verified  # the poor-metaboliser row was confirmed
    assert "20 mg/day" in recs[0].recommendation
    item = _items(kb, b)["pharmacogenomics"]
    assert item.status == "abnormal"
    assert "bousman_2023_cpic_ssri" in item.citations


def test_cpic_for_a_current_drug_and_two_genes(kb):
    b = a_history()
    b.data["current_medications"] = [{"drug": "sertraline", "mg_per_day": 100}]
    b.data["pgx"] = [
        {"gene": "CYP2B6", "phenotype": "IM"},
        {"gene": "CYP2C19", "phenotype": "NM"},
    ]
    recs = pgx_recommendations(b.build(), kb)
    assert {(r.gene, r.phenotype, r.context) for r in recs} == {
        ("CYP2B6", "intermediate", "current"),
        ("CYP2C19", "normal", "current"),
    }
    assert not any(r.verified for r in recs)


def test_pgx_status_normal_and_done(kb):
    b = a_history().trial("citalopram", 40)
    b.data["pgx"] = [{"gene": "CYP2C19", "phenotype": "normal"}]
    assert _items(kb, b)["pharmacogenomics"].status == "normal"
    b = a_history().trial("bupropion", 300)
    b.data["pgx"] = [{"gene": "CYP2D6", "phenotype": "poor"}]
    assert _items(kb, b)["pharmacogenomics"].status == "done"


def test_the_latest_pgx_report_per_gene_counts(kb):
    b = a_history().trial("citalopram", 40)
    b.data["pgx"] = [
        {"gene": "CYP2C19", "phenotype": "normal", "date": date(2024, 1, 1)},
        {"gene": "CYP2C19", "phenotype": "poor", "date": date(2020, 1, 1)},
    ]
    assert [r.phenotype for r in pgx_recommendations(b.build(), kb)] == ["normal"]


def test_every_cpic_drug_is_in_the_drug_knowledge(kb):
    for rule in kb.workup.cpic:
        assert set(rule.drugs) <= set(kb.drugs)
        assert set(rule.recommendations) == {p.id for p in kb.workup.genes[rule.gene].phenotypes}


def test_input_problems_name_the_field(kb):
    b = a_history()
    b.data["labs"] = [
        _lab("vitamin B12", 300, "mg"),
        _lab("ferritn", 20, "ng/mL"),
        _lab("CRP", -1, "mg/L"),
        _lab("TSH", 2000, "mIU/L"),
        _lab("TSH", 2, "mIU/L", date(2030, 1, 1)),
    ]
    b.data["pgx"] = [
        {"gene": "CYP2D7", "phenotype": "poor"},
        {"gene": "CYP2D6", "phenotype": "rapid"},
    ]
    b.data["current_medications"] = [{"drug": "x", "start": date(2030, 1, 1)}]
    problems = {p.loc: p for p in workup_input_problems(b.build(), kb, AS_OF)}
    assert set(problems) == {
        "labs[0].unit",
        "labs[1].test",
        "labs[2].value",
        "labs[3].value",
        "labs[4].date",
        "pgx[0].gene",
        "pgx[1].phenotype",
        "current_medications[0].start",
    }
    assert "pmol/L" in problems["labs[0].unit"].message
    assert "'ferritin'" in problems["labs[1].test"].message
    assert "'CYP2D6'" in problems["pgx[0].gene"].message
    assert "intermediate" in problems["pgx[1].phenotype"].message


def test_the_workup_loader_names_file_and_field(tmp_path):
    from trdnav.errors import Problem
    from trdnav.knowledge.workup import load_workup

    src = Path(__file__).parents[2] / "src/trdnav/knowledge/data/workup"
    folder = tmp_path / "workup"
    folder.mkdir()
    for f in src.glob("*.yaml"):
        (folder / f.name).write_text(f.read_text())
    problems: list[Problem] = []
    assert load_workup(tmp_path, problems) is not None
    assert problems == []

    text = (folder / "pgx.yaml").read_text().replace('"gene": "CYP2B6"', '"gene": "CYP9Z9"')
    (folder / "pgx.yaml").write_text(text)
    (folder / "checklist.yaml").write_text(
        (folder / "checklist.yaml").read_text().replace("labs: [crp]", "labs: [esr]")
    )
    assert load_workup(tmp_path, problems) is None
    assert {p.loc for p in problems} >= {"cpic[2].gene", "checklist.inflammation.labs"}

    problems.clear()
    (folder / "labs.yaml").write_text("labs: [1, 2\n")
    (folder / "extra.yaml").write_text("- a list\n")
    assert load_workup(tmp_path, problems) is None
    assert {p.code for p in problems} >= {"yaml_invalid", "knowledge_invalid"}


def test_a_strong_inhibitor_flags_phenoconversion(kb):
    b = a_history().trial("bupropion", 300)
    b.data["pgx"] = [{"gene": "CYP2D6", "phenotype": "normal"}]
    b.data["current_medications"] = [{"drug": "Paxil", "mg_per_day": 20}]
    item = _items(kb, b)["pharmacogenomics"]
    assert item.status == "abnormal"
    assert "phenoconversion possible: Paxil is a strong CYP2D6 inhibitor" in item.finding
    b.data["pgx"] = [{"gene": "CYP2D6", "phenotype": "poor"}]
    assert _items(kb, b)["pharmacogenomics"].status == "abnormal"  # paroxetine: CPIC row
