"""Properties of scoring that must hold for every scored instrument, on random answers."""

from __future__ import annotations

import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st

from trdnav.core.scoring import score_answers
from trdnav.core.scoring_vector import score_matrix
from trdnav.knowledge.load import default_knowledge
from trdnav.knowledge.schema import Instrument

_KB = default_knowledge()
SCORED = sorted((i for i in _KB.instruments.values() if i.scored), key=lambda i: i.id)
# instruments whose missing-item rule can still give a total (PHQ-9 prorate, QIDS domain rule)
LENIENT = [i for i in SCORED if i.missing.rule != "refuse"]


def test_the_properties_cover_every_scored_instrument():
    assert len(SCORED) == 13  # all 15 but the C-SSRS screener and the ASRS
    assert {i.id for i in LENIENT} == {"phq9", "qids_sr16"}


@st.composite
def complete(draw: st.DrawFn, inst: Instrument) -> list[int]:
    return [draw(st.integers(item.min, item.max)) for item in inst.items]


@st.composite
def form(draw: st.DrawFn, pool: list[Instrument]) -> tuple[Instrument, list[int]]:
    inst = draw(st.sampled_from(pool))
    return inst, draw(complete(inst))


@st.composite
def partial(draw: st.DrawFn, pool: list[Instrument]) -> tuple[Instrument, list[int | None]]:
    """A form with the blanks its missing-item rule accepts (PHQ-9 prorate, QIDS domain rule)."""
    inst, answers = draw(form(pool))
    col = {item.n: k for k, item in enumerate(inst.items)}
    if inst.missing.rule == "prorate":
        allowed = [n for n in col if n not in inst.missing.never_missing]
        blank = draw(st.sets(st.sampled_from(allowed), max_size=inst.missing.max_missing))
    else:  # domain_any: any items, as long as each domain keeps one answer
        blank = set()
        for d in inst.domains:
            blank |= draw(st.sets(st.sampled_from(d.items), max_size=len(d.items) - 1))
    return inst, [
        None if item.n in blank else a for item, a in zip(inst.items, answers, strict=True)
    ]


def _raise_one(
    draw: st.DrawFn, inst: Instrument, answers: list[int | None]
) -> list[int | None] | None:
    room = [
        k
        for k, (item, a) in enumerate(zip(inst.items, answers, strict=True))
        if a is not None and a < item.max
    ]
    if not room:
        return None
    k = draw(st.sampled_from(room))
    assert answers[k] is not None
    step = draw(st.integers(1, inst.items[k].max - answers[k]))  # type: ignore[operator]
    higher = list(answers)
    higher[k] = answers[k] + step  # type: ignore[operator]
    return higher


@given(st.data())
def test_raising_any_single_answer_never_lowers_the_total(data):
    inst, answers = data.draw(form(SCORED))
    higher = _raise_one(data.draw, inst, list(answers))
    assume(higher is not None)
    before = score_answers(inst, answers).total
    after = score_answers(inst, higher).total
    assert before is not None and after is not None
    assert after >= before


@given(st.data())
def test_raising_an_answer_on_an_incomplete_form_never_lowers_the_total(data):
    inst, answers = data.draw(partial(LENIENT))
    higher = _raise_one(data.draw, inst, answers)
    assume(higher is not None)
    before = score_answers(inst, answers).total
    after = score_answers(inst, higher).total
    assert before is not None and after is not None
    assert after >= before


@given(form(SCORED))
def test_totals_stay_in_range_and_every_total_has_a_band(case):
    inst, answers = case
    s = score_answers(inst, answers)
    assert s.total is not None and inst.total_max is not None
    assert inst.total_min <= s.total <= inst.total_max
    if inst.bands:
        assert s.band is not None


@given(partial(LENIENT))
def test_incomplete_forms_stay_in_range_too(case):
    inst, answers = case
    s = score_answers(inst, answers)
    assert s.total is not None and inst.total_max is not None
    assert inst.total_min <= s.total <= inst.total_max
    assert s.total == int(s.total)  # proration rounds to a whole score
    assert s.band is not None


@given(st.data())
def test_the_vectorised_path_equals_score_answers(data):
    inst = data.draw(st.sampled_from(SCORED))
    rows = data.draw(st.lists(complete(inst), min_size=1, max_size=12))
    v = score_matrix(inst, np.array(rows, dtype=data.draw(st.sampled_from([np.int8, np.int64]))))
    assert len(v) == len(rows)
    labels = v.band_labels.tolist()
    for i, row in enumerate(rows):
        s = score_answers(inst, row)
        assert v.totals[i] == s.total
        assert labels[i] == (s.band or "")
        assert bool(v.band_index[i] == -1) is (s.band is None)
        assert {name: float(col[i]) for name, col in v.domains.items()} == s.domains
        if inst.suicide_item is None:
            assert v.suicide_signal is None and s.suicide_signal is None
        else:
            assert v.suicide_signal is not None and v.suicide_answer is not None
            assert bool(v.suicide_signal[i]) is s.suicide_signal
            assert int(v.suicide_answer[i]) == s.suicide_item_answer
