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
