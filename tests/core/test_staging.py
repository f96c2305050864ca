"""Staging methods, including the worked examples of shared/reference."""

from __future__ import annotations

from datetime import date

import pytest

from tests.builders import a_history
from trdnav.core.assessment import assess


def _stage(kb, builder, method):  # type: ignore[no-untyped-def]
    return assess(builder.build(), kb).staging[method]


def test_worked_example_two_failed_ssris_are_thase_rush_stage_1_although_trd(kb):
    h = a_history().trial("sertraline", 200, weeks=10).trial("escitalopram", 20, weeks=8).build()
    a = assess(h, kb)
    assert a.trd.status == "trd"
    assert a.staging["thase_rush"].stage == 1


@pytest.mark.parametrize(
    ("drugs", "stage"),
    [
        ([], 0),
        (["sertraline"], 1),
        (["sertraline", "venlafaxine"], 2),
        (["sertraline", "nortriptyline"], 2),  # the TCA is the second class: stage II
        (["sertraline", "venlafaxine", "nortriptyline"], 3),
        (["sertraline", "venlafaxine", "nortriptyline", "phenelzine"], 4),
        (["sertraline", "venlafaxine", "phenelzine"], 2),  # MAOI without a TCA stage
    ],
)
def test_thase_rush_stages_build_on_each_other(kb, drugs, stage):
    b = a_history()
    for d in drugs:
        b.trial(d, kb.drugs[d].antidepressant_dose.usual_max_mg_per_day)
    assert _stage(kb, b, "thase_rush").stage == stage


def test_thase_rush_stage_5_needs_failed_bilateral_ect_on_top_of_stage_4(kb):
    b = a_history()
    for d in ("sertraline", "venlafaxine", "nortriptyline", "phenelzine"):
        b.trial(d, kb.drugs[d].antidepressant_dose.usual_max_mg_per_day)
    assert _stage(kb, b.ect(placement="right_unilateral"), "thase_rush").stage == 4
    assert _stage(kb, b.ect(placement="bilateral"), "thase_rush").stage == 5


def _mgh_worked(kb):  # type: ignore[no-untyped-def]
    esc = kb.drugs["escitalopram"].antidepressant_dose.min_adequate_mg_per_day
    ven = kb.drugs["venlafaxine"].antidepressant_dose.min_adequate_mg_per_day
    return (
        a_history()
        .trial("escitalopram", esc, weeks=8)
        .trial("venlafaxine", ven, weeks=10)
        .trial("aripiprazole", 5, weeks=6, augments="venlafaxine", start=date(2022, 5, 20))
    )


def test_worked_example_mgh_s_two_failures_and_an_augmentation_score_2_5(kb):
    assert _stage(kb, _mgh_worked(kb), "mgh_s").score == 2.5


def test_worked_example_mgh_s_adding_failed_ect_scores_5_5(kb):
    assert _stage(kb, _mgh_worked(kb).ect(), "mgh_s").score == 5.5


def test_mgh_s_gives_half_points_for_dose_and_duration_optimisation(kb):
    top = kb.drugs["sertraline"].antidepressant_dose.usual_max_mg_per_day
    s = _stage(kb, a_history().trial("sertraline", top, weeks=12), "mgh_s")
    assert s.score == 2.0
    assert {i.item for i in s.items} == {
        "failed_trial",
        "dose_optimisation",
        "duration_optimisation",
    }


def test_worked_example_maudsley_31_months_severe_two_failures_augmented_scores_9(kb):
    b = (
        a_history()
        .episode(onset=date(2021, 11, 1), severity="severe")
        .trial("sertraline", 150)
        .trial("venlafaxine", 150)
        .trial("aripiprazole", 5, augments="venlafaxine", start=date(2022, 6, 1))
    )
    s = _stage(kb, b, "maudsley")
    assert [i.points for i in s.items] == [3, 4, 1, 1, 0]
    assert s.score == 9
    assert s.band == "moderate"


@pytest.mark.parametrize(
    ("onset", "points"),
    [
        (date(2023, 6, 1), 1),  # exactly 12 months
        (date(2023, 5, 31), 1),  # 12 months and a day: 12 completed months
        (date(2023, 5, 1), 2),  # 13 months
        (date(2022, 6, 1), 2),  # 24 months
        (date(2022, 5, 1), 3),  # 25 months
    ],
)
def test_maudsley_duration_bands_at_their_edges(kb, onset, points):
    b = a_history().episode(onset=onset)
    assert _stage(kb, b, "maudsley").items[0].points == points


@pytest.mark.parametrize(("n", "points"), [(1, 1), (2, 1), (3, 2), (4, 2), (5, 3), (6, 3), (7, 4)])
def test_maudsley_failed_antidepressant_bands(kb, n, points):
    drugs = [
        "sertraline",
        "venlafaxine",
        "mirtazapine",
        "bupropion",
        "duloxetine",
        "vortioxetine",
        "nortriptyline",
    ]
    b = a_history()
    for d in drugs[:n]:
        b.trial(d, kb.drugs[d].antidepressant_dose.usual_max_mg_per_day)
    assert _stage(kb, b, "maudsley").items[2].points == points


def test_european_staging_counts_two_failed_trials_of_any_class_as_trd(kb):
    one = a_history().trial("sertraline", 150)
    assert _stage(kb, one, "european").label == "non-responder"
    same = a_history().trial("sertraline", 150).trial("escitalopram", 20)
    assert _stage(kb, same, "european").label == "TRD1"
    three = same.trial("venlafaxine", 150)
    assert _stage(kb, three, "european").label == "TRD2"


def test_dm_trd_lists_its_missing_inputs_instead_of_guessing(kb):
    s = _stage(kb, a_history().trial("sertraline", 150), "dm_trd")
    assert s.score is None
    assert s.missing


def test_dm_trd_records_the_inputs_given_and_names_only_the_rest(kb):
    b = a_history().trial("sertraline", 150)
    b.data["staging_inputs"] = {"functional_impairment": "severe", "comorbid_anxiety": "none"}
    s = _stage(kb, b, "dm_trd")
    assert s.score is None
    assert [i.item for i in s.items] == ["functional_impairment", "comorbid_anxiety"]
    assert "functional_impairment" not in s.missing
    assert "intensified_treatment" in s.missing
    assert not s.verified


def test_dm_trd_inputs_in_the_knowledge_base_are_fields_of_the_history_format(kb):
    from trdnav.core.history import StagingInputs

    assert set(kb.staging["dm_trd"].inputs) <= set(StagingInputs.model_fields)
