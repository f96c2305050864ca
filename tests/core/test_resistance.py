from __future__ import annotations

from datetime import date

from tests.builders import a_history
from trdnav.core.assessment import assess


def test_two_failed_adequate_trials_of_distinct_drugs_make_trd(kb):
    h = a_history().trial("sertraline", 150).trial("venlafaxine", 150).build()
    trd = assess(h, kb).trd
    assert trd.status == "trd"
    assert trd.failed_adequate_trials == 2
    assert "complete_resistance" in trd.flags


def test_one_failed_trial_is_not_trd(kb):
    trd = assess(a_history().trial("sertraline", 150).build(), kb).trd
    assert trd.status == "not_trd"
    assert trd.failed_adequate_trials == 1


def test_two_trials_of_the_same_drug_count_once(kb):
    h = a_history().trial("sertraline", 150).trial("Zoloft", 200).build()
    a = assess(h, kb)
    assert a.trd.failed_adequate_trials == 1
    assert a.trd.status == "not_trd"
    assert "same_drug_already_counted" in a.trials[1].reasons


def test_an_inadequate_trial_does_not_count(kb):
    h = a_history().trial("sertraline", 150).trial("venlafaxine", 150, weeks=3).build()
    assert assess(h, kb).trd.status == "not_trd"


def test_a_partial_response_counts_as_failure_and_marks_partial_resistance(kb):
    h = (
        a_history()
        .trial("sertraline", 150, outcome="partial_response")
        .trial("venlafaxine", 150)
        .build()
    )
    trd = assess(h, kb).trd
    assert trd.status == "trd"
    assert "partial_resistance" in trd.flags
    assert "complete_resistance" not in trd.flags


def test_a_trial_with_unknown_adherence_that_could_decide_makes_the_status_indeterminate(kb):
    h = a_history().trial("sertraline", 150).trial("venlafaxine", 150, adherence=None).build()
    trd = assess(h, kb).trd
    assert trd.status == "indeterminate"
    assert any("venlafaxine" in m and "adherence" in m for m in trd.missing)


def test_an_unknown_outcome_of_an_adequate_trial_makes_the_status_indeterminate(kb):
    h = a_history().trial("sertraline", 150).trial("venlafaxine", 150, outcome="unknown").build()
    assert assess(h, kb).trd.status == "indeterminate"


def test_unknowns_that_cannot_change_the_answer_do_not_block_it(kb):
    h = (
        a_history()
        .trial("sertraline", 150)
        .trial("venlafaxine", 150)
        .trial("mirtazapine", 30, adherence=None)
        .build()
    )
    assert assess(h, kb).trd.status == "trd"


def test_augmentation_does_not_add_to_the_trd_count(kb):
    h = (
        a_history()
        .trial("sertraline", 150, weeks=12)
        .trial("aripiprazole", 5, augments="sertraline", start=date(2022, 3, 1))
        .build()
    )
    assert assess(h, kb).trd.failed_adequate_trials == 1


def test_ect_does_not_add_to_the_trd_count(kb):
    h = a_history().trial("sertraline", 150).ect().build()
    assert assess(h, kb).trd.status == "not_trd"


def test_an_episode_of_exactly_two_years_is_chronic_and_one_day_less_is_not(kb):
    h = a_history().episode(onset=date(2022, 6, 1)).build()
    assert "chronic" in assess(h, kb).trd.flags
    h = a_history().episode(onset=date(2022, 6, 2)).build()
    assert "chronic" not in assess(h, kb).trd.flags


def test_persistent_depressive_disorder_is_chronic(kb):
    h = (
        a_history()
        .episode(onset=date(2024, 1, 1), diagnosis="persistent_depressive_disorder")
        .build()
    )
    assert "chronic" in assess(h, kb).trd.flags


def test_mostly_inadequate_trials_raise_pseudo_resistance(kb):
    h = (
        a_history()
        .trial("sertraline", 25)
        .trial("escitalopram", 20, weeks=3)
        .trial("venlafaxine", 150, adherence=0.5)
        .trial("mirtazapine", 30)
        .build()
    )
    trd = assess(h, kb).trd
    assert "pseudo_resistance_suspected" in trd.flags
    assert trd.status == "not_trd"


def test_inadequate_trials_that_do_not_outnumber_adequate_ones_do_not(kb):
    h = (
        a_history()
        .trial("sertraline", 25)
        .trial("escitalopram", 20, weeks=3)
        .trial("venlafaxine", 150)
        .trial("mirtazapine", 30)
        .build()
    )
    assert "pseudo_resistance_suspected" not in assess(h, kb).trd.flags


def test_a_response_later_lost_on_the_same_drug_is_tachyphylaxis(kb):
    h = (
        a_history()
        .trial("sertraline", 150, weeks=20, outcome="response")
        .trial("sertraline", 150, weeks=10, outcome="no_response")
        .build()
    )
    assert "tachyphylaxis" in assess(h, kb).trd.flags


def test_a_recorded_loss_of_response_is_tachyphylaxis(kb):
    h = (
        a_history()
        .trial("sertraline", 150, weeks=30, outcome="response", response_lost_on=date(2022, 6, 1))
        .build()
    )
    assert "tachyphylaxis" in assess(h, kb).trd.flags


def test_a_response_followed_by_another_drug_failing_is_not_tachyphylaxis(kb):
    h = a_history().trial("sertraline", 150, outcome="response").trial("venlafaxine", 150).build()
    assert "tachyphylaxis" not in assess(h, kb).trd.flags


def test_a_bipolar_diagnosis_is_flagged_and_explained(kb):
    h = (
        a_history()
        .episode(diagnosis="bipolar_ii_depression")
        .trial("sertraline", 150)
        .trial("venlafaxine", 150)
        .build()
    )
    trd = assess(h, kb).trd
    assert "bipolarity_on_record" in trd.flags
    assert any(e.code == "bipolar_diagnosis" for e in trd.explanations)
