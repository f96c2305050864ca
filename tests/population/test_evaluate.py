"""evaluate_cohort: confusion counts, measures and index-date agreement on hand-made inputs."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trdnav.errors import InputError
from trdnav.population.evaluate import evaluate_cohort

D0 = date(2020, 1, 1)


def truth(rows: list[tuple[int, bool, date | None]]) -> pa.Table:
    return pa.table(
        {
            "person_id": pa.array([r[0] for r in rows], pa.int64()),
            "is_trd": pa.array([r[1] for r in rows], pa.bool_()),
            "index_date": pa.array([r[2] for r in rows], pa.date32()),
        }
    )


def cohort(rows: list[tuple[int, date]]) -> pa.Table:
    return pa.table(
        {
            "cohort_definition_id": pa.array([1] * len(rows), pa.int64()),
            "subject_id": pa.array([r[0] for r in rows], pa.int64()),
            "cohort_start_date": pa.array([r[1] for r in rows], pa.date32()),
            "cohort_end_date": pa.array([r[1] + timedelta(days=900) for r in rows], pa.date32()),
        }
    )


TRUTH = truth(
    [
        (1, True, D0),
        (2, True, D0 + timedelta(days=100)),
        (3, True, D0 + timedelta(days=200)),
        (4, False, None),
        (5, False, None),
        (6, False, None),
        (7, False, None),
    ]
)


def test_it_counts_true_and_false_positives_and_negatives() -> None:
    # 1 exact, 2 twenty days late, 4 a false positive; 3 missed
    c = cohort([(1, D0), (2, D0 + timedelta(days=120)), (4, D0)])
    a = evaluate_cohort(c, TRUTH)
    assert (a.true_positives, a.false_positives, a.false_negatives, a.true_negatives) == (
        2,
        1,
        1,
        3,
    )
    assert a.persons == 7 and a.cohort_size == 3 and a.truly_trd == 3
    assert a.sensitivity == pytest.approx(2 / 3)
    assert a.ppv == pytest.approx(2 / 3)
    assert a.specificity == pytest.approx(3 / 4)
    assert a.f1 == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))
    assert a.index_exact == pytest.approx(1 / 2)
    assert a.index_within_window == pytest.approx(1.0)
    assert a.index_median_abs_days == pytest.approx(10.0)
    assert (a.index_earlier, a.index_later) == (0, 1)


def test_the_window_is_inclusive_and_earlier_dates_count_as_earlier() -> None:
    c = cohort([(1, D0 - timedelta(days=30)), (2, D0 + timedelta(days=131))])
    a = evaluate_cohort(c, TRUTH)
    assert a.index_within_window == pytest.approx(1 / 2)  # −30 inside, +31 outside
    assert a.index_exact == 0.0
    assert a.index_median_abs_days == pytest.approx(30.5)
    assert (a.index_earlier, a.index_later) == (1, 1)
    assert evaluate_cohort(c, TRUTH, window_days=31).index_within_window == 1.0


def test_an_empty_cohort_has_no_ppv_and_no_index_agreement() -> None:
    a = evaluate_cohort(cohort([]), TRUTH)
    assert (a.true_positives, a.false_positives, a.false_negatives, a.true_negatives) == (
        0,
        0,
        3,
        4,
    )
    assert a.sensitivity == 0.0
    assert a.ppv is None
    assert a.specificity == 1.0
    assert a.f1 == 0.0
    assert a.index_exact is None and a.index_within_window is None
    assert a.index_median_abs_days is None
    assert "| positive predictive value | — |" in a.to_markdown()


def test_no_trd_in_the_truth_leaves_sensitivity_undefined() -> None:
    t = truth([(1, False, None), (2, False, None)])
    a = evaluate_cohort(cohort([(2, D0)]), t)
    assert a.sensitivity is None
    assert a.ppv == 0.0
    assert a.specificity == 0.5
    assert a.f1 == 0.0
    a = evaluate_cohort(cohort([]), t)
    assert a.sensitivity is None and a.ppv is None and a.f1 is None
    assert a.specificity == 1.0


def test_an_empty_truth_and_cohort_give_all_measures_undefined() -> None:
    a = evaluate_cohort(cohort([]), truth([]))
    assert a.persons == 0
    assert (a.sensitivity, a.ppv, a.specificity, a.f1) == (None, None, None, None)
    assert "| total | 0 | 0 | 0 |" in a.to_markdown()


def test_it_takes_pandas_frames_and_timestamps() -> None:
    t = pd.DataFrame(
        {
            "person_id": [10, 11],
            "is_trd": [True, False],
            "index_date": pd.to_datetime(["2021-03-04", None]),
        }
    )
    c = pd.DataFrame({"subject_id": [10], "cohort_start_date": pd.to_datetime(["2021-03-05"])})
    a = evaluate_cohort(c, t)
    assert (a.true_positives, a.true_negatives) == (1, 1)
    assert a.index_median_abs_days == 1.0


def test_the_markdown_shows_counts_and_measures() -> None:
    md = evaluate_cohort(cohort([(1, D0), (4, D0)]), TRUTH).to_markdown()
    assert "| in the cohort | 1 | 1 | 2 |" in md
    assert "| not in the cohort | 2 | 3 | 5 |" in md
    assert "| sensitivity | 0.333 |" in md
    assert "| positive predictive value | 0.500 |" in md
    assert "| index date within ±30 days | 1.000 |" in md
    assert "| median absolute index-date difference | 0 days |" in md


def test_a_cohort_subject_outside_the_truth_is_an_input_error() -> None:
    with pytest.raises(InputError) as err:
        evaluate_cohort(cohort([(1, D0), (99, D0)]), TRUTH)
    assert err.value.problems[0].loc == "cohort.subject_id"
    assert "99" in err.value.problems[0].message
    with pytest.raises(InputError):
        evaluate_cohort(cohort([(99, D0)]), truth([]))


def test_a_subject_twice_in_the_cohort_is_an_input_error() -> None:
    with pytest.raises(InputError) as err:
        evaluate_cohort(cohort([(1, D0), (1, D0)]), TRUTH)
    assert err.value.problems[0].code == "duplicate"


def test_missing_columns_are_named() -> None:
    with pytest.raises(InputError) as err:
        evaluate_cohort(pa.table({"person_id": [1]}), TRUTH)
    assert {p.loc for p in err.value.problems} == {"cohort.subject_id", "cohort.cohort_start_date"}


def test_a_trd_person_without_an_index_date_is_an_input_error() -> None:
    with pytest.raises(InputError) as err:
        evaluate_cohort(cohort([]), truth([(1, True, None)]))
    assert err.value.problems[0].loc == "truth.index_date"


def test_wrong_types_are_input_errors() -> None:
    bad = TRUTH.set_column(1, "is_trd", pa.array([1, 1, 1, 0, 0, 0, 0], pa.int64()))
    with pytest.raises(InputError) as err:
        evaluate_cohort(cohort([]), bad)
    assert err.value.problems[0].loc == "truth.is_trd"
    with pytest.raises(InputError):
        evaluate_cohort("not a table", TRUTH)


@given(
    st.lists(st.tuples(st.booleans(), st.booleans(), st.integers(-60, 60)), max_size=40),
)
def test_the_counts_agree_with_a_person_by_person_count(
    people: list[tuple[bool, bool, int]],
) -> None:
    t = truth([(i, trd, D0 if trd else None) for i, (trd, _, _) in enumerate(people)])
    c = cohort([(i, D0 + timedelta(days=d)) for i, (_, inc, d) in enumerate(people) if inc])
    a = evaluate_cohort(c, t)
    tp = sum(trd and inc for trd, inc, _ in people)
    fp = sum(inc and not trd for trd, inc, _ in people)
    fn = sum(trd and not inc for trd, inc, _ in people)
    assert (a.true_positives, a.false_positives, a.false_negatives) == (tp, fp, fn)
    assert a.true_negatives == len(people) - tp - fp - fn
    assert a.sensitivity == (tp / (tp + fn) if tp + fn else None)
    assert a.ppv == (tp / (tp + fp) if tp + fp else None)
    hits = [d for trd, inc, d in people if trd and inc]
    assert a.index_exact == (sum(d == 0 for d in hits) / tp if tp else None)
    assert a.index_within_window == (sum(abs(d) <= 30 for d in hits) / tp if tp else None)
    assert (a.index_earlier, a.index_later) == (sum(d < 0 for d in hits), sum(d > 0 for d in hits))
