"""True events of one synthetic person: diagnoses, fills, procedures, PHQ-9 scores.

:meth:`Simulator.person` draws one person from a seed derived from ``(seed, person_id)`` only, so
the data do not depend on how persons are chunked. It returns the *true* events (before recording
noise) and a log of the treatment steps of each depressive episode. Dates are day numbers (days
since 1970-01-01).

A depressive episode is a sequence of treatment steps. Each step is an antidepressant (the first
one mostly an SSRI), a switch to another ingredient, an augmentation added to a continuing
antidepressant, or — after at least two failed adequate trials, for some — a course of ECT, rTMS or
esketamine. A drug trial is *adequate* (titrated to the minimum dose of the drug file, continued
for the knowledge base's weeks at an adequate dose), *short* (stopped within a month), *low-dose*
(below the minimum throughout) or *poorly adhered* (fills separated by gaps longer than the era
persistence window); a small share of would-be adequate trials is *filled but not taken* (fills on
time at an adequate dose, nothing taken: the rows look adequate, the truth holds no trial). An
adequate step at STAR*D level k remits with the knowledge base's level-k
remission rate; inadequate steps do not advance the level. A remission is followed by maintenance
and, for some, a recurrent episode more than a year after the last diagnosis.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from itertools import accumulate
from typing import NamedTuple, TypeVar

from trdnav.knowledge.load import Knowledge
from trdnav.knowledge.protocols import Protocol
from trdnav.knowledge.schema import Role
from trdnav.population.synth.settings import DEFAULT_SETTINGS, SynthSettings
from trdnav.population.synth.vocabulary import (
    ClinicalDrug,
    Vocabulary,
    is_antidepressant_trial_drug,
    role_minimums,
)

T = TypeVar("T")
EPOCH = date(1970, 1, 1).toordinal()

ECT_CODE = "90870"
RTMS_INITIAL, RTMS_SUBSEQUENT, RTMS_REDETERMINATION = "90867", "90868", "90869"
ESKETAMINE_LOW, ESKETAMINE_HIGH = "G2082", "G2083"  # up to 56 mg / more than 56 mg
OFFICE_VISIT = "99213"

MDD_FIRST_CODES: tuple[tuple[str, float], ...] = (
    ("F32.1", 0.32),
    ("F32.9", 0.25),
    ("F32.2", 0.17),
    ("F32.0", 0.12),
    ("F32.3", 0.03),
    ("F33.1", 0.07),
    ("F33.9", 0.04),
)
MDD_RECURRENT_CODES: tuple[tuple[str, float], ...] = (
    ("F33.1", 0.40),
    ("F33.9", 0.25),
    ("F33.2", 0.20),
    ("F33.0", 0.12),
)
MDD_PSYCHOTIC_RECURRENT = ("F33.3", 0.03)


def day(d: date) -> int:
    return d.toordinal() - EPOCH


def to_date(d: int) -> date:
    return date.fromordinal(d + EPOCH)


def _ri(rng: random.Random, a: int, b: int) -> int:
    """A uniform integer in [a, b] (faster than ``Random.randint``)."""
    return a + int(rng.random() * (b - a + 1))


def _choice(rng: random.Random, seq: Sequence[T]) -> T:
    return seq[int(rng.random() * len(seq))]


class Weighted:
    """Items with weights, drawn by bisection of the cumulative weights."""

    def __init__(self, weighted: tuple[tuple[str, float], ...]) -> None:
        self.items = [item for item, _ in weighted]
        self.cum = list(accumulate(w for _, w in weighted))

    def draw(self, rng: random.Random) -> str:
        k = bisect_right(self.cum, rng.random() * self.cum[-1])
        return self.items[min(k, len(self.items) - 1)]


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    u = rng.random() * sum(w for _, w in weighted)
    for item, w in weighted:
        u -= w
        if u < 0:
            return item
    return weighted[-1][0]


class Fill(NamedTuple):
    day: int
    drug: str  # drug id (knowledge base) or noise drug name
    dose_mg: float  # true daily dose (per session for esketamine)
    days_supply: int
    product: ClinicalDrug
    tablets: int  # per day (devices per session for esketamine)
    taken: bool = True  # False: collected at the pharmacy but not taken (filled_not_taken)


@dataclass(frozen=True)
class StepLog:
    """One simulated treatment step, as intended by the simulation (for calibration tests)."""

    episode: int
    level: int  # STAR*D level: 1 + adequate steps before it in the episode
    modality: str  # "antidepressant", "augmentation", "ect", "rtms", "esketamine"
    drug: str | None
    kind: str  # trial kind, or "course" / "abandoned" for neuromodulation
    start: int
    adequate: bool
    remitted: bool


@dataclass
class Person:
    person_id: int
    female: bool
    birth: date
    obs_start: int
    obs_end: int
    has_mdd_journey: bool = False
    exclusion: str | None = None
    dx: list[tuple[int, str]] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    procedures: list[tuple[int, str]] = field(default_factory=list)
    measurements: list[tuple[int, str, float]] = field(default_factory=list)
    steps: list[StepLog] = field(default_factory=list)


@dataclass(frozen=True)
class DrugPlan:
    """Simulation doses of one drug, derived from its knowledge-base minimum (and maximum)."""

    drug: str
    low_mg: float | None  # below every minimum of the drug file
    adequate_mg: float  # at or above every minimum of the drug file
    high_mg: float
    products: tuple[ClinicalDrug, ...]
    cache: dict[float, tuple[ClinicalDrug, int]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def product_for(self, dose: float) -> tuple[ClinicalDrug, int]:
        """The strongest presentation giving ``dose`` in one to four units a day."""
        hit = self.cache.get(dose)
        if hit is None:
            hit = self.cache[dose] = self._product_for(dose)
        return hit

    def _product_for(self, dose: float) -> tuple[ClinicalDrug, int]:
        for product in sorted(self.products, key=lambda p: -p.strength_mg):
            units = dose / product.strength_mg
            if abs(units - round(units)) < 1e-9 and 1 <= round(units) <= 4:
                return product, round(units)
        raise ValueError(f"no presentation of {self.drug} gives {dose} mg")


@dataclass(frozen=True)
class CourseSchedule:
    """Session days (offsets from the first) of one knowledge-base protocol's planned phases."""

    protocol: str
    offsets: tuple[int, ...]
    doses_mg: tuple[tuple[float, ...], ...]  # per session: the phase's dose options (mg)
    first_mg: float | None


def course_schedule(protocol: Protocol) -> CourseSchedule:
    """The planned (not open-ended) phases of ``protocol`` as session days: ``per_week`` treatment
    days a week (weekdays when five or more, else spread over the week), every ``every_weeks``
    weeks, ``per_day`` sessions a day."""
    offsets: list[int] = []
    doses: list[tuple[float, ...]] = []
    first: float | None = None
    start = 0
    for phase in protocol.phases:
        if phase.open_ended:
            break
        if phase.per_week >= 5:
            week_days = list(range(phase.per_week))
        else:
            week_days = [7 * k // phase.per_week for k in range(phase.per_week)]
        options = tuple(phase.dose.options_mg) if phase.dose is not None else ()
        if first is None and phase.dose is not None:
            first = phase.dose.first_session_mg
        count, week = 0, 0
        while count < phase.sessions:
            if week % phase.every_weeks == 0:
                for wd in week_days:
                    for _ in range(phase.per_day):
                        if count < phase.sessions:
                            offsets.append(start + 7 * week + wd)
                            doses.append(options)
                            count += 1
            week += 1
        start += 7 * max(week, phase.weeks or 0)
    return CourseSchedule(protocol.id, tuple(offsets), tuple(doses), first)


class Catalogue:
    """The drugs the journeys draw from, with their simulation doses, built from the KB."""

    def __init__(self, kb: Knowledge, voc: Vocabulary, settings: SynthSettings) -> None:
        self.kb = kb
        self.voc = voc
        self.settings = settings
        params = kb.population.parameters
        self.rates = kb.population.synthetic.stard_remission_by_step.values
        self.adequate_days = 7 * params.min_weeks_at_adequate_dose.value
        self.persistence = params.era_persistence_days.value
        self.gap_days = params.episode_gap_days.value
        self.adult_age = params.min_age_at_index.value
        self.phq9_loinc = params.phq9_total_loinc.value
        phq9 = kb.resolve_instrument("phq9")
        if phq9 is None or phq9.total_max is None:
            raise ValueError("the knowledge base has no scored PHQ-9 instrument")
        self.phq9_range = (sum(i.min for i in phq9.items), int(phq9.total_max))
        self.plans: dict[str, DrugPlan] = {}
        self.by_class: dict[str, list[str]] = {}
        for drug in kb.drugs.values():
            products = voc.clinical.get(drug.id, ())
            if not products:
                continue
            plan = self._plan(drug.id, products)
            if plan is None:
                continue
            self.plans[drug.id] = plan
            if is_antidepressant_trial_drug(kb, drug):
                self.by_class.setdefault(drug.drug_class, []).append(drug.id)
        for ids in self.by_class.values():
            ids.sort()
        for name, products in voc.clinical.items():
            if name not in kb.drugs:
                self.plans[name] = DrugPlan(
                    name, None, products[0].strength_mg, products[0].strength_mg * 2, products
                )
        self.augmentation = tuple(
            (d, w)
            for d, w in settings.journey.augmentation_agents
            if d in self.plans and Role.AUGMENTATION in kb.drugs[d].roles
        )
        j = settings.journey
        self.w_first_line = Weighted(j.first_line_classes)
        self.w_switch = Weighted(j.switch_classes)
        self.w_trial = Weighted(j.trial_kinds)
        self.w_first_codes = Weighted(MDD_FIRST_CODES)
        self.w_recurrent_codes = Weighted((*MDD_RECURRENT_CODES, MDD_PSYCHOTIC_RECURRENT))
        self.courses: dict[str, list[CourseSchedule]] = {}
        for protocol in sorted(kb.protocols.values(), key=lambda pr: pr.id):
            if protocol.treatment in ("ect", "rtms", "esketamine"):
                self.courses.setdefault(protocol.treatment, []).append(course_schedule(protocol))
        self.neuromodulation = tuple(
            (k, w) for k, w in j.neuromodulation_kinds if self.courses.get(k)
        )
        for code in (ECT_CODE, RTMS_INITIAL, RTMS_SUBSEQUENT, RTMS_REDETERMINATION):
            if code not in voc.procedure:
                raise ValueError(f"procedure code {code} is not in the concept sets")

    def _plan(self, drug_id: str, products: tuple[ClinicalDrug, ...]) -> DrugPlan | None:
        drug = self.kb.drugs[drug_id]
        mins = role_minimums(drug)
        maxima = [
            m
            for m in (
                drug.antidepressant_dose.usual_max_mg_per_day if drug.antidepressant_dose else None,
                drug.augmentation_dose.max_mg_per_day if drug.augmentation_dose else None,
            )
            if m is not None
        ]
        if mins:
            adequate = max(mins)
            low: float | None = min(mins) / 2
            top = max(maxima) if maxima else adequate
        else:  # no dose in the file (lithium): two and three units of the presentation
            adequate = products[0].strength_mg * 2
            low = None
            top = products[0].strength_mg * 3
        high = adequate * 2 if adequate * 2 <= top else adequate
        return DrugPlan(drug_id, low, adequate, high, products)

    def rate(self, level: int) -> float:
        return self.rates[min(level, len(self.rates)) - 1]


class _Course:
    """One drug taken over time: its fills are drawn up to wherever the journey stops it."""

    def __init__(
        self,
        person: Person,
        plan: DrugPlan,
        start: int,
        kind: str,
        rng: random.Random,
        cat: Catalogue,
    ) -> None:
        j = cat.settings.journey
        self.taken = kind != "not_taken"
        kind = "adequate" if kind == "not_taken" else kind  # its fills look like an adequate trial
        self.person, self.plan, self.kind, self.rng, self.cat = person, plan, kind, rng, cat
        self.next_day = start
        self.n = 0
        self.stopped = False
        self.days_supply = 90 if kind == "adequate" and rng.random() < j.ninety_day_fills else 30
        low_ok = plan.low_mg is not None and self.days_supply == 30
        self.n_low = (
            1 if kind == "adequate" and low_ok and rng.random() < j.start_below_minimum else 0
        )
        self.escalate = kind == "adequate" and rng.random() < j.escalate
        self.first_adequate: int | None = None
        self.early_refill = j.early_refill
        self.gap_lo, self.gap_hi = j.poor_adherence_gap_days
        self.early_lo, self.early_hi = j.refill_early_days
        self.late_lo, self.late_hi = j.refill_late_days

    def dose(self, i: int) -> float:
        plan = self.plan
        if plan.low_mg is not None and (self.kind == "low_dose" or i < self.n_low):
            return plan.low_mg
        if self.escalate and i >= self.n_low + 2:
            return plan.high_mg
        return plan.adequate_mg

    def _one(self) -> None:
        d = self.next_day
        dose = self.dose(self.n)
        plan = self.plan
        product, units = plan.product_for(dose)
        ds = self.days_supply
        self.person.fills.append(Fill(d, plan.drug, dose, ds, product, units, self.taken))
        if self.first_adequate is None and dose >= plan.adequate_mg:
            self.first_adequate = d
        self.n += 1
        r = self.rng.random
        kind = self.kind
        if kind == "poor_adherence":  # the next fill after a gap beyond the persistence window
            gap = self.gap_lo + int(r() * (self.gap_hi - self.gap_lo + 1))
            self.next_day = d + ds + self.cat.persistence + gap
        elif kind == "short":
            self.next_day = 1 << 40  # one fill only
        elif r() < self.early_refill:
            self.next_day = d + ds - self.early_lo - int(r() * (self.early_hi - self.early_lo + 1))
        else:
            self.next_day = d + ds + self.late_lo + int(r() * (self.late_hi - self.late_lo + 1))

    def extend_to(self, until: int) -> None:
        """Fills starting before ``until`` (and inside the observation period)."""
        limit = min(until, self.person.obs_end + 1)
        while not self.stopped and self.next_day < limit:
            self._one()

    def adequate_start(self) -> int:
        while self.first_adequate is None and self.next_day <= self.person.obs_end:
            self._one()
        return self.first_adequate if self.first_adequate is not None else 1 << 40

    def stop(self, at: int) -> None:
        self.extend_to(at)
        self.stopped = True


class Simulator:
    """Draws synthetic persons; one instance per generation run."""

    def __init__(
        self, kb: Knowledge, voc: Vocabulary, settings: SynthSettings = DEFAULT_SETTINGS
    ) -> None:
        self.cat = Catalogue(kb, voc, settings)
        self.settings = settings
        self.data_start = day(settings.data_start)
        self.data_end = day(settings.data_end)
        self.rng = random.Random()  # noqa: S311 - simulation, not cryptography

    # ---------------------------------------------------------------- person
    def person(self, seed: int, person_id: int) -> Person:
        rng = self.rng
        rng.seed(f"trdnav-synth/{seed}/{person_id}")
        mix = self.settings.mix
        if rng.random() < mix.mdd:
            return self._mdd_person(rng, person_id)
        return self._other_person(rng, person_id)

    def _birth(self, rng: random.Random, at: int, age: int) -> date:
        d = to_date(at)
        year = d.year - age - (1 if rng.random() < 0.5 else 0)
        return date(year, _ri(rng, 1, 12), _ri(rng, 1, 28))

    def _mdd_person(self, rng: random.Random, pid: int) -> Person:
        mix, j = self.settings.mix, self.settings.journey
        y0, y1 = j.first_episode_years
        ep_start = day(date(y0, 1, 1)) + _ri(rng, 0, day(date(y1, 12, 31)) - day(date(y0, 1, 1)))
        if rng.random() < mix.mdd_adolescent:
            age = _ri(rng, *mix.adolescent_age)
        else:
            age = self.cat.adult_age + int(rng.betavariate(2.0, 3.2) * 62)
        birth = self._birth(rng, ep_start, age)
        before = _ri(rng, *mix.observation_before_episode_days)
        obs_start = max(self.data_start, ep_start - before, day(birth))
        obs_end = self.data_end
        if rng.random() < mix.observation_ends_early:
            obs_end = min(self.data_end, ep_start + _ri(rng, *mix.observation_ends_early_days))
        p = Person(pid, rng.random() < mix.mdd_female, birth, obs_start, obs_end, True)
        self._journey(rng, p, ep_start)
        u = rng.random()
        if u < mix.mdd_bipolar:
            self._exclusion(rng, p, ("F31.9", "F31.81", "F31.30", "F30.10"), "bipolar")
        elif u < mix.mdd_bipolar + mix.mdd_schizophrenia:
            self._exclusion(rng, p, ("F20.9", "F25.0", "F25.9", "F22"), "schizophrenia_spectrum")
        if rng.random() < self.settings.noise.mdd_person_noise_codes:
            p.dx.append((_ri(rng, p.obs_start, p.obs_end), "F32.A"))
        self._comorbidity(rng, p)
        return p

    def _exclusion(self, rng: random.Random, p: Person, codes: tuple[str, ...], why: str) -> int:
        """Exclusion diagnoses from a random day of the observation period; returns that day."""
        p.exclusion = why
        first = _ri(rng, p.obs_start, p.obs_end)
        p.dx.append((first, _choice(rng, codes)))
        for _ in range(_ri(rng, 0, 2)):
            d = first + _ri(rng, 1, 400)
            if d <= p.obs_end:
                p.dx.append((d, _choice(rng, codes)))
        return first

    def _other_person(self, rng: random.Random, pid: int) -> Person:
        mix = self.settings.mix
        birth = date(_ri(rng, 1935, 2012), _ri(rng, 1, 12), _ri(rng, 1, 28))
        obs_start = max(
            self.data_start + _ri(rng, 0, self.data_end - self.data_start - 400), day(birth)
        )
        obs_end = self.data_end
        if rng.random() < 0.2:
            obs_end = min(self.data_end, obs_start + _ri(rng, 200, 3000))
        p = Person(pid, rng.random() < 0.5, birth, obs_start, obs_end)
        if rng.random() < mix.anxiety_on_ssri:
            self._ad_sequence(rng, p, ("F41.1",), _choice(rng, (1, 1, 1, 2, 2, 3)))
        if rng.random() < mix.unspecified_depression:
            self._ad_sequence(rng, p, ("F32.A", "F33.8"), _ri(rng, 1, 4))
        if rng.random() < mix.insomnia_trazodone and "trazodone" in self.cat.plans:
            t0 = _ri(rng, p.obs_start, p.obs_end)
            p.dx.append((t0, "G47.00"))
            self._simple_fills(rng, p, "trazodone", t0, _ri(rng, 1, 8), low=True)
        if rng.random() < mix.bipolar:
            t0 = self._exclusion(rng, p, ("F31.9", "F31.81", "F31.30"), "bipolar")
            self._simple_fills(rng, p, "quetiapine", t0, _ri(rng, 2, 12), low=False)
        if rng.random() < mix.schizophrenia:
            t0 = self._exclusion(rng, p, ("F20.9", "F25.9"), "schizophrenia_spectrum")
            self._simple_fills(rng, p, "olanzapine", t0, _ri(rng, 2, 12), low=False)
        self._comorbidity(rng, p)
        return p

    def _comorbidity(self, rng: random.Random, p: Person) -> None:
        mix = self.settings.mix
        if rng.random() < mix.hypertension:
            t0 = _ri(rng, p.obs_start, p.obs_end)
            for k in range(_ri(rng, 1, 4)):
                if t0 + 365 * k <= p.obs_end:
                    p.dx.append((t0 + 365 * k, "I10"))
            drug = "lisinopril" if rng.random() < 0.6 else "atorvastatin"
            self._simple_fills(rng, p, drug, t0, _ri(rng, 3, 30), low=False)
        if rng.random() < mix.diabetes:
            t0 = _ri(rng, p.obs_start, p.obs_end)
            p.dx.append((t0, "E11.9"))
            self._simple_fills(rng, p, "metformin", t0, _ri(rng, 3, 24), low=False)
            for k in range(_ri(rng, 1, 4)):
                if t0 + 120 * k <= p.obs_end:
                    value = round(rng.gauss(7.2, 1.0), 1)
                    p.measurements.append((t0 + 120 * k, "4548-4", value))
        if rng.random() < mix.office_visits:
            for _ in range(_ri(rng, 1, 4)):
                p.procedures.append((_ri(rng, p.obs_start, p.obs_end), OFFICE_VISIT))

    def _simple_fills(
        self, rng: random.Random, p: Person, drug: str, t0: int, n: int, low: bool
    ) -> None:
        plan = self.cat.plans.get(drug)
        if plan is None:
            return
        dose = plan.low_mg if low and plan.low_mg is not None else plan.adequate_mg
        product, units = plan.product_for(dose)
        d = t0
        for _ in range(n):
            if d > p.obs_end:
                break
            p.fills.append(Fill(d, drug, dose, 30, product, units))
            d += 30 + _ri(rng, -3, 8)

    def _ad_sequence(self, rng: random.Random, p: Person, codes: tuple[str, ...], n: int) -> None:
        """Antidepressants for a person without an MDD code (anxiety, unspecified depression)."""
        t = _ri(rng, p.obs_start, p.obs_end)
        used: set[str] = set()
        for _ in range(n):
            if t > p.obs_end:
                break
            p.dx.append((t, _choice(rng, codes)))
            drug = self._choose_ad(rng, self.cat.w_first_line, used)
            course = _Course(p, self.cat.plans[drug], t, "adequate", rng, self.cat)
            t_end = course.adequate_start() + self.cat.adequate_days + _ri(rng, 7, 90)
            course.stop(t_end)
            t = t_end

    # ---------------------------------------------------------------- MDD journey
    def _choose_ad(self, rng: random.Random, classes: Weighted, used: set[str]) -> str:
        for _ in range(6):
            cls = classes.draw(rng)
            pool = [d for d in self.cat.by_class.get(cls, ()) if d not in used]
            if pool:
                drug = _choice(rng, pool)
                used.add(drug)
                return drug
        pool = sorted(d for ids in self.cat.by_class.values() for d in ids if d not in used)
        drug = _choice(rng, pool)
        used.add(drug)
        return drug

    def _journey(self, rng: random.Random, p: Person, ep_start: int) -> None:
        episode = 0
        start = ep_start
        while start <= p.obs_end:
            remitted, last_dx, last_activity = self._episode(rng, p, start, episode)
            if not remitted or rng.random() >= self.settings.mix.recurrence:
                return
            episode += 1
            after = _ri(rng, *self.settings.journey.recurrence_after_gap_days)
            start = max(last_dx + self.cat.gap_days + after, last_activity + 60)
            if episode > 2 or start > self.data_end:
                return

    def _dx(self, rng: random.Random, p: Person, d: int, codes: Weighted, main: str) -> None:
        """A diagnosis: mostly the episode's own code, sometimes another of its kind."""
        if d <= p.obs_end:
            kept = rng.random() < self.settings.journey.episode_code_kept
            p.dx.append((d, main if kept else codes.draw(rng)))

    def _phq(self, rng: random.Random, p: Person, d: int, remitted: bool) -> None:
        if d > p.obs_end or rng.random() >= self.settings.journey.phq9_at_visit:
            return
        j, (lo, hi) = self.settings.journey, self.cat.phq9_range
        if remitted:
            value = min(j.phq9_remitted_ceiling, max(lo, round(rng.gauss(*j.phq9_remitted))))
        else:
            value = min(hi, max(j.phq9_depressed_floor, round(rng.gauss(*j.phq9_depressed))))
        p.measurements.append((d, self.cat.phq9_loinc, float(value)))

    def _episode(
        self, rng: random.Random, p: Person, start: int, episode: int
    ) -> tuple[bool, int, int]:
        """Simulate one episode; returns (remitted, last diagnosis day, last treatment day)."""
        cat, j = self.cat, self.settings.journey
        if episode == 0:
            codes = cat.w_first_codes
        else:
            codes = cat.w_recurrent_codes
        t = start
        last_dx = start
        main = codes.draw(rng)
        self._dx(rng, p, t, codes, main)
        active: list[_Course] = []
        used: set[str] = set()
        level, failures = 1, 0
        neuromod_used: set[str] = set()
        base_ok = False  # an adequate antidepressant continues (augmentation possible)
        for step_no in range(j.max_steps):
            if t > p.obs_end:
                break
            if step_no:
                self._dx(rng, p, t, codes, main)
                last_dx = t
            self._phq(rng, p, t, remitted=False)
            kinds = [k for k, _ in cat.neuromodulation if k not in neuromod_used]
            if failures >= 2 and kinds and rng.random() < j.neuromodulation:
                kind = _pick(rng, tuple(x for x in cat.neuromodulation if x[0] in kinds))
                neuromod_used.add(kind)
                end, completed = self._course(rng, p, kind, t)
                for c in active:
                    c.extend_to(end)
                remit = completed and rng.random() < cat.rate(level)
                p.steps.append(
                    StepLog(
                        episode,
                        level,
                        kind,
                        None,
                        "course" if completed else "abandoned",
                        t,
                        completed,
                        remit,
                    )
                )
                if completed:
                    level += 1
                if remit:
                    return self._remission(rng, p, active, end, codes, last_dx)
                t = end + _ri(rng, *j.next_step_after_course_days)
                continue
            augment = step_no > 0 and base_ok and cat.augmentation and rng.random() < j.augment
            trial = cat.w_trial.draw(rng)
            pool = tuple(x for x in cat.augmentation if x[0] not in used)
            if augment and pool:
                drug = _pick(rng, pool)
                used.add(drug)
                for c in active[1:]:  # a failed earlier augmentation stops
                    c.stop(t)
                active = active[:1]
                modality = "augmentation"
            else:
                classes = cat.w_first_line if step_no == 0 else cat.w_switch
                drug = self._choose_ad(rng, classes, used)
                for c in active:
                    c.stop(t + _ri(rng, *j.switch_overlap_days))
                active = []
                modality = "antidepressant"
            plan = cat.plans[drug]
            if trial == "low_dose" and plan.low_mg is None:
                trial = "adequate"
            if trial == "adequate" and rng.random() < self.settings.noise.filled_not_taken:
                trial = "not_taken"
            course = _Course(p, plan, t, trial, rng, cat)
            active.append(course)
            adequate = trial == "adequate"
            remit = False
            if adequate:
                adequacy = course.adequate_start() + cat.adequate_days - 1
                remit = rng.random() < cat.rate(level)
                p.steps.append(StepLog(episode, level, modality, drug, trial, t, True, remit))
                level += 1
                if remit:
                    remission = adequacy + _ri(rng, *j.remission_after_adequacy_days)
                    for c in active:
                        c.extend_to(remission)
                    return self._remission(rng, p, active, remission, codes, last_dx)
                failures += 1
                t_next = adequacy + _ri(rng, *j.extra_days_after_adequacy)
                if modality == "antidepressant":
                    base_ok = True
            else:
                p.steps.append(StepLog(episode, level, modality, drug, trial, t, False, False))
                if trial == "short":
                    course.stop(t + 1)
                    t_next = t + _ri(rng, *j.short_trial_days)
                elif trial == "not_taken":  # the clinician sees an adequate trial fail
                    adequacy = course.adequate_start() + cat.adequate_days - 1
                    t_next = adequacy + _ri(rng, *j.extra_days_after_adequacy)
                elif trial == "low_dose":
                    t_next = t + _ri(rng, *j.low_dose_trial_days)
                else:
                    t_next = t + _ri(rng, *j.poor_adherence_trial_days)
                if modality == "antidepressant":
                    base_ok = trial == "not_taken"  # believed adequate: augmentation possible
            for c in active:
                c.extend_to(t_next)
            mid = (t + t_next) // 2
            if rng.random() < j.diagnosis_between_steps:
                self._dx(rng, p, mid, codes, main)
                last_dx = max(last_dx, mid) if mid <= p.obs_end else last_dx
            t = t_next
            if rng.random() < j.dropout:
                for c in active:
                    c.stop(t)
                return False, last_dx, t
        end = t + _ri(rng, *j.treatment_after_last_step_days)
        for c in active:
            c.stop(end)
        return False, last_dx, end

    def _remission(
        self,
        rng: random.Random,
        p: Person,
        active: list[_Course],
        remission: int,
        codes: Weighted,
        last_dx: int,
    ) -> tuple[bool, int, int]:
        j = self.settings.journey
        if remission <= p.obs_end and rng.random() < j.diagnosis_at_remission:
            code = "F32.4" if codes is self.cat.w_first_codes else "F33.40"
            p.dx.append((remission, code))
            last_dx = remission
        self._phq(rng, p, remission, remitted=True)
        end = remission + _ri(rng, *j.maintenance_days)
        for c in active:
            c.stop(end)
        return True, last_dx, end

    def _course(self, rng: random.Random, p: Person, kind: str, t: int) -> tuple[int, bool]:
        """Sessions of ECT, rTMS or esketamine from ``t`` after one of the knowledge base's
        protocols for it; returns (last session day, completed)."""
        j = self.settings.journey
        course = _choice(rng, self.cat.courses[kind])
        completed = rng.random() >= j.course_abandoned
        n = len(course.offsets) if completed else _ri(rng, 1, max(1, len(course.offsets) // 4))
        sessions = [t + off for off in course.offsets[:n]]
        codes: list[str]
        if kind == "ect":
            codes = [ECT_CODE] * n
        elif kind == "rtms":
            codes = [RTMS_INITIAL] + [RTMS_SUBSEQUENT] * (n - 1)
            if n > 10 and rng.random() < 0.3:
                codes[n // 2] = RTMS_REDETERMINATION
        else:  # esketamine: the protocol's first-session dose, then one of its options
            as_drug = rng.random() < j.esketamine_as_drug_exposure
            plan = self.cat.plans.get("esketamine")
            codes = []
            for k, d in enumerate(sessions):
                options = course.doses_mg[k]
                if not options:
                    codes.append(ESKETAMINE_LOW)
                    continue
                mg = course.first_mg if k == 0 and course.first_mg else _choice(rng, options)
                codes.append(ESKETAMINE_LOW if mg <= min(options) else ESKETAMINE_HIGH)
                if as_drug and plan is not None and d <= p.obs_end:
                    product, units = plan.product_for(mg)
                    p.fills.append(Fill(d, "esketamine", mg, 1, product, units))
        for d, code in zip(sessions, codes, strict=True):
            if d <= p.obs_end:
                p.procedures.append((d, code))
        return sessions[-1], completed
