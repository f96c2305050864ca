"""The example patients: expected verdicts, and golden JSON reports reviewed as diffs.

Regenerate after an intended change with ``TRDNAV_UPDATE_GOLDEN=1 make unit`` and review the diff.
"""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import pytest

from trdnav.core.assessment import assess
from trdnav.history_files import load_history

ROOT = Path(__file__).parents[2]
GOLDEN = ROOT / "tests" / "golden" / "assess"
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))

EXPECTED = {
    "01-not-trd-first-trial": ("not_trd", 1, set(), 1),
    "02-trd-within-one-class": ("trd", 2, {"complete_resistance"}, 1),
    "03-trd-across-classes-augmented": ("trd", 2, {"partial_resistance", "chronic"}, 2),
    "04-pseudo-resistance": ("not_trd", 0, {"pseudo_resistance_suspected"}, 0),
    "05-chronic-trd": ("trd", 4, {"partial_resistance", "chronic"}, 2),
    "06-tachyphylaxis": ("not_trd", 1, {"tachyphylaxis", "chronic"}, 1),
    "07-bipolar-on-record": ("trd", 2, {"complete_resistance", "bipolarity_on_record"}, 2),
    "08-ect-history": ("trd", 4, {"complete_resistance", "chronic"}, 5),
    "09-indeterminate": ("indeterminate", 1, set(), 1),
    "10-measured-course": ("trd", 2, {"complete_resistance"}, 2),
    "11-plan-two-ssris-failed": ("trd", 2, {"complete_resistance"}, 1),
    "12-plan-partial-response-snri": ("trd", 2, {"partial_resistance"}, 2),
    "13-plan-uncontrolled-hypertension": ("trd", 3, {"complete_resistance"}, 2),
    "14-plan-aneurysm": ("trd", 3, {"chronic", "complete_resistance"}, 2),
    "15-plan-psychotic-depression": ("trd", 2, {"complete_resistance"}, 2),
    "16-plan-after-fluoxetine": ("trd", 3, {"chronic", "complete_resistance"}, 2),
    "17-plan-seizures-eating-disorder": ("trd", 2, {"partial_resistance"}, 2),
    "18-plan-pregnancy": ("trd", 2, {"complete_resistance"}, 2),
    "19-plan-bipolarity-suspected": ("trd", 2, {"complete_resistance"}, 2),
    "20-plan-medical-causes": ("trd", 2, {"complete_resistance"}, 2),
    "21-plan-pgx-poor-metaboliser": ("trd", 2, {"partial_resistance"}, 1),
    "22-plan-chronic-implant": ("trd", 2, {"chronic", "complete_resistance"}, 2),
}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_each_example_gets_the_verdict_a_clinician_expects(kb, path):
    a = assess(load_history(path, kb, date(2024, 6, 1)), kb)
    status, failed, flags, thase_rush = EXPECTED[path.stem]
    assert a.trd.status == status
    assert a.trd.failed_adequate_trials == failed
    assert set(a.trd.flags) == flags
    assert a.staging["thase_rush"].stage == thase_rush


def test_every_example_has_an_expectation():
    assert {p.stem for p in EXAMPLES} == set(EXPECTED)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_reports_match_their_golden_files(kb, path):
    a = assess(load_history(path, kb, date(2024, 6, 1)), kb)
    got = (
        json.dumps(a.model_dump(mode="json", exclude={"app_version"}), indent=2, sort_keys=True)
        + "\n"
    )
    golden = GOLDEN / f"{path.stem}.json"
    if os.environ.get("TRDNAV_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(got)
    assert golden.exists(), f"missing golden file {golden}; run with TRDNAV_UPDATE_GOLDEN=1"
    assert got == golden.read_text()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_text_reports_match_their_golden_files(kb, path):
    from rich.console import Console

    from trdnav.reports.text import render_assessment

    a = assess(load_history(path, kb, date(2024, 6, 1)), kb)
    console = Console(width=100, record=True, color_system=None, file=open(os.devnull, "w"))
    console.print(render_assessment(a))
    console.file.close()
    got = "\n".join(line.rstrip() for line in console.export_text().splitlines()) + "\n"
    golden = GOLDEN / f"{path.stem}.txt"
    if os.environ.get("TRDNAV_UPDATE_GOLDEN"):
        golden.write_text(got)
    assert golden.exists(), f"missing golden file {golden}; run with TRDNAV_UPDATE_GOLDEN=1"
    assert got == golden.read_text()


# What a clinician expects of each planner example: (alerts that must be raised, options that
# must be contraindicated, an option that must rank first or be recommended).
PLANS = {
    "11-plan-two-ssris-failed": (set(), set(), None),
    "12-plan-partial-response-snri": (set(), set(), "optimize_dose"),
    "13-plan-uncontrolled-hypertension": ({"uncontrolled_hypertension"}, set(), None),
    "14-plan-aneurysm": (set(), {"esketamine", "ketamine_iv"}, None),
    "15-plan-psychotic-depression": ({"suicide_risk"}, set(), "ect"),
    "16-plan-after-fluoxetine": (set(), {"switch_maoi"}, None),
    "17-plan-seizures-eating-disorder": (set(), {"switch_bupropion", "augment_bupropion"}, None),
    "18-plan-pregnancy": ({"pregnancy"}, set(), None),
    "19-plan-bipolarity-suspected": ({"bipolarity_suspected", "re_evaluation_due"}, set(), None),
    "20-plan-medical-causes": ({"re_evaluation_due"}, set(), None),
    "21-plan-pgx-poor-metaboliser": ({"qtc_dose_cap"}, set(), None),
    "22-plan-chronic-implant": ({"inadequate_trials"}, {"rtms"}, "psychotherapy_cbasp"),
}


@pytest.mark.parametrize("stem", sorted(PLANS))
def test_each_planner_example_gets_the_plan_a_clinician_expects(kb, stem):
    a = assess(load_history(ROOT / "examples" / f"{stem}.yaml", kb, date(2024, 6, 1)), kb)
    alerts, contraindicated, first = PLANS[stem]
    assert alerts <= {x.code for x in a.alerts}
    assert contraindicated <= {o.id for o in a.options if o.status == "contraindicated"}
    if first is not None:
        assert a.options[0].id == first
    assert [o.rank for o in a.options] == list(range(1, len(a.options) + 1))


def test_the_pregnancy_example_never_recommends_ketamine_or_esketamine(kb):
    path = ROOT / "examples" / "18-plan-pregnancy.yaml"
    a = assess(load_history(path, kb, date(2024, 6, 1)), kb)
    status = {o.id: o.status for o in a.options}
    assert status["esketamine"] != "recommended" and status["ketamine_iv"] != "recommended"


def test_the_medical_causes_example_shows_abnormal_thyroid_and_b12(kb):
    path = ROOT / "examples" / "20-plan-medical-causes.yaml"
    a = assess(load_history(path, kb, date(2024, 6, 1)), kb)
    abnormal = {w.id for w in a.workup if w.status == "abnormal"}
    assert any("thyroid" in i for i in abnormal) and any("b12" in i for i in abnormal)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_example_plans_match_their_golden_files(kb, path):
    from rich.console import Console

    from trdnav.reports.text import render_plan

    a = assess(load_history(path, kb, date(2024, 6, 1)), kb)
    with open(os.devnull, "w") as sink:
        console = Console(width=100, record=True, color_system=None, file=sink)
        console.print(render_plan(a))
    got = "\n".join(line.rstrip() for line in console.export_text().splitlines()) + "\n"
    golden = ROOT / "tests" / "golden" / "plan" / f"{path.stem}.txt"
    if os.environ.get("TRDNAV_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(got)
    assert golden.exists(), f"missing golden file {golden}; run with TRDNAV_UPDATE_GOLDEN=1"
    assert got == golden.read_text()
