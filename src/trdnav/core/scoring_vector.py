"""Vectorised scoring of many complete forms of one instrument at once.

:func:`score_matrix` is the bulk counterpart of :func:`trdnav.core.scoring.score_answers` for
complete answer matrices (one row per response, one column per item, no missing answers) of
instruments with a total: plain sums, domain sums and max-of-domain rules (QIDS-SR16). It gives
the same totals, bands and suicide-item signal as the scalar path, row by row; screens, missing-
item rules and notes stay with the scalar path. Bad input raises
:class:`~trdnav.core.scoring.ScoringError` with the same messages as the scalar path, the row
added to ``loc``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from trdnav.core.scoring import ScoringError, ScoringProblem, expected_answer
from trdnav.knowledge.schema import Instrument

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
StrArray = npt.NDArray[np.str_]

MAX_PROBLEMS = 10  # out-of-range answers listed one by one; the rest are counted


@dataclass(frozen=True)
class VectorScores:
    """Scores of ``n`` responses. Row ``i`` matches ``score_answers`` on row ``i`` of the input.

    ``band_index[i]`` indexes ``band_names`` (-1: no band covers the total, or the instrument has
    none). ``suicide_answer``/``suicide_signal`` are None for instruments without a suicide item.
    """

    instrument: str
    instrument_id: str
    totals: IntArray
    total_max: float | None
    band_index: IntArray
    band_names: tuple[str, ...]
    domains: dict[str, IntArray] = field(default_factory=dict)
    suicide_answer: IntArray | None = None
    suicide_signal: BoolArray | None = None

    def __len__(self) -> int:
        return int(self.totals.shape[0])

    @property
    def band_labels(self) -> StrArray:
        """The band label of each row ('' where no band applies)."""
        names = np.array([*self.band_names, ""], dtype=np.str_)
        return names[self.band_index]  # index -1 picks the trailing ''


def _fail(inst: Instrument, loc: str, message: str) -> ScoringError:
    return ScoringError(inst.name, [ScoringProblem(loc=loc, message=message)])


def _check(inst: Instrument, answers: npt.NDArray[np.generic]) -> IntArray:
    if not inst.scored:
        raise _fail(inst, "items", f"{inst.name} has no total: score it with score_answers")
    if not isinstance(answers, np.ndarray) or answers.ndim != 2:
        shape = getattr(answers, "shape", None)
        raise _fail(
            inst,
            "answers",
            f"answers must be a 2-D matrix (responses × {len(inst.items)} items); got shape "
            f"{shape}",
        )
    if answers.dtype == np.bool_ or not np.issubdtype(answers.dtype, np.integer):
        raise _fail(
            inst,
            "answers",
            f"answers of {inst.name} must be whole numbers (an integer matrix); got dtype "
            f"{answers.dtype}",
        )
    ints = cast(npt.NDArray[np.integer[Any]], answers)
    n_items = len(inst.items)
    if answers.shape[1] != n_items:
        raise _fail(
            inst,
            "items",
            f"{inst.name} has {n_items} items; {answers.shape[1]} answers given per response",
        )
    lo = np.array([item.min for item in inst.items], dtype=np.int64)
    hi = np.array([item.max for item in inst.items], dtype=np.int64)
    bad = (ints < lo) | (ints > hi)
    if bad.any():
        rows, cols = np.nonzero(bad)
        problems = [
            ScoringProblem(
                loc=f"rows[{r}].items[{k}]",
                message=f"item {inst.items[k].n} of {inst.name} must be "
                f"{expected_answer(inst, inst.items[k])}; got {int(ints[r, k])}",
            )
            for r, k in zip(rows[:MAX_PROBLEMS].tolist(), cols[:MAX_PROBLEMS].tolist(), strict=True)
        ]
        if len(rows) > MAX_PROBLEMS:
            problems.append(
                ScoringProblem(
                    loc="answers",
                    message=f"{len(rows) - MAX_PROBLEMS} more out-of-range answers not listed "
                    f"({len(rows)} in {len(np.unique(rows))} responses)",
                )
            )
        raise ScoringError(inst.name, problems)
    return ints.astype(np.int64, copy=False)


def _totals(inst: Instrument, a: IntArray) -> tuple[IntArray, dict[str, IntArray]]:
    col = {item.n: k for k, item in enumerate(inst.items)}
    domains: dict[str, IntArray] = {}
    if inst.domains:
        for d in inst.domains:
            block = a[:, [col[n] for n in d.items]]
            domains[d.name] = block.max(axis=1) if d.combine == "max" else block.sum(axis=1)
        total: IntArray = np.stack(list(domains.values()), axis=1).sum(axis=1)
        return total, domains
    labelled: dict[str, list[int]] = {}
    for k, item in enumerate(inst.items):
        if item.domain is not None:
            labelled.setdefault(item.domain, []).append(k)
    for name, cols in labelled.items():  # subscales from item labels (PCL-5 clusters, MDQ parts)
        domains[name] = a[:, cols].sum(axis=1)
    if inst.screen is not None and inst.screen.method == "mdq":
        core = [k for k, item in enumerate(inst.items) if item.domain is None]
        return a[:, core].sum(axis=1), domains  # the MDQ total counts the 13 symptom items only
    return a.sum(axis=1), domains


def _bands(inst: Instrument, totals: IntArray) -> tuple[IntArray, tuple[str, ...]]:
    if not inst.bands:
        return np.full(totals.shape, -1, dtype=np.int64), ()
    bands = sorted(inst.bands, key=lambda b: b.min)
    minima = np.array([b.min for b in bands], dtype=np.float64)
    maxima = np.array([np.inf if b.max is None else b.max for b in bands], dtype=np.float64)
    idx = np.searchsorted(minima, totals, side="right").astype(np.int64) - 1
    safe = np.clip(idx, 0, len(bands) - 1)
    covered = (idx >= 0) & (totals <= maxima[safe])
    return np.where(covered, idx, -1).astype(np.int64), tuple(b.label for b in bands)


def score_matrix(inst: Instrument, answers: npt.NDArray[np.generic]) -> VectorScores:
    """Score ``answers`` (n_responses × n_items, integers, none missing) of a scored instrument."""
    a = _check(inst, answers)
    totals, domains = _totals(inst, a)
    band_index, band_names = _bands(inst, totals)
    suicide_answer: IntArray | None = None
    suicide_signal: BoolArray | None = None
    if inst.suicide_item is not None:
        suicide_answer = np.ascontiguousarray(a[:, inst.suicide_item - 1])
        suicide_signal = suicide_answer > 0
    return VectorScores(
        instrument=inst.name,
        instrument_id=inst.id,
        totals=totals,
        total_max=inst.total_max,
        band_index=band_index,
        band_names=band_names,
        domains=domains,
        suicide_answer=suicide_answer,
        suicide_signal=suicide_signal,
    )
