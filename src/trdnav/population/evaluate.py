"""Agreement of a cohort with the synthetic generator's ground truth.

The generator (``trdnav synth omop``) writes ``ground_truth.parquet`` beside the OMOP tables: one
row per person with ``person_id``, ``is_trd`` and, for TRD persons, the true ``index_date``.
:func:`evaluate_cohort` compares a cohort table (``subject_id``, ``cohort_start_date``, as the
phenotype writes it) with it and returns an :class:`Agreement`:

- the confusion counts over every person of the ground truth (a person is *predicted* TRD when
  the cohort holds them, *truly* TRD when ``is_trd``);
- sensitivity TP/(TP+FN), positive predictive value TP/(TP+FP), specificity TN/(TN+FP) and F1;
  a measure whose denominator is zero is undefined and reported as ``None`` (no TRD in the truth
  gives no sensitivity; an empty cohort gives no PPV), never as 0 or 1;
- index-date agreement over the true positives: the share whose cohort start is the true index
  date, the share within ±``window_days`` days, the median absolute difference in days, and how
  many start earlier or later than the truth.

Pure: the inputs are PyArrow tables or pandas data frames, nothing is read or written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from trdnav.errors import InputError, Problem

COHORT_COLUMNS = ("subject_id", "cohort_start_date")
TRUTH_COLUMNS = ("person_id", "is_trd", "index_date")
DEFAULT_WINDOW_DAYS = 30
"""Index dates within this many days of the truth count as near agreement (an evaluation choice)."""


@dataclass(frozen=True)
class Agreement:
    """Confusion counts, the measures derived from them and index-date agreement."""

    persons: int
    true_positives: int
    false_positives: int
    false_negatives: int
    true_negatives: int
    sensitivity: float | None
    ppv: float | None
    specificity: float | None
    f1: float | None
    index_exact: float | None
    """Share of true positives whose cohort start equals the true index date."""
    index_within_window: float | None
    """Share of true positives whose cohort start lies within ±``window_days`` of the truth."""
    index_median_abs_days: float | None
    index_earlier: int
    """True positives whose cohort start is before the true index date."""
    index_later: int
    window_days: int = DEFAULT_WINDOW_DAYS

    @property
    def cohort_size(self) -> int:
        return self.true_positives + self.false_positives

    @property
    def truly_trd(self) -> int:
        return self.true_positives + self.false_negatives

    def as_dict(self) -> dict[str, int | float | None]:
        return {
            "persons": self.persons,
            "cohort": self.cohort_size,
            "truly_trd": self.truly_trd,
            "true_positives": self.true_positives,
            "false_positives": self.false_positives,
            "false_negatives": self.false_negatives,
            "true_negatives": self.true_negatives,
            "sensitivity": self.sensitivity,
            "ppv": self.ppv,
            "specificity": self.specificity,
            "f1": self.f1,
            "index_exact": self.index_exact,
            "index_within_window": self.index_within_window,
            "index_median_abs_days": self.index_median_abs_days,
            "index_earlier": self.index_earlier,
            "index_later": self.index_later,
            "window_days": self.window_days,
        }

    def to_markdown(self) -> str:
        """The agreement as two Markdown tables (counts, then measures); undefined shows as —."""
        lines = [
            "| | truly TRD | not TRD | total |",
            "|---|---:|---:|---:|",
            f"| in the cohort | {self.true_positives:,} | {self.false_positives:,} "
            f"| {self.cohort_size:,} |",
            f"| not in the cohort | {self.false_negatives:,} | {self.true_negatives:,} "
            f"| {self.persons - self.cohort_size:,} |",
            f"| total | {self.truly_trd:,} | {self.persons - self.truly_trd:,} "
            f"| {self.persons:,} |",
            "",
            "| measure | value |",
            "|---|---:|",
            f"| sensitivity | {_share(self.sensitivity)} |",
            f"| positive predictive value | {_share(self.ppv)} |",
            f"| specificity | {_share(self.specificity)} |",
            f"| F1 | {_share(self.f1)} |",
            f"| index date exact (of true positives) | {_share(self.index_exact)} |",
            f"| index date within ±{self.window_days} days | {_share(self.index_within_window)} |",
            f"| median absolute index-date difference | {_days(self.index_median_abs_days)} |",
            f"| index date earlier / later than the truth | {self.index_earlier:,} / "
            f"{self.index_later:,} |",
        ]
        return "\n".join(lines) + "\n"


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _days(value: float | None) -> str:
    return "—" if value is None else f"{value:g} days"


def _ratio(numerator: int, denominator: int) -> float | None:
    return None if denominator == 0 else numerator / denominator


def _as_arrow(table: Any, name: str, columns: tuple[str, ...]) -> pa.Table:
    if not isinstance(table, pa.Table):
        try:
            table = pa.Table.from_pandas(table, preserve_index=False)
        except (TypeError, ValueError, AttributeError) as exc:
            raise InputError(
                [
                    Problem(
                        name,
                        "wrong_type",
                        f"{name} must be a PyArrow table or a pandas data frame "
                        f"({type(table).__name__} given: {exc})",
                    )
                ]
            ) from exc
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise InputError(
            [
                Problem(
                    f"{name}.{c}",
                    "missing_column",
                    f"{name} has no column {c} (expected columns: {', '.join(columns)})",
                )
                for c in missing
            ]
        )
    return table.select(list(columns))


def _ids(table: pa.Table, name: str, column: str) -> npt.NDArray[np.int64]:
    col = table.column(column)
    if not pa.types.is_integer(col.type):
        raise InputError(
            [
                Problem(
                    f"{name}.{column}",
                    "wrong_type",
                    f"{name}.{column} is {col.type}; expected an integer column",
                )
            ]
        )
    if col.null_count:
        raise InputError(
            [Problem(f"{name}.{column}", "null", f"{name}.{column} has {col.null_count} empty ids")]
        )
    ids: npt.NDArray[np.int64] = col.to_numpy().astype(np.int64, copy=False)
    unique, counts = np.unique(ids, return_counts=True)
    if len(unique) != len(ids):
        dup = int(unique[counts > 1][0])
        raise InputError(
            [
                Problem(
                    f"{name}.{column}",
                    "duplicate",
                    f"{name} holds {column} {dup} more than once (one row per person expected)",
                )
            ]
        )
    return ids


def _days_since_epoch(table: pa.Table, name: str, column: str) -> npt.NDArray[np.float64]:
    """Dates as days since 1970-01-01, NaN where empty."""
    col = table.column(column)
    if pa.types.is_timestamp(col.type):
        col = pc.cast(col, pa.date32())
    if not pa.types.is_date(col.type):
        raise InputError(
            [
                Problem(
                    f"{name}.{column}",
                    "wrong_type",
                    f"{name}.{column} is {col.type}; expected a date column",
                )
            ]
        )
    days = pc.cast(pc.cast(col, pa.date32()), pa.int32())
    out: npt.NDArray[np.float64] = (
        days.to_numpy(zero_copy_only=False).astype(np.float64)
        if days.null_count == 0
        else pc.fill_null(pc.cast(days, pa.float64()), float("nan")).to_numpy()
    )
    return out


def evaluate_cohort(
    cohort: Any, truth: Any, *, window_days: int = DEFAULT_WINDOW_DAYS
) -> Agreement:
    """Compare ``cohort`` (subject_id, cohort_start_date) with ``truth`` (person_id, is_trd,
    index_date); both PyArrow tables or pandas data frames, one row per person.

    Every cohort subject must be a person of the truth, and every truly TRD person must have an
    index date; otherwise :class:`~trdnav.errors.InputError` says which.
    """
    cohort_t = _as_arrow(cohort, "cohort", COHORT_COLUMNS)
    truth_t = _as_arrow(truth, "truth", TRUTH_COLUMNS)
    subject = _ids(cohort_t, "cohort", "subject_id")
    person = _ids(truth_t, "truth", "person_id")
    is_trd_col = truth_t.column("is_trd")
    if not pa.types.is_boolean(is_trd_col.type):
        raise InputError(
            [
                Problem(
                    "truth.is_trd",
                    "wrong_type",
                    f"truth.is_trd is {is_trd_col.type}; expected a boolean column",
                )
            ]
        )
    if is_trd_col.null_count:
        raise InputError(
            [
                Problem(
                    "truth.is_trd",
                    "null",
                    f"truth.is_trd is empty for {is_trd_col.null_count} persons",
                )
            ]
        )
    is_trd: npt.NDArray[np.bool_] = is_trd_col.to_numpy().astype(bool, copy=False)
    start = _days_since_epoch(cohort_t, "cohort", "cohort_start_date")
    true_index = _days_since_epoch(truth_t, "truth", "index_date")
    if np.isnan(start).any():
        raise InputError(
            [
                Problem(
                    "cohort.cohort_start_date",
                    "null",
                    f"cohort_start_date is empty for {int(np.isnan(start).sum())} subjects",
                )
            ]
        )
    if np.isnan(true_index[is_trd]).any():
        raise InputError(
            [
                Problem(
                    "truth.index_date",
                    "null",
                    "index_date is empty for "
                    f"{int(np.isnan(true_index[is_trd]).sum())} persons with is_trd true",
                )
            ]
        )

    order = np.argsort(person, kind="stable")
    sorted_person = person[order]
    pos = np.searchsorted(sorted_person, subject)
    if len(sorted_person):
        pos_clipped = np.minimum(pos, len(sorted_person) - 1)
        found = (pos < len(sorted_person)) & (sorted_person[pos_clipped] == subject)
    else:
        found = np.zeros(len(subject), dtype=bool)
    if not found.all():
        stray = int(subject[~found][0])
        raise InputError(
            [
                Problem(
                    "cohort.subject_id",
                    "unknown_person",
                    f"{int((~found).sum())} cohort subjects are not in the ground truth "
                    f"(first: {stray})",
                )
            ]
        )
    truth_row = order[pos]  # for each cohort row, its row in the truth
    predicted = np.zeros(len(person), dtype=bool)
    predicted[truth_row] = True

    tp = int((predicted & is_trd).sum())
    fp = int((predicted & ~is_trd).sum())
    fn = int((~predicted & is_trd).sum())
    tn = int((~predicted & ~is_trd).sum())
    sensitivity = _ratio(tp, tp + fn)
    ppv = _ratio(tp, tp + fp)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn)

    hit = is_trd[truth_row]
    diff = start[hit] - true_index[truth_row[hit]]
    absdiff = np.abs(diff)
    return Agreement(
        persons=len(person),
        true_positives=tp,
        false_positives=fp,
        false_negatives=fn,
        true_negatives=tn,
        sensitivity=sensitivity,
        ppv=ppv,
        specificity=_ratio(tn, tn + fp),
        f1=f1,
        index_exact=_ratio(int((absdiff == 0).sum()), tp),
        index_within_window=_ratio(int((absdiff <= window_days).sum()), tp),
        index_median_abs_days=float(np.median(absdiff)) if tp else None,
        index_earlier=int((diff < 0).sum()),
        index_later=int((diff > 0).sum()),
        window_days=window_days,
    )
