"""Vignettes, one per plan state: the plan follows where the patient is now.

Each ``tests/golden/plan_states/*.yaml`` holds a history written from a guideline sentence and the
expectations a TRD specialist would have of its plan (the step, the top options and their status,
statuses that must hold). The ranked plan is also kept as a golden snapshot
(``<name>.plan.txt``); regenerate after an intended change with ``TRDNAV_UPDATE_GOLDEN=1`` and
review the diff.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from trdnav.core.assessment import Assessment, assess
from trdnav.history_files import parse_history
from trdnav.knowledge.load import default_knowledge

KB = default_knowledge()
HERE = Path(__file__).resolve().parents[1] / "golden" / "plan_states"
VIGNETTES = sorted(HERE.glob("*.yaml"))


def _load(path: Path) -> tuple[dict[str, Any], Assessment]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    history = parse_history(data["history"], KB, date(2024, 6, 1), file=str(path))
    return data, assess(history, KB)


def _snapshot(a: Assessment) -> str:
    s = a.plan_context
    assert s is not None
    lines = [f"step: {s.step} ({s.label})", f"drug: {s.drug}", f"response: {s.response}"]
    lines.append(f"detail: {s.response_detail}")
    if s.ladder:
        lines.append(f"ladder: {s.ladder}")
    lines += [f"{o.rank:>2} {o.status:<17} {o.id}" for o in a.options]
    return "\n".join(lines) + "\n"


def test_there_is_a_vignette_for_every_plan_step():
    steps = {yaml.safe_load(p.read_text())["expect"]["step"] for p in VIGNETTES}
    assert steps == set(KB.plan.pathway.states)
    assert len(VIGNETTES) >= 12


@pytest.mark.parametrize("path", VIGNETTES, ids=[p.stem for p in VIGNETTES])
def test_the_plan_reads_as_the_guideline_says(path: Path):
    data, a = _load(path)
    expect = data["expect"]
    s = a.plan_context
    assert s is not None
    assert s.step == expect["step"], s.explanations
    if "response" in expect:
        assert s.response == expect["response"]
    if "trd" in expect:
        assert a.trd.status == expect["trd"]
    if expect.get("ladder"):
        assert s.ladder and "bipolar" in s.ladder.lower()
    for flag in expect.get("flags", ()):
        assert flag in a.trd.flags
    if "trial_outcome" in expect:
        assert a.trials[s.trial_index or 0].outcome.value == expect["trial_outcome"]
    by_id = {o.id: o for o in a.options}
    for rank, (oid, status) in enumerate(expect.get("top", ()), start=1):
        assert a.options[rank - 1].id == oid, [o.id for o in a.options[:5]]
        assert a.options[rank - 1].status == status
    for oid, status in expect.get("status", {}).items():
        assert by_id[oid].status == status, (oid, by_id[oid].reasons)
    for oid, text in expect.get("reason_contains", {}).items():
        assert any(text in r for r in by_id[oid].reasons), by_id[oid].reasons
    if "input_note_contains" in expect:
        assert any(expect["input_note_contains"] in n for n in a.input_notes), a.input_notes
    # history is never a safety verdict: nothing is contraindicated without a safety finding
    for o in a.options:
        if o.status == "contraindicated":
            assert any(r.startswith("safety (contraindicated)") for r in o.reasons), o.id


@pytest.mark.parametrize("path", VIGNETTES, ids=[p.stem for p in VIGNETTES])
def test_the_ranked_plan_matches_its_golden_snapshot(path: Path):
    _, a = _load(path)
    golden = path.with_suffix(".plan.txt")
    text = _snapshot(a)
    if os.environ.get("TRDNAV_UPDATE_GOLDEN"):
        golden.write_text(text, encoding="utf-8")
    assert golden.exists(), f"missing golden file {golden}; run with TRDNAV_UPDATE_GOLDEN=1"
    assert text == golden.read_text(encoding="utf-8")
