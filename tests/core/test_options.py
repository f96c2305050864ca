"""The options planner: each rule fires, and only when it should; ranking is deterministic."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.builders import HistoryBuilder, a_history
from tests.strategies import builders
from trdnav.core.assessment import assess
from trdnav.core.history import FAILED_OUTCOMES, History
from trdnav.core.options import STATUS_ORDER, OptionResult, plan_options
from trdnav.errors import Problem
from trdnav.knowledge.load import Knowledge, default_knowledge
from trdnav.knowledge.options import REQUIRED_OPTIONS, load_options

KB = default_knowledge()


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str
    message: str
    citations: tuple[str, ...] = ()
    verified: bool = False


def plan(b: HistoryBuilder | History, **kw: Any) -> dict[str, OptionResult]:
    h = b if isinstance(b, History) else b.build()
    return {r.id: r for r in plan_options(h, assess(h, KB), KB, **kw)}


def recent() -> HistoryBuilder:
    """An episode that started recently, so it is not chronic."""
    b = a_history().episode(onset=date(2023, 10, 1))
    b.cursor = date(2023, 10, 15)
    return b


# --- knowledge ---------------------------------------------------------------------------------


def test_every_required_option_is_present(kb: Knowledge):
    assert set(REQUIRED_OPTIONS) <= set(kb.options.options)


def test_every_figure_has_a_citation_key_that_resolves(kb: Knowledge):
    for option in kb.options.options.values():
        for fig in option.outcomes:
            assert fig.source and all(k in kb.bibliography for k in fig.source), option.id
        for g in option.guidelines:
            assert all(k in kb.bibliography for k in g.source), option.id
        assert all(d in kb.drugs for d in option.drugs), option.id


def test_patient_summaries_make_no_promises(kb: Knowledge):
    for option in kb.options.options.values():
        text = option.summary_plain.lower()
        assert not any(
            w in text for w in ("will cure", "guarantee", "always works", "will make you better")
        ), option.id


def test_investigational_options_are_labelled_and_never_recommended(kb: Knowledge):
    psilo = kb.options.options["psilocybin_trial"]
    assert psilo.investigational and "trial" in psilo.name
    r = plan(a_history().trial("sertraline", 150).trial("venlafaxine", 225))["psilocybin_trial"]
    assert r.status == "consider" and "investigational" in r.reasons[0]


def _copy_data(tmp_path: Path) -> Path:
    src = Path(__file__).parents[2] / "src" / "trdnav" / "knowledge" / "data"
    root = tmp_path / "data"
    shutil.copytree(src / "options", root / "options")
    shutil.copytree(src / "drugs", root / "drugs")
    return root


def test_the_loader_reports_every_defect_with_its_file(tmp_path: Path):
    root = _copy_data(tmp_path)
    ect = root / "options" / "ect.yaml"
    ect.write_text(ect.read_text().replace("id: ect", "id: ect_x"))
    ssri = root / "options" / "switch_ssri.yaml"
    ssri.write_text(ssri.read_text().replace("- sertraline", "- sertralinex"))
    (root / "options" / "vns.yaml").write_text("id: [unclosed")
    (root / "options" / "exercise.yaml").write_text("id: exercise\nname: x\n")
    (root / "options" / "rtms.yaml").unlink()
    problems: list[Problem] = []
    assert load_options(root, problems) is None
    codes = {(Path(p.file or "").name, p.code) for p in problems}
    assert ("ect.yaml", "id_mismatch") in codes
    assert ("switch_ssri.yaml", "unknown_drug") in codes
    assert ("vns.yaml", "yaml_invalid") in codes
    assert ("exercise.yaml", "knowledge_invalid") in codes
    assert ("options", "option_missing") in codes


def test_an_investigational_option_cannot_carry_a_recommend_threshold(tmp_path: Path):
    root = _copy_data(tmp_path)
    p = root / "options" / "psilocybin_trial.yaml"
    p.write_text(p.read_text() + "recommend_after_failures: 2\n")
    problems: list[Problem] = []
    assert load_options(root, problems) is None
    assert [p.code for p in problems] == ["knowledge_invalid", "option_missing"]


def test_a_switch_option_needs_candidates(tmp_path: Path):
    root = _copy_data(tmp_path)
    p = root / "options" / "switch_maoi.yaml"
    text = p.read_text()
    start = text.index("drugs:")
    end = text.index("guidelines:")
    p.write_text(text[:start] + text[end:])
    problems: list[Problem] = []
    assert load_options(root, problems) is None
    assert [p.code for p in problems] == ["no_candidates"]


# --- rule 1: thresholds ------------------------------------------------------------------------


def test_nothing_is_recommended_for_a_first_episode_without_trials():
    out = plan(recent())
    assert {r.id for r in out.values() if r.status == "recommended"} == set()
    assert out["optimize_dose"].reasons == ("no antidepressant trial on record",)


def test_a_switch_is_recommended_after_one_failed_adequate_trial():
    out = plan(recent().trial("sertraline", 150))
    assert out["switch_snri"].status == "recommended"
    assert out["switch_tca"].status == "consider"  # needs 2
    assert out["switch_maoi"].status == "consider"  # needs 3


def test_an_add_on_is_recommended_only_after_a_partial_response():
    partial = plan(recent().trial("sertraline", 150, outcome="partial_response"))
    none = plan(recent().trial("sertraline", 150, outcome="no_response"))
    assert partial["augment_aripiprazole"].status == "recommended"
    assert "partial response" in partial["augment_aripiprazole"].reasons[0]
    assert none["augment_aripiprazole"].status == "consider"


def test_rapid_acting_and_neuromodulation_wait_for_trd():
    one = plan(recent().trial("sertraline", 150))
    two = plan(recent().trial("sertraline", 150).trial("venlafaxine", 225))
    for oid in ("esketamine", "ketamine_iv", "rtms", "ect"):
        assert one[oid].status == "consider" and "reserved for TRD" in one[oid].reasons[0]
        assert two[oid].status == "recommended" and two[oid].reasons[0].startswith("TRD")


# --- rule 2: dose optimisation -----------------------------------------------------------------


def test_optimise_dose_when_the_trial_is_too_short_and_below_max():
    r = plan(recent().trial("sertraline", 100, weeks=2, outcome="unknown"))["optimize_dose"]
    assert r.status == "recommended" and r.drugs == ("sertraline",)
    assert "not yet been adequate" in r.reasons[-1]


def test_optimise_dose_after_a_partial_response_below_max():
    r = plan(recent().trial("sertraline", 100, outcome="partial_response"))["optimize_dose"]
    assert r.status == "recommended" and "partial response" in r.reasons[-1]


def test_no_dose_optimisation_at_the_usual_maximum_or_after_an_adequate_non_response():
    at_max = plan(recent().trial("sertraline", 200, outcome="partial_response"))["optimize_dose"]
    assert at_max.status == "consider" and "usual maximum" in at_max.reasons[-1]
    flat = plan(recent().trial("sertraline", 100))["optimize_dose"]
    assert flat.status == "consider" and "no response" in flat.reasons[-1]


def test_no_dose_optimisation_when_the_dose_is_unrecorded():
    r = plan(recent().trial("sertraline", None, outcome="unknown"))["optimize_dose"]
    assert r.status == "consider" and "not recorded" in r.reasons[-1]


# --- rule 3: failed drugs and classes ----------------------------------------------------------


def test_a_failed_drug_is_left_out_of_the_candidates():
    r = plan(recent().trial("sertraline", 150))["switch_ssri"]
    assert "sertraline" not in r.drugs and r.status == "recommended"
    assert any("leaves out sertraline" in x for x in r.reasons)


def test_an_option_whose_only_drug_failed_is_already_tried_not_contraindicated():
    out = plan(recent().trial("bupropion", 300))
    for oid in ("switch_bupropion", "augment_bupropion"):
        assert out[oid].status == "already_tried" and out[oid].drugs == ()
        tried = [r for r in out[oid].reasons if r.startswith("already tried: ")]
        assert tried and "bupropion" in tried[0] and "no response" in tried[0]
        assert not any(r.startswith("safety (contraindicated)") for r in out[oid].reasons)


def test_the_current_drug_is_not_a_switch_candidate():
    b = recent().trial("vortioxetine", 10, weeks=3, outcome="unknown")
    b.data["treatments"][-1]["stop"] = None
    r = plan(b)["switch_vortioxetine"]
    assert r.status == "not_indicated_now"
    assert "vortioxetine is the current antidepressant" in r.reasons


def test_two_failures_in_one_class_demote_a_switch_within_it():
    two = plan(recent().trial("sertraline", 150).trial("escitalopram", 20))
    assert two["switch_ssri"].status == "consider"
    assert any("ssri class" in x for x in two["switch_ssri"].reasons)
    assert two["switch_snri"].status == "recommended"
    one = plan(recent().trial("sertraline", 150).trial("venlafaxine", 225))
    assert one["switch_ssri"].status == "recommended"


# --- rules 4-8: the patient --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda b: b.episode(severity="severe_psychotic"), "psychotic features"),
        (lambda b: b.condition("catatonia"), "catatonia"),
        (lambda b: b.condition("poor_oral_intake"), "poor food or fluid intake"),
        (
            lambda b: b.data.__setitem__(
                "clinician_alerts", [{"date": date(2024, 5, 1), "severity": "high"}]
            ),
            "suicide-risk",
        ),
    ],
)
def test_ect_moves_up_when_urgent(change: Any, why: str):
    b = recent()
    change(b)
    out = plan_options(b.build(), assess(b.build(), KB), KB)
    ect = next(r for r in out if r.id == "ect")
    assert ect.status == "recommended" and ect.rank == 1
    assert why in ect.reasons[-1]


def test_a_high_non_suicide_alert_does_not_move_ect_up():
    from trdnav.core.alerts import Alert

    h = recent().episode(severity="severe").build()
    a = assess(h, KB)
    high = Alert(
        code="serotonin_syndrome_risk",
        severity="high",
        message="test",
        date=date(2024, 5, 1),
        route="safety",
        citation="test",
        citations=(),
        verified=True,
    )
    out = {r.id: r for r in plan_options(h, a.model_copy(update={"alerts": (high,)}), KB)}
    assert out["ect"].status == "consider"
    assert not any("suicide" in x for x in out["ect"].reasons)


def test_ect_is_not_moved_up_without_an_urgent_reason():
    out = plan(recent().episode(severity="severe"))
    assert out["ect"].status == "consider" and not any("moved up" in x for x in out["ect"].reasons)


def test_cbasp_is_recommended_for_chronic_depression_only():
    chronic = plan(a_history().episode(onset=date(2021, 1, 1)).trial("sertraline", 150))
    assert chronic["psychotherapy_cbasp"].status == "recommended"
    assert plan(recent().trial("sertraline", 150))["psychotherapy_cbasp"].status == "consider"


def test_trauma_focused_therapy_for_ptsd_or_a_positive_pcl5():
    assert plan(recent().condition("ptsd"))["trauma_focused_therapy"].status == "recommended"
    b = recent()
    b.data["measurements"] = [{"instrument": "PCL-5", "date": date(2024, 5, 1), "total": 50}]
    r = plan(b)["trauma_focused_therapy"]
    assert r.status == "recommended" and "PCL-5" in r.reasons[-1]
    b.data["measurements"][0]["total"] = 10
    assert plan(b)["trauma_focused_therapy"].status == "consider"


def test_sleep_care_for_insomnia_or_untreated_sleep_apnoea():
    assert plan(recent().condition("insomnia"))["sleep_intervention"].status == "recommended"
    untreated = plan(recent().condition("sleep_apnea"))["sleep_intervention"]
    assert untreated.status == "recommended" and "apnoea" in untreated.reasons[-1]
    treated = plan(recent().condition("sleep_apnea", "treated"))["sleep_intervention"]
    assert treated.status == "consider"
    assert treated.line == "no guideline placement stored" and treated.evidence == ()


def test_pgx_testing_is_raised_by_repeated_failure_and_lowered_by_results_on_record():
    plain = plan(recent())["pgx_testing"]
    assert plain.reasons == ("not tied to a number of failed trials: consider on clinical grounds",)
    two = recent().trial("sertraline", 150).trial("venlafaxine", 225)
    raised = plan(two)["pgx_testing"]
    assert raised.status == "consider" and "may inform dosing" in raised.reasons[-1]
    intolerant = plan(recent().trial("sertraline", 50, weeks=2, outcome="intolerance"))
    assert "1 stopped for intolerance" in intolerant["pgx_testing"].reasons[-1]
    two.data["pgx"] = [{"gene": "CYP2D6", "phenotype": "poor"}]
    lowered = plan(two)["pgx_testing"]
    assert "already on record (CYP2D6)" in lowered.reasons[-1]
    assert lowered.rank > raised.rank


def test_bipolar_depression_takes_antidepressant_options_off_the_plan_for_now():
    out = plan(recent().episode(diagnosis="bipolar_ii_depression").trial("sertraline", 150))
    for oid in ("switch_snri", "switch_bupropion", "augment_mirtazapine", "esketamine"):
        assert out[oid].status == "not_indicated_now"
        assert any("bipolar" in r for r in out[oid].reasons)
    assert out["switch_snri"].reasons[0] == "1 failed adequate trial(s) on record"
    partial = plan(
        recent().episode(diagnosis="bipolar_i_depression").trial("sertraline", 100, weeks=2)
    )
    assert partial["optimize_dose"].status == "not_indicated_now"
    unipolar = plan(recent().trial("sertraline", 150))
    assert unipolar["switch_snri"].status == "recommended"
    assert not any(o.startswith("bipolar_") for o in unipolar)


def test_a_treatment_already_tried_without_response_is_marked_already_tried():
    b = recent().trial("sertraline", 150).trial("venlafaxine", 225).ect()
    r = plan(b)["ect"]
    assert r.status == "already_tried"
    assert "already tried in this episode: ect " in r.reasons[-1]
    assert "no response" in r.reasons[-1]


# --- rule 9: safety findings -------------------------------------------------------------------


def test_safety_findings_set_the_status_and_add_their_reasons():
    b = recent().trial("sertraline", 150)
    out = plan(
        b,
        findings={
            "switch_snri": [Finding("X", "contraindicated", "not with this", ("lam_2024_canmat",))],
            "switch_bupropion": [Finding("Y", "caution", "watch blood pressure")],
            "switch_vortioxetine": [Finding("Z", "info", "take with food")],
        },
    )
    assert out["switch_snri"].status == "contraindicated"
    assert "lam_2024_canmat" in out["switch_snri"].citations
    assert out["switch_bupropion"].status == "caution"
    assert "watch blood pressure" in out["switch_bupropion"].reasons[-1]
    assert out["switch_vortioxetine"].status == "recommended"
    assert out["switch_snri"].rank > out["switch_bupropion"].rank > out["switch_vortioxetine"].rank


# --- results -----------------------------------------------------------------------------------


def test_every_result_carries_its_line_evidence_and_citations():
    out = plan(recent().trial("sertraline", 150).trial("venlafaxine", 225))
    assert sorted(r.rank for r in out.values()) == list(range(1, len(out) + 1))
    esk = out["esketamine"]
    assert esk.line.startswith("CANMAT 2023:")
    assert esk.evidence and all(e.citation == KB.citation(e.citation_key) for e in esk.evidence)
    assert all(e.citation_key in esk.citations for e in esk.evidence)
    assert esk.summary_plain and esk.specialist


# --- properties --------------------------------------------------------------------------------


def _failed(h: History) -> set[str]:
    a = assess(h, KB)
    return {v.drug for v in a.trials if v.adequate is True and v.outcome in FAILED_OUTCOMES}


@given(builders(max_trials=4))
def test_a_failed_adequate_drug_is_never_in_a_recommended_option(b: HistoryBuilder):
    h = b.build()
    failed = _failed(h)
    for r in plan_options(h, assess(h, KB), KB):
        if r.status == "recommended" and r.category != "optimise":
            assert not failed & set(r.drugs), r.id


@given(
    builders(max_trials=3),
    st.sampled_from(sorted(KB.options.options)),
    st.sampled_from(["contraindicated", "caution", "info"]),
)
def test_a_finding_never_improves_an_option(b: HistoryBuilder, oid: str, severity: str):
    h = b.build()
    a = assess(h, KB)
    before = {r.id: r.status for r in plan_options(h, a, KB)}
    after = {
        r.id: r.status
        for r in plan_options(h, a, KB, findings={oid: [Finding("T", severity, "m")]})
    }
    if oid not in before:  # a bipolar-depression option, left out of a unipolar plan
        assert KB.options.options[oid].applies_to == "bipolar" and oid not in after
        return
    assert STATUS_ORDER[after[oid]] >= STATUS_ORDER[before[oid]]
    if severity == "contraindicated":
        assert after[oid] == "contraindicated"
    if severity == "caution":
        assert STATUS_ORDER[after[oid]] >= STATUS_ORDER["caution"]
    assert {k: v for k, v in after.items() if k != oid} == {
        k: v for k, v in before.items() if k != oid
    }


@given(builders(max_trials=4), st.randoms(use_true_random=False))
def test_ranking_is_deterministic_and_ignores_treatment_order(b: HistoryBuilder, rnd: Any):
    data = b.raw()
    shuffled = dict(data, treatments=list(data["treatments"]))
    rnd.shuffle(shuffled["treatments"])
    h1, h2 = History.model_validate(data), History.model_validate(shuffled)
    first = plan_options(h1, assess(h1, KB), KB)
    again = plan_options(h1, assess(h1, KB), KB)
    moved = plan_options(h2, assess(h2, KB), KB)
    assert first == again
    assert [(r.id, r.status, r.drugs) for r in first] == [(r.id, r.status, r.drugs) for r in moved]
