"""Scoring rules of every instrument, against hand-computed examples.

Every expected value below was worked out by hand from the instrument's YAML and the reference
sheet (/work/shared/reference/instruments.md); the sum is written next to each answer list.
Band boundaries are tested on both sides of each cut point.
"""

from __future__ import annotations

import numpy as np
import pytest

from trdnav.core.scoring import Score, ScoringError, score_answers
from trdnav.core.scoring_vector import score_matrix
from trdnav.knowledge.load import Knowledge

ALL_IDS = {
    "phq9",
    "phq2",
    "gad7",
    "qids_sr16",
    "madrs",
    "hamd17",
    "cssrs_screener",
    "mdq",
    "asrs_v1_1",
    "pcl5",
    "audit_c",
    "stop_bang",
    "isi",
    "cadss",
    "moaas",
}
N = None  # an unanswered item


def score(kb: Knowledge, iid: str, answers=None, **kw) -> Score:  # type: ignore[no-untyped-def]
    return score_answers(kb.instruments[iid], answers, **kw)


def refused(kb: Knowledge, iid: str, answers=None, **kw) -> ScoringError:  # type: ignore[no-untyped-def]
    with pytest.raises(ScoringError) as exc:
        score_answers(kb.instruments[iid], answers, **kw)
    return exc.value


def test_the_knowledge_base_holds_exactly_the_fifteen_instruments_tested_here(kb):
    assert set(kb.instruments) == ALL_IDS


@pytest.mark.parametrize("iid", sorted(ALL_IDS))
def test_lowest_and_highest_answers_give_the_documented_total_range(kb, iid):
    inst = kb.instruments[iid]
    low = score_answers(inst, [item.min for item in inst.items])
    high = score_answers(inst, [item.max for item in inst.items])
    if inst.scored:
        assert low.total == inst.total_min
        assert high.total == inst.total_max
    else:
        assert low.total is None and high.total is None


# --- PHQ-9 --------------------------------------------------------------------------------------

PHQ9_BANDS = [
    ([0, 0, 0, 0, 0, 0, 0, 0, 0], 0, "minimal"),
    ([1, 1, 1, 1, 0, 0, 0, 0, 0], 4, "minimal"),
    ([1, 1, 1, 1, 1, 0, 0, 0, 0], 5, "mild"),
    ([1, 1, 1, 1, 1, 1, 1, 1, 1], 9, "mild"),
    ([2, 1, 1, 1, 1, 1, 1, 1, 1], 10, "moderate"),
    ([2, 2, 2, 2, 2, 1, 1, 1, 1], 14, "moderate"),
    ([2, 2, 2, 2, 2, 2, 1, 1, 1], 15, "moderately severe"),
    ([3, 3, 3, 2, 2, 2, 2, 1, 1], 19, "moderately severe"),
    ([3, 3, 3, 3, 2, 2, 2, 1, 1], 20, "severe"),
    ([3, 3, 3, 3, 3, 3, 3, 3, 3], 27, "severe"),
]


@pytest.mark.parametrize(("answers", "total", "band"), PHQ9_BANDS)
def test_phq9_total_and_band_on_both_sides_of_each_cut_point(kb, answers, total, band):
    s = score(kb, "phq9", answers)
    assert s.total == total
    assert s.band == band
    assert s.total_max == 27
    assert s.prorated is False
    assert s.answers == tuple(answers)
    assert s.instrument == "PHQ-9" and s.instrument_id == "phq9"


@pytest.mark.parametrize(("item9", "signal"), [(0, False), (1, True), (2, True), (3, True)])
def test_phq9_item_9_above_zero_is_a_suicide_signal(kb, item9, signal):
    s = score(kb, "phq9", [0, 0, 0, 0, 0, 0, 0, 0, item9])
    assert s.suicide_item_answer == item9
    assert s.suicide_signal is signal
    assert s.band == "minimal"  # a minimal total never hides the item-9 signal


@pytest.mark.parametrize(
    ("answers", "total", "band"),
    [
        # 8 answered; total = round(sum × 9 / 8)
        ([2, 2, 2, 2, 2, 2, 2, N, 1], 17, "moderately severe"),  # 15 × 9/8 = 16.875 → 17
        ([1, 1, 1, 1, 1, 1, 1, N, 0], 8, "mild"),  # 7 × 9/8 = 7.875 → 8
        ([2, 2, N, 1, 1, 1, 1, 0, 0], 9, "mild"),  # 8 × 9/8 = 9
        ([3, 3, 3, 3, N, 0, 0, 0, 0], 14, "moderate"),  # 12 × 9/8 = 13.5 → 14 (both ways)
        ([N, 3, 3, 3, 3, 3, 3, 3, 3], 27, "severe"),  # 24 × 9/8 = 27
        ([N, 0, 0, 0, 0, 0, 0, 0, 0], 0, "minimal"),  # 0
        ([2, 2, 2, 2, 2, 2, 1, N, 0], 15, "moderately severe"),  # 13 × 9/8 = 14.625 → 15
    ],
)
def test_phq9_prorates_one_missing_item(kb, answers, total, band):
    s = score(kb, "phq9", answers)
    assert s.total == total
    assert s.band == band
    assert s.prorated is True
    missing = answers.index(None) + 1
    assert any(
        f"item(s) {missing} missing: total prorated from 8 answered items" in n for n in s.notes
    )


def test_phq9_proration_keeps_the_item_9_signal(kb):
    s = score(kb, "phq9", [0, N, 0, 0, 0, 0, 0, 0, 1])  # 1 × 9/8 = 1.125 → 1
    assert s.total == 1
    assert s.suicide_signal is True


def test_phq9_proration_rounds_a_half_up(kb):
    s = score(kb, "phq9", [1, 1, 1, 1, N, 0, 0, 0, 0])  # 4 × 9/8 = 4.5
    assert s.total == 5
    assert s.band == "mild"


def test_phq9_refuses_two_missing_items(kb):
    err = refused(kb, "phq9", [N, N, 1, 1, 1, 1, 1, 1, 0])
    assert err.instrument == "PHQ-9"
    [p] = err.problems
    assert p.loc == "items"
    assert "item(s) 1, 2 unanswered" in p.message
    assert "at most 1 item(s) may be missing" in p.message
    assert "prorate" in p.message


@pytest.mark.parametrize(
    "answers",
    [[1, 1, 1, 1, 1, 1, 1, 1, N], [N, 1, 1, 1, 1, 1, 1, 1, N]],
    ids=["item 9 alone", "item 9 and item 1"],
)
def test_phq9_never_prorates_item_9_away(kb, answers):
    [p] = refused(kb, "phq9", answers).problems
    assert p.loc == "items"
    assert "item 9 may never be missing" in p.message


# --- PHQ-2 --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "total", "positive"),
    [
        ([0, 0], 0, False),
        ([1, 1], 2, False),
        ([2, 1], 3, True),
        ([0, 3], 3, True),
        ([3, 3], 6, True),
    ],
)
def test_phq2_screens_positive_from_3(kb, answers, total, positive):
    s = score(kb, "phq2", answers)
    assert s.total == total
    assert s.band is None  # PHQ-2 has a screen, no bands
    assert s.screen is not None and s.screen.positive is positive
    assert s.suicide_signal is None  # the PHQ-2 has no suicide item


def test_phq2_refuses_a_missing_item(kb):
    [p] = refused(kb, "phq2", [1, N]).problems
    assert (
        "item(s) 2 unanswered and no item may be missing (missing-item rule: refuse)" in p.message
    )


# --- GAD-7 --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "total", "band", "positive"),
    [
        ([0, 0, 0, 0, 0, 0, 0], 0, "minimal", False),
        ([1, 1, 1, 1, 0, 0, 0], 4, "minimal", False),
        ([1, 1, 1, 1, 1, 0, 0], 5, "mild", False),
        ([2, 2, 2, 1, 1, 1, 0], 9, "mild", False),
        ([2, 2, 2, 1, 1, 1, 1], 10, "moderate", True),
        ([2, 2, 2, 2, 2, 2, 2], 14, "moderate", True),
        ([3, 2, 2, 2, 2, 2, 2], 15, "severe", True),
        ([3, 3, 3, 3, 3, 3, 3], 21, "severe", True),
    ],
)
def test_gad7_bands_and_screen_at_10(kb, answers, total, band, positive):
    s = score(kb, "gad7", answers)
    assert (s.total, s.band) == (total, band)
    assert s.screen is not None and s.screen.positive is positive
    assert s.screen.detail.startswith(f"total {total} {'≥' if positive else '<'} 10")


def test_gad7_refuses_a_missing_item(kb):
    [p] = refused(kb, "gad7", [1, 1, 1, N, 1, 1, 1]).problems
    assert "item(s) 4 unanswered" in p.message


# --- QIDS-SR16 ----------------------------------------------------------------------------------


def qids(
    sleep=(0, 0, 0, 0),
    sad=0,
    appetite=(0, 0, 0, 0),
    concentration=0,
    self_view=0,
    suicidal=0,
    interest=0,
    energy=0,
    psychomotor=(0, 0),
):  # type: ignore[no-untyped-def]
    return [
        *sleep,
        sad,
        *appetite,
        concentration,
        self_view,
        suicidal,
        interest,
        energy,
        *psychomotor,
    ]


def test_qids_takes_the_maximum_within_sleep_appetite_and_psychomotor(kb):
    answers = qids(
        sleep=(1, 3, 0, 2),  # max 3
        sad=2,
        appetite=(0, 1, 2, 0),  # max 2
        concentration=1,
        self_view=0,
        suicidal=1,
        interest=2,
        energy=3,
        psychomotor=(1, 2),  # max 2
    )
    assert sum(answers) == 21  # the plain item sum — which the QIDS does NOT use
    s = score(kb, "qids_sr16", answers)
    assert s.total == 16  # 3 + 2 + 2 + 1 + 0 + 1 + 2 + 3 + 2
    assert s.band == "severe"
    assert s.domains == {
        "sleep": 3,
        "sad_mood": 2,
        "appetite_weight": 2,
        "concentration": 1,
        "self_view": 0,
        "suicidal_ideation": 1,
        "interest": 2,
        "energy": 3,
        "psychomotor": 2,
    }
    assert s.suicide_item_answer == 1 and s.suicide_signal is True


def test_qids_domain_maxima_cap_each_domain_at_3(kb):
    s = score(kb, "qids_sr16", qids(sleep=(3, 3, 3, 3), appetite=(3, 3, 3, 3), psychomotor=(3, 3)))
    assert s.total == 9  # 3 + 3 + 3, not 30
    assert s.domains["sleep"] == 3 and s.domains["appetite_weight"] == 3
    assert s.suicide_signal is False


@pytest.mark.parametrize(
    ("answers", "total", "band"),
    [
        (qids(), 0, "none"),
        (qids(sleep=(0, 3, 0, 0), sad=2), 5, "none"),
        (qids(sleep=(0, 3, 0, 0), sad=3), 6, "mild"),
        (qids(sleep=(3, 0, 0, 0), sad=3, appetite=(0, 0, 3, 0), concentration=1), 10, "mild"),
        (qids(sleep=(3, 0, 0, 0), sad=3, appetite=(0, 0, 3, 0), concentration=2), 11, "moderate"),
        (
            qids(sleep=(3, 3, 0, 0), sad=3, appetite=(3, 0, 0, 0), concentration=3, interest=3),
            15,
            "moderate",
        ),
        (
            qids(
                sleep=(3, 0, 0, 0),
                sad=3,
                appetite=(3, 0, 0, 0),
                concentration=3,
                interest=3,
                energy=1,
            ),
            16,
            "severe",
        ),
        (
            qids(
                sleep=(3, 0, 0, 0),
                sad=3,
                appetite=(3, 0, 0, 0),
                concentration=3,
                interest=3,
                energy=3,
                psychomotor=(0, 2),
            ),
            20,
            "severe",
        ),
        (
            qids(
                sleep=(3, 0, 0, 0),
                sad=3,
                appetite=(3, 0, 0, 0),
                concentration=3,
                interest=3,
                energy=3,
                psychomotor=(3, 0),
            ),
            21,
            "very severe",
        ),
        ([3] * 16, 27, "very severe"),
    ],
)
def test_qids_bands_on_both_sides_of_each_cut_point(kb, answers, total, band):
    s = score(kb, "qids_sr16", answers)
    assert (s.total, s.band) == (total, band)


def test_qids_scores_a_domain_from_its_answered_items(kb):
    # appetite/weight: items 6 (decreased appetite) and 8 (decreased weight) left blank, as the
    # form expects when appetite increased; the domain is the max of items 7 and 9.
    answers = qids(sleep=(1, 0, 0, 2), sad=1, appetite=(N, 1, N, 2), energy=1, psychomotor=(N, 1))
    s = score(kb, "qids_sr16", answers)
    assert s.domains["appetite_weight"] == 2
    assert s.domains["psychomotor"] == 1
    assert s.total == 7  # sleep 2 + sad 1 + appetite 2 + energy 1 + psychomotor 1
    assert s.band == "mild"
    assert s.prorated is False
    assert any("items 6, 8, 15 unanswered; each domain scored" in n for n in s.notes)


@pytest.mark.parametrize(
    ("blank", "domain"),
    [
        ((1, 2, 3, 4), "sleep"),
        ((6, 7, 8, 9), "appetite_weight"),
        ((15, 16), "psychomotor"),
        ((12,), "suicidal_ideation"),
        ((5,), "sad_mood"),
    ],
)
def test_qids_refuses_a_domain_with_no_answered_item(kb, blank, domain):
    answers: list[int | None] = [1] * 16
    for n in blank:
        answers[n - 1] = None
    [p] = refused(kb, "qids_sr16", answers).problems
    assert p.loc == "items"
    assert f"no answered item in domain(s) {domain} " in p.message


# --- MADRS --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "total", "band"),
    [
        ([0] * 10, 0, "normal / symptom absent"),
        ([6, 0, 0, 0, 0, 0, 0, 0, 0, 0], 6, "normal / symptom absent"),
        ([6, 1, 0, 0, 0, 0, 0, 0, 0, 0], 7, "mild"),
        ([6, 6, 6, 1, 0, 0, 0, 0, 0, 0], 19, "mild"),
        ([6, 6, 6, 2, 0, 0, 0, 0, 0, 0], 20, "moderate"),
        ([6, 6, 6, 6, 6, 4, 0, 0, 0, 0], 34, "moderate"),
        ([6, 6, 6, 6, 6, 5, 0, 0, 0, 0], 35, "severe"),
        ([6] * 10, 60, "severe"),
    ],
)
def test_madrs_bands_on_both_sides_of_each_cut_point(kb, answers, total, band):
    s = score(kb, "madrs", answers)
    assert (s.total, s.band) == (total, band)


def test_madrs_item_10_is_the_suicide_item(kb):
    s = score(kb, "madrs", [0, 0, 0, 0, 0, 0, 0, 0, 0, 2])
    assert s.suicide_item_answer == 2 and s.suicide_signal is True
    assert score(kb, "madrs", [6] * 9 + [0]).suicide_signal is False


def test_madrs_refuses_a_missing_item(kb):
    [p] = refused(kb, "madrs", [1] * 9 + [N]).problems
    assert "item(s) 10 unanswered" in p.message


# --- HAM-D17 ------------------------------------------------------------------------------------

# items 1, 2, 3, 7, 8, 9, 10, 11, 15 are 0–4; items 4, 5, 6, 12, 13, 14, 16, 17 are 0–2
HAMD_MAX = [4, 4, 4, 2, 2, 2, 4, 4, 4, 4, 4, 2, 2, 2, 4, 2, 2]


def hamd(first: list[int]) -> list[int]:
    return first + [0] * (17 - len(first))


def test_hamd17_item_ranges_follow_the_reference_sheet(kb):
    assert [item.max for item in kb.instruments["hamd17"].items] == HAMD_MAX
    assert sum(HAMD_MAX) == 52


@pytest.mark.parametrize(
    ("answers", "total", "band"),
    [
        (hamd([]), 0, "no depression"),
        (hamd([4, 3]), 7, "no depression"),
        (hamd([4, 4]), 8, "mild"),
        (hamd([4, 4, 0, 2, 2, 2, 2]), 16, "mild"),
        (hamd([4, 4, 0, 2, 2, 2, 3]), 17, "moderate"),
        (hamd([4, 4, 0, 2, 2, 2, 4, 4, 1]), 23, "moderate"),
        (hamd([4, 4, 0, 2, 2, 2, 4, 4, 2]), 24, "severe"),
        (HAMD_MAX, 52, "severe"),
    ],
)
def test_hamd17_bands_on_both_sides_of_each_cut_point(kb, answers, total, band):
    s = score(kb, "hamd17", answers)
    assert (s.total, s.band) == (total, band)
    assert s.suicide_signal is (answers[2] > 0)  # item 3, the suicide item


def test_hamd17_item_3_is_the_suicide_item(kb):
    s = score(kb, "hamd17", hamd([0, 0, 1]))
    assert s.suicide_item_answer == 1 and s.suicide_signal is True


def test_hamd17_rejects_3_on_a_0_to_2_item(kb):
    [p] = refused(kb, "hamd17", hamd([4, 4, 4, 3])).problems
    assert p.loc == "items[3]"
    assert p.message == "item 4 of HAM-D17 must be a whole number from 0 to 2; got 3"


# --- C-SSRS screener ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "positive", "severity"),
    [
        ([0, 0, 0, 0, 0, 0, 0], False, None),
        ([1, 0, 0, 0, 0, 0, 0], True, "low"),
        ([1, 1, 0, 0, 0, 0, 0], True, "low"),
        ([0, 1, 0, 0, 0, 0, 0], True, "low"),
        ([1, 1, 1, 0, 0, 0, 0], True, "moderate"),
        ([1, 1, 1, 1, 0, 0, 0], True, "high"),  # intent
        ([0, 1, 0, 0, 1, 0, 0], True, "high"),  # plan with intent
        ([0, 0, 0, 0, 0, 1, 0], True, "moderate"),  # behaviour, more than 3 months ago
        ([0, 0, 0, 0, 0, 1, 1], True, "high"),  # behaviour in the past 3 months
        ([1, 1, 1, 0, 0, 1, 1], True, "high"),  # the highest level wins
    ],
)
def test_cssrs_triage_takes_the_highest_level_reached(kb, answers, positive, severity):
    s = score(kb, "cssrs_screener", answers)
    assert s.total is None and s.band is None
    assert s.screen is not None
    assert s.screen.positive is positive
    assert s.screen.severity == severity
    if severity is None:
        assert s.screen.detail == "no 'yes' answer"
    else:
        assert s.screen.detail.startswith(f"{severity} risk: ")


def test_cssrs_skip_logic_fills_items_3_to_5_and_7_after_a_no(kb):
    s = score(kb, "cssrs_screener", [1, 0, N, N, N, 0, N])
    assert s.answers == (1, 0, 0, 0, 0, 0, 0)
    assert s.screen is not None and s.screen.severity == "low"
    assert sum("skipped after 'no' to item 2" in n for n in s.notes) == 3
    assert any("item 7 skipped after 'no' to item 6" in n for n in s.notes)


def test_cssrs_skip_logic_with_item_6_yes_and_item_7_high(kb):
    s = score(kb, "cssrs_screener", [0, 0, N, N, N, 1, 1])
    assert s.screen is not None and s.screen.severity == "high"
    s = score(kb, "cssrs_screener", [0, 0, N, N, N, 1, 0])
    assert s.screen is not None and s.screen.severity == "moderate"


@pytest.mark.parametrize(
    ("answers", "missing"),
    [
        ([1, N, N, N, N, 0, N], "2, 3, 4, 5"),  # no answer to item 2: 3–5 cannot be skipped
        ([1, 1, N, 0, 0, 0, N], "3"),  # item 2 'yes': item 3 must be asked
        ([0, 0, N, N, N, 1, N], "7"),  # item 6 'yes': the 3-month follow-up must be asked
        ([0, 0, N, N, N, N, N], "6, 7"),
        ([N, 0, N, N, N, 0, N], "1"),
    ],
)
def test_cssrs_refuses_gaps_the_skip_logic_does_not_explain(kb, answers, missing):
    [p] = refused(kb, "cssrs_screener", answers).problems
    assert f"item(s) {missing} unanswered and no item may be missing" in p.message


def test_cssrs_rejects_an_answer_other_than_yes_or_no(kb):
    [p] = refused(kb, "cssrs_screener", [2, 0, 0, 0, 0, 0, 0]).problems
    assert p.loc == "items[0]"
    assert p.message == "item 1 of C-SSRS screener must be 0 (no) or 1 (yes); got 2"


def test_cssrs_has_no_total_to_record(kb):
    [p] = refused(kb, "cssrs_screener", total=1).problems
    assert p.loc == "total"
    assert p.message == "C-SSRS screener has no total; give its item answers"


# --- MDQ ----------------------------------------------------------------------------------------


def mdq(yes: int, same_time: int, problem: int) -> list[int]:
    return [1] * yes + [0] * (13 - yes) + [same_time, problem]


@pytest.mark.parametrize(
    ("answers", "total", "positive"),
    [
        (mdq(7, 1, 2), 7, True),  # all three parts met
        (mdq(7, 1, 3), 7, True),
        (mdq(13, 1, 2), 13, True),
        (mdq(6, 1, 3), 6, False),  # part 1 fails: 6 < 7 symptom items
        (mdq(13, 0, 3), 13, False),  # part 2 fails: not at the same time
        (mdq(7, 1, 1), 7, False),  # part 3 fails: only a minor problem
        (mdq(7, 1, 0), 7, False),
        (mdq(0, 0, 0), 0, False),
    ],
)
def test_mdq_three_part_rule(kb, answers, total, positive):
    s = score(kb, "mdq", answers)
    assert s.total == total  # the total counts the 13 symptom items only, not items 14–15
    assert s.band is None
    assert s.screen is not None and s.screen.positive is positive
    assert s.domains["co_occurrence"] == answers[13]
    assert s.domains["problem_severity"] == answers[14]


def test_mdq_refuses_a_missing_follow_up(kb):
    [p] = refused(kb, "mdq", [*mdq(8, 1, 2)[:13], N, 2]).problems
    assert "item(s) 14 unanswered" in p.message


def test_mdq_item_15_is_rated_0_to_3(kb):
    [p] = refused(kb, "mdq", mdq(7, 1, 4)).problems
    assert p.loc == "items[14]"
    assert "item 15 of MDQ" in p.message and p.message.endswith("from 0 to 3; got 4")


def test_mdq_total_only_gives_no_screen(kb):
    s = score(kb, "mdq", total=9)
    assert s.total == 9 and s.screen is None  # the rule needs items 14 and 15


# --- ASRS v1.1 Part A ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "counted", "positive"),
    [
        ([0, 0, 0, 0, 0, 0], 0, False),
        ([2, 2, 2, 3, 0, 0], 4, True),  # 1–3 from 'sometimes', 4 from 'often'
        ([2, 2, 2, 2, 2, 2], 3, False),  # 'sometimes' does not count for items 4–6
        ([1, 1, 1, 3, 3, 3], 3, False),  # 'rarely' does not count for items 1–3
        ([1, 2, 2, 3, 3, 0], 4, True),
        ([2, 1, 1, 3, 4, 3], 4, True),
        ([1, 1, 1, 4, 4, 4], 3, False),
        ([4, 4, 4, 4, 4, 4], 6, True),
    ],
)
def test_asrs_part_a_counts_four_of_six_with_per_item_thresholds(kb, answers, counted, positive):
    s = score(kb, "asrs_v1_1", answers)
    assert s.total is None and s.band is None
    assert s.screen is not None and s.screen.positive is positive
    assert s.screen.detail.startswith(f"{counted} of 6 Part A items in the shaded range")


def test_asrs_refuses_a_missing_item_and_a_total(kb):
    [p] = refused(kb, "asrs_v1_1", [2, 2, 2, 3, 3, N]).problems
    assert "item(s) 6 unanswered" in p.message
    [p] = refused(kb, "asrs_v1_1", total=12).problems
    assert p.loc == "total"


# --- PCL-5 --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "total", "positive"),
    [
        ([4] * 8 + [0] * 12, 32, False),
        ([4] * 8 + [1] + [0] * 11, 33, True),
        ([0] * 20, 0, False),
        ([4] * 20, 80, True),
    ],
)
def test_pcl5_screens_positive_from_33(kb, answers, total, positive):
    s = score(kb, "pcl5", answers)
    assert s.total == total and s.band is None
    assert s.screen is not None and s.screen.positive is positive


def test_pcl5_cluster_subscores(kb):
    answers = [4] * 5 + [4, 4] + [1] * 7 + [0] * 6
    s = score(kb, "pcl5", answers)
    assert s.total == 35  # 20 + 8 + 7 + 0
    assert s.domains == {
        "intrusion": 20,
        "avoidance": 8,
        "cognition_mood": 7,
        "arousal_reactivity": 0,
    }


def test_pcl5_refuses_a_missing_item(kb):
    [p] = refused(kb, "pcl5", [1] * 19 + [N]).problems
    assert "item(s) 20 unanswered" in p.message


# --- AUDIT-C ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "sex", "positive"),
    [
        ([1, 1, 1], "male", False),  # 3 < 4
        ([2, 1, 1], "male", True),  # 4 ≥ 4
        ([1, 1, 0], "female", False),  # 2 < 3
        ([1, 1, 1], "female", True),  # 3 ≥ 3
        ([1, 1, 0], None, False),  # sex unknown: the lower cutoff (3)
        ([1, 1, 1], None, True),
        ([4, 4, 4], "male", True),
        ([0, 0, 0], "female", False),
    ],
)
def test_audit_c_cutoff_depends_on_sex(kb, answers, sex, positive):
    s = score(kb, "audit_c", answers, sex=sex)
    assert s.total == sum(answers)
    assert s.screen is not None and s.screen.positive is positive
    unknown_note = any("sex not recorded" in n for n in s.notes)
    assert unknown_note is (sex is None)
    if sex is None:
        assert "lower cutoff" in s.screen.detail
    else:
        assert f"the cutoff for {sex} patients" in s.screen.detail


def test_audit_c_refuses_a_missing_item(kb):
    [p] = refused(kb, "audit_c", [1, N, 1], sex="male").problems
    assert "item(s) 2 unanswered" in p.message


# --- STOP-BANG ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yes", "band"),
    [
        (0, "low risk of OSA"),
        (2, "low risk of OSA"),
        (3, "intermediate risk of OSA"),
        (4, "intermediate risk of OSA"),
        (5, "high risk of OSA"),
        (8, "high risk of OSA"),
    ],
)
def test_stop_bang_bands(kb, yes, band):
    s = score(kb, "stop_bang", [1] * yes + [0] * (8 - yes))
    assert (s.total, s.band) == (yes, band)


def test_stop_bang_answers_are_yes_or_no(kb):
    [p] = refused(kb, "stop_bang", [1, 1, 2, 0, 0, 0, 0, 0]).problems
    assert p.loc == "items[2]"
    assert p.message == "item 3 of STOP-BANG must be 0 (no) or 1 (yes); got 2"


# --- ISI ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "total", "band"),
    [
        ([0] * 7, 0, "no clinically significant insomnia"),
        ([4, 3, 0, 0, 0, 0, 0], 7, "no clinically significant insomnia"),
        ([4, 4, 0, 0, 0, 0, 0], 8, "subthreshold insomnia"),
        ([4, 4, 4, 2, 0, 0, 0], 14, "subthreshold insomnia"),
        ([4, 4, 4, 3, 0, 0, 0], 15, "clinical insomnia (moderate)"),
        ([4, 4, 4, 4, 4, 1, 0], 21, "clinical insomnia (moderate)"),
        ([4, 4, 4, 4, 4, 2, 0], 22, "clinical insomnia (severe)"),
        ([4] * 7, 28, "clinical insomnia (severe)"),
    ],
)
def test_isi_bands_on_both_sides_of_each_cut_point(kb, answers, total, band):
    s = score(kb, "isi", answers)
    assert (s.total, s.band) == (total, band)


# --- CADSS --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answers", "total", "positive"),
    [
        ([0] * 23, 0, False),
        ([1] * 4 + [0] * 19, 4, False),  # total > 4 is the esketamine dissociation definition
        ([1] * 5 + [0] * 18, 5, True),
        ([4] * 23, 92, True),
    ],
)
def test_cadss_flags_dissociation_above_4(kb, answers, total, positive):
    s = score(kb, "cadss", answers)
    assert s.total == total and s.band is None
    assert s.screen is not None and s.screen.positive is positive


def test_cadss_refuses_a_missing_item(kb):
    [p] = refused(kb, "cadss", [0] * 22 + [N]).problems
    assert "item(s) 23 unanswered" in p.message


# --- MOAA/S -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rating", "band"),
    [
        (0, "unresponsive — no response to painful trapezius squeeze (loss of consciousness)"),
        (1, "moderate or deeper sedation"),
        (3, "moderate or deeper sedation"),
        (4, "mild sedation — lethargic response to name in normal tone"),
        (5, "alert — responds readily to name spoken in normal tone"),
    ],
)
def test_moaas_levels(kb, rating, band):
    s = score(kb, "moaas", [rating])
    assert (s.total, s.band) == (rating, band)


def test_moaas_rejects_6_and_a_missing_rating(kb):
    [p] = refused(kb, "moaas", [6]).problems
    assert p.message == "item 1 of MOAA/S must be a whole number from 0 to 5; got 6"
    [p] = refused(kb, "moaas", [N]).problems
    assert "item(s) 1 unanswered" in p.message


# --- total-only input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("iid", "total", "band"),
    [
        ("phq9", 15, "moderately severe"),
        ("phq9", 14, "moderate"),
        ("qids_sr16", 21, "very severe"),
        ("madrs", 35, "severe"),
        ("hamd17", 7, "no depression"),
        ("isi", 22, "clinical insomnia (severe)"),
    ],
)
def test_a_recorded_total_gets_its_band_but_no_item_signal(kb, iid, total, band):
    s = score(kb, iid, total=total)
    assert (s.total, s.band) == (total, band)
    assert s.answers is None
    assert s.suicide_item_answer is None
    assert s.suicide_signal is None  # unknown, not "no signal"
    assert any("only a total was recorded" in n for n in s.notes)


def test_a_recorded_total_is_screened(kb):
    gad = score(kb, "gad7", total=10)
    assert gad.screen is not None and gad.screen.positive is True
    audit = score(kb, "audit_c", total=3, sex="male")
    assert audit.screen is not None and audit.screen.positive is False


@pytest.mark.parametrize(
    ("iid", "total", "expected"),
    [("phq9", 28, "0 to 27"), ("phq9", -1, "0 to 27"), ("madrs", 61, "0 to 60")],
)
def test_a_recorded_total_out_of_range_is_refused(kb, iid, total, expected):
    [p] = refused(kb, iid, total=total).problems
    assert p.loc == "total"
    assert p.message.endswith(f"total must be a whole number from {expected}; got {total}")


def test_a_recorded_total_that_disagrees_with_the_items_is_noted_and_the_items_win(kb):
    s = score(kb, "phq9", [1] * 9, total=10)
    assert s.total == 9
    assert "recorded total 10 differs from the items' total 9" in s.notes


def test_neither_items_nor_total_is_refused(kb):
    [p] = refused(kb, "phq9").problems
    assert (p.loc, p.message) == ("items", "give item answers or a total")


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 8, 10])
def test_the_wrong_number_of_answers_is_refused(kb, n):
    err = refused(kb, "phq9", [0] * n)
    [p] = err.problems
    assert p.loc == "items"
    assert p.message == f"PHQ-9 has 9 items; {n} answers given"
    assert str(err) == f"items: PHQ-9 has 9 items; {n} answers given"


@pytest.mark.parametrize(
    ("bad", "shown"),
    [(4, "4"), (-1, "-1"), (True, "True"), (False, "False"), (1.0, "1.0"), ("2", "'2'")],
)
def test_an_answer_out_of_range_or_of_the_wrong_type_names_the_item_and_the_range(kb, bad, shown):
    answers = [0] * 9
    answers[8] = bad
    [p] = refused(kb, "phq9", answers).problems
    assert p.loc == "items[8]"
    assert p.message == f"item 9 of PHQ-9 must be a whole number from 0 to 3; got {shown}"


def test_every_bad_answer_is_reported_at_once(kb):
    err = refused(kb, "gad7", [4, 0, True, 0, 0, 0, -2])
    assert [p.loc for p in err.problems] == ["items[0]", "items[2]", "items[6]"]
    assert str(err).count("must be a whole number from 0 to 3") == 3


def test_a_bool_is_not_a_yes(kb):
    [p] = refused(kb, "stop_bang", [True, 0, 0, 0, 0, 0, 0, 0]).problems
    assert p.loc == "items[0]"
    assert p.message.endswith("must be 0 (no) or 1 (yes); got True")


def test_every_score_carries_provenance(kb):
    s = score(kb, "phq9", [0] * 9)
    inst = kb.instruments["phq9"]
    assert s.verified is inst.verified
    assert s.citations == tuple(sorted(inst.source))


# --- the vectorised path: input checks ----------------------------------------------------------


def test_score_matrix_scores_rows_like_score_answers(kb):
    inst = kb.instruments["phq9"]
    rows = np.array([[1, 1, 1, 1, 0, 0, 0, 0, 0], [1, 1, 1, 1, 1, 0, 0, 0, 0], [3] * 9])
    v = score_matrix(inst, rows)
    assert v.totals.tolist() == [4, 5, 27]
    assert v.band_labels.tolist() == ["minimal", "mild", "severe"]
    assert v.suicide_signal is not None and v.suicide_signal.tolist() == [False, False, True]
    assert len(v) == 3


def test_score_matrix_uses_domain_maxima(kb):
    answers = qids(
        sleep=(1, 3, 0, 2),
        sad=2,
        appetite=(0, 1, 2, 0),
        concentration=1,
        suicidal=1,
        interest=2,
        energy=3,
        psychomotor=(1, 2),
    )
    v = score_matrix(kb.instruments["qids_sr16"], np.array([answers]))
    assert v.totals.tolist() == [16]
    assert v.band_labels.tolist() == ["severe"]


def test_score_matrix_without_bands_gives_no_label(kb):
    v = score_matrix(kb.instruments["pcl5"], np.zeros((2, 20), dtype=np.int8))
    assert v.band_index.tolist() == [-1, -1]
    assert v.band_labels.tolist() == ["", ""]
    assert v.suicide_signal is None


def test_score_matrix_names_the_row_and_item_out_of_range(kb):
    rows = np.zeros((3, 9), dtype=np.int64)
    rows[2, 8] = 4
    with pytest.raises(ScoringError) as exc:
        score_matrix(kb.instruments["phq9"], rows)
    [p] = exc.value.problems
    assert p.loc == "rows[2].items[8]"
    assert p.message == "item 9 of PHQ-9 must be a whole number from 0 to 3; got 4"


def test_score_matrix_lists_ten_problems_then_counts_the_rest(kb):
    with pytest.raises(ScoringError) as exc:
        score_matrix(kb.instruments["phq9"], np.full((5, 9), -1))
    assert len(exc.value.problems) == 11
    assert exc.value.problems[-1].message.startswith("35 more out-of-range answers")


@pytest.mark.parametrize(
    ("iid", "answers", "loc", "fragment"),
    [
        ("phq9", np.zeros((4, 8), dtype=int), "items", "PHQ-9 has 9 items; 8 answers given"),
        ("phq9", np.zeros(9, dtype=int), "answers", "must be a 2-D matrix"),
        ("phq9", np.zeros((2, 9), dtype=bool), "answers", "got dtype bool"),
        ("phq9", np.zeros((2, 9), dtype=float), "answers", "got dtype float64"),
        ("cssrs_screener", np.zeros((2, 7), dtype=int), "items", "has no total"),
        ("asrs_v1_1", np.zeros((2, 6), dtype=int), "items", "has no total"),
    ],
)
def test_score_matrix_refuses_bad_input(kb, iid, answers, loc, fragment):
    with pytest.raises(ScoringError) as exc:
        score_matrix(kb.instruments[iid], answers)
    [p] = exc.value.problems
    assert p.loc == loc
    assert fragment in p.message


def test_mdq_item14_is_not_needed_when_at_most_one_symptom_is_yes(kb):
    s = score(kb, "mdq", [1, *[0] * 12, N, 0])
    assert s.total == 1 and s.screen is not None and not s.screen.positive
    assert any("item 14 not asked" in n for n in s.notes)
    refused(kb, "mdq", [1, 1, *[0] * 11, N, 0])  # two 'yes': item 14 must be answered


def test_cssrs_recent_behaviour_without_lifetime_behaviour_is_flagged_and_triaged_high(kb):
    s = score(kb, "cssrs_screener", [0, 0, N, N, N, 0, 1])
    assert s.screen is not None and s.screen.severity == "high"
    assert any("inconsistent" in n for n in s.notes)


def test_a_fractional_recorded_total_is_refused(kb):
    with pytest.raises(ScoringError, match="whole number"):
        score_answers(kb.instruments["phq9"], total=14.5)


def test_numpy_integers_are_accepted_as_answers(kb):
    s = score_answers(kb.instruments["phq9"], list(np.array([1] * 9, dtype=np.int64)))
    assert s.total == 9
