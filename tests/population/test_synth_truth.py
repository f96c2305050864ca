"""Ground truth of the generator: the phenotype's rules on hand-made true journeys, and the
simulated journeys' calibration against the STAR*D figures of the knowledge base."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trdnav.knowledge.load import Knowledge
from trdnav.population.synth.journeys import Fill, Person, Simulator, course_schedule, day
from trdnav.population.synth.truth import TruthRules
from trdnav.population.synth.vocabulary import Vocabulary, build_vocabulary_index

D0 = day(date(2020, 1, 1))


@pytest.fixture(scope="module")
def voc(kb: Knowledge) -> Vocabulary:
    return build_vocabulary_index(kb)


@pytest.fixture(scope="module")
def rules(kb: Knowledge, voc: Vocabulary) -> TruthRules:
    return TruthRules(kb, voc)


@pytest.fixture(scope="module")
def weeks(kb: Knowledge) -> int:
    return kb.population.parameters.min_weeks_at_adequate_dose.value


def a_person(birth: date = date(1980, 6, 15), obs: tuple[int, int] | None = None) -> Person:
    start, end = obs or (D0 - 400, D0 + 3000)
    return Person(1, True, birth, start, end, True)


def fills(voc: Vocabulary, drug: str, start: int, n: int, dose: float, ds: int = 30) -> list[Fill]:
    product = next(p for p in voc.clinical[drug] if (dose / p.strength_mg).is_integer())
    units = int(dose / product.strength_mg)
    return [Fill(start + k * ds, drug, dose, ds, product, units) for k in range(n)]


def two_failed_then_third(voc: Vocabulary, kb: Knowledge) -> Person:
    p = a_person()
    sert = kb.drugs["sertraline"].antidepressant_dose
    venl = kb.drugs["venlafaxine"].antidepressant_dose
    esc = kb.drugs["escitalopram"].antidepressant_dose
    assert sert and venl and esc
    p.fills += fills(voc, "sertraline", D0, 3, sert.min_adequate_mg_per_day)
    p.fills += fills(voc, "venlafaxine", D0 + 90, 3, venl.min_adequate_mg_per_day)
    p.fills += fills(voc, "escitalopram", D0 + 180, 1, esc.min_adequate_mg_per_day)
    p.dx += [(D0, "F32.1"), (D0 + 90, "F32.1"), (D0 + 180, "F32.1")]
    return p


def test_two_failed_adequate_trials_and_a_third_step_are_trd(
    voc: Vocabulary, kb: Knowledge, rules: TruthRules
) -> None:
    t = rules.truth(two_failed_then_third(voc, kb))
    assert (t.has_mdd, t.excluded, t.is_trd) == (True, None, True)
    assert t.index_date == D0 + 180
    assert t.episode_start == D0
    assert t.true_failed_adequate_trials == 2
    assert t.age_at_index == 40  # 2020-06-29, born 1980-06-15


def test_without_a_third_step_there_is_no_index(
    voc: Vocabulary, kb: Knowledge, rules: TruthRules
) -> None:
    p = two_failed_then_third(voc, kb)
    p.fills = [f for f in p.fills if f.drug != "escitalopram"]
    t = rules.truth(p)
    assert (t.is_trd, t.index_date, t.true_failed_adequate_trials) == (False, None, 1)


@pytest.mark.parametrize("extra_days, adequate", [(-1, False), (0, True)])
def test_an_era_is_adequate_from_the_kb_weeks_at_the_minimum_dose(
    voc: Vocabulary, kb: Knowledge, rules: TruthRules, weeks: int, extra_days: int, adequate: bool
) -> None:
    p = two_failed_then_third(voc, kb)
    sert = kb.drugs["sertraline"].antidepressant_dose
    assert sert
    p.fills = [f for f in p.fills if f.drug != "sertraline"]
    p.fills += fills(voc, "sertraline", D0, 1, sert.min_adequate_mg_per_day, 7 * weeks + extra_days)
    assert rules.truth(p).is_trd is adequate


def test_a_dose_below_the_minimum_is_not_an_adequate_trial(
    voc: Vocabulary, kb: Knowledge, rules: TruthRules
) -> None:
    p = two_failed_then_third(voc, kb)
    sert = kb.drugs["sertraline"].antidepressant_dose
    assert sert
    p.fills = [f for f in p.fills if f.drug != "sertraline"]
    p.fills += fills(voc, "sertraline", D0, 3, sert.min_adequate_mg_per_day / 2)
    assert rules.truth(p).is_trd is False


def test_titration_starts_the_adequate_weeks_at_the_first_adequate_fill(
    voc: Vocabulary, kb: Knowledge, rules: TruthRules, weeks: int
) -> None:
    p = two_failed_then_third(voc, kb)
    sert = kb.drugs["sertraline"].antidepressant_dose
    assert sert
    low, full = sert.min_adequate_mg_per_day / 2, sert.min_adequate_mg_per_day
    p.fills = [f for f in p.fills if f.drug != "sertraline"]
    # 30 days low, then 7*weeks - 1 days at the minimum: one day short
    p.fills += fills(voc, "sertraline", D0, 1, low)
    p.fills += fills(voc, "sertraline", D0 + 30, 1, full, 7 * weeks - 1)
    assert rules.truth(p).is_trd is False
    p.fills[-1] = p.fills[-1]._replace(days_supply=7 * weeks)
    assert rules.truth(p).is_trd is True


@pytest.mark.parametrize("gap, joined", [(0, True), (30, True), (31, False)])
def test_fills_join_into_one_era_within_the_persistence_window(
    voc: Vocabulary, kb: Knowledge, rules: TruthRules, gap: int, joined: bool
) -> None:
    assert kb.population.parameters.era_persistence_days.value == 30
    sert = kb.drugs["sertraline"].antidepressant_dose
    assert sert
    first, second = fills(voc, "sertraline", D0, 2, sert.min_adequate_mg_per_day)
    second = second._replace(day=first.day + 29 + gap)  # first ends on day + 29
    eras = rules.eras("sertraline", [first, second])
    assert len(eras) == (1 if joined else 2)


def test_an_adolescent_at_index_is_not_in_the_cohort(
    voc: Vocabulary, kb: Knowledge, rules: TruthRules
) -> None:
    adult = kb.population.parameters.min_age_at_index.value
    index = date(2020, 1, 1).toordinal() + 180
    index_date = date.fromordinal(index)
    for years, expected in ((adult, True), (adult - 1, False)):
        p = two_failed_then_third(voc, kb)
        p.birth = date(index_date.year - years, index_date.month, index_date.day)
        t = rules.truth(p)
        assert t.is_trd is expected, years
    p.birth = date(index_date.year - adult, index_date.month, index_date.day + 1)
    assert rules.truth(p).is_trd is False  # the 18th birthday is the day after


@pytest.mark.parametrize(
    "code, reason", [("F31.9", "bipolar"), ("F25.0", "schizophrenia_spectrum")]
)
def test_an_exclusion_diagnosis_anywhere_excludes(
    voc: Vocabulary, kb: Knowledge, rules: TruthRules, code: str, reason: str
) -> None:
    p = two_failed_then_third(voc, kb)
    p.dx.append((D0 + 2000, code))
    t = rules.truth(p)
    assert (t.has_mdd, t.excluded, t.is_trd, t.index_date) == (True, reason, False, None)


def test_codes_outside_the_mdd_set_are_not_mdd(
    voc: Vocabulary, kb: Knowledge, rules: TruthRules
) -> None:
    p = two_failed_then_third(voc, kb)
    p.dx = [(d, "F33.8" if k % 2 else "F32.A") for k, (d, _) in enumerate(p.dx)]
    t = rules.truth(p)
    assert (t.has_mdd, t.is_trd) == (False, False)


def test_an_augmentation_counts_only_while_an_antidepressant_runs(
    voc: Vocabulary, kb: Knowledge, rules: TruthRules
) -> None:
    p = two_failed_then_third(voc, kb)
    p.fills = [f for f in p.fills if f.drug in ("sertraline", "escitalopram")]
    dose = kb.drugs["aripiprazole"].augmentation_dose
    assert dose and dose.min_mg_per_day
    during = fills(voc, "aripiprazole", D0 + 30, 3, dose.min_mg_per_day)
    p.fills += during
    # sertraline adequate and failed; aripiprazole (from day 30, adequate, failed); escitalopram
    assert rules.truth(p).index_date == D0 + 180
    p.fills = [f for f in p.fills if f.drug != "aripiprazole"]
    p.fills += fills(voc, "aripiprazole", D0 + 100, 3, dose.min_mg_per_day)  # sertraline ended
    assert rules.truth(p).is_trd is False


def test_ect_after_two_failures_is_the_index(
    voc: Vocabulary, kb: Knowledge, rules: TruthRules
) -> None:
    p = two_failed_then_third(voc, kb)
    p.fills = [f for f in p.fills if f.drug != "escitalopram"]
    ect = kb.population.concept_set("ect").include[0].code
    p.procedures += [(D0 + 200 + 2 * k, ect) for k in range(8)]
    t = rules.truth(p)
    assert (t.is_trd, t.index_date) == (True, D0 + 200)


def test_trials_in_different_episodes_do_not_add_up(
    voc: Vocabulary, kb: Knowledge, rules: TruthRules
) -> None:
    gap = kb.population.parameters.episode_gap_days.value
    p = two_failed_then_third(voc, kb)
    later = gap + 400  # the venlafaxine and escitalopram steps in a second episode
    p.fills = [f if f.drug == "sertraline" else f._replace(day=f.day + later) for f in p.fills]
    p.dx = [(D0, "F32.1"), (D0 + 90 + later, "F33.1"), (D0 + 180 + later, "F33.1")]
    t = rules.truth(p)
    assert t.is_trd is False and t.true_failed_adequate_trials == 1


@given(
    st.lists(st.tuples(st.integers(0, 400), st.sampled_from([1, 30, 90])), min_size=1, max_size=12)
)
def test_eras_partition_the_fills_and_are_separated_by_more_than_the_window(
    rules: TruthRules, voc: Vocabulary, raw: list[tuple[int, int]]
) -> None:
    product = voc.clinical["sertraline"][0]
    fs = [Fill(D0 + d, "sertraline", product.strength_mg, ds, product, 1) for d, ds in raw]
    eras = rules.eras("sertraline", fs)
    for f in fs:
        assert sum(e.start <= f.day <= e.end for e in eras) == 1
    for a, b in pairwise(eras):
        assert b.start - a.end > rules.persistence
    for e in eras:
        assert e.adequacy is None or e.start <= e.adequacy <= e.end


def test_simulated_steps_remit_at_the_kb_stard_rates(kb: Knowledge, voc: Vocabulary) -> None:
    rates = kb.population.synthetic.stard_remission_by_step.values
    sim = Simulator(kb, voc)
    tried: dict[int, int] = defaultdict(int)
    remitted: dict[int, int] = defaultdict(int)
    for pid in range(1, 20_001):
        for step in sim.person(3, pid).steps:
            if step.adequate:
                level = min(step.level, len(rates))
                tried[level] += 1
                remitted[level] += step.remitted
    for level, rate in enumerate(rates, start=1):
        n = tried[level]
        assert n >= 200, level
        se = math.sqrt(rate * (1 - rate) / n)
        assert abs(remitted[level] / n - rate) < 4 * se + 0.005, (level, n, remitted[level] / n)


def test_a_person_depends_only_on_the_seed_and_their_id(kb: Knowledge, voc: Vocabulary) -> None:
    sim = Simulator(kb, voc)
    alone = sim.person(11, 500)
    for pid in range(1, 50):
        sim.person(11, pid)
    again = sim.person(11, 500)
    assert (alone.dx, alone.fills, alone.procedures) == (again.dx, again.fills, again.procedures)
    other = sim.person(12, 500)
    assert (other.birth, other.dx) != (alone.birth, alone.dx)


def test_neuromodulation_courses_follow_the_kb_protocols(kb: Knowledge) -> None:
    protocols = [p for p in kb.protocols.values() if p.treatment in ("ect", "rtms", "esketamine")]
    assert {p.treatment for p in protocols} == {"ect", "rtms", "esketamine"}
    for protocol in protocols:
        course = course_schedule(protocol)
        planned = [ph for ph in protocol.phases if not ph.open_ended]
        assert len(course.offsets) == sum(ph.sessions for ph in planned), protocol.id
        assert list(course.offsets) == sorted(course.offsets)
        first = planned[0]
        week_one = [d for d in course.offsets if d < 7]
        assert len(week_one) == min(first.sessions, first.per_week * first.per_day), protocol.id
    esketamine = next(p for p in protocols if p.treatment == "esketamine")
    course = course_schedule(esketamine)
    dose = esketamine.phases[0].dose
    assert dose is not None and course.first_mg == dose.first_session_mg
    assert set(course.doses_mg[0]) == set(dose.options_mg)
