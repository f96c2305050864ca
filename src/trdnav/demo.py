"""Synthetic demo patients for `trdnav demo` and `make run` (no real person's data).

Two kinds, every date relative to ``today``:

- the example histories (``examples/*.yaml``), their dates shifted so that they end today;
- 30 generated patients (``SY01`` … ``SY30``) with varied journeys: a first trial that works, an
  early first trial, TRD within one class, TRD across classes with augmentation, an esketamine
  course, ECT, rTMS, an indeterminate history (adherence not recorded) and a lost response;
  PHQ-9 forms every 2–4 weeks that improve or worsen with the treatments, a few QIDS-SR16 and
  GAD-7 forms, two patients whose latest PHQ-9 has a positive item 9 and a few whose PHQ-9 is
  overdue.

Deterministic: a patient's journey depends on its number alone (a seeded generator), and its dates
on ``today`` alone, so ``demo_data(today)`` is the same list on every run.

Every demo patient also gets a synthetic identity (:func:`demo_identity`): an invented family name
that reads as made up (``Sampleton``, ``Testwood``, …), a common given name, an MRN ``DEMO-…`` in
the ``urn:trdnav:demo:mrn`` system and the history's date of birth, so the pages look like a
clinic's without naming anyone.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import yaml

from trdnav.identity import Identifier, PatientIdentity
from trdnav.knowledge.load import default_knowledge
from trdnav.storage import records
from trdnav.storage.engine import make_engine, make_sessionmaker
from trdnav.storage.identity import save_identity

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

HistoryData = dict[str, Any]


def _shift(value: Any, days: int) -> Any:
    if isinstance(value, dict):
        return {k: _shift(v, days) for k, v in value.items()}
    if isinstance(value, list):
        return [_shift(v, days) for v in value]
    if isinstance(value, date):
        return (value + timedelta(days=days)).isoformat()
    if isinstance(value, str) and _DATE.match(value):
        return (date.fromisoformat(value) + timedelta(days=days)).isoformat()
    return value


def example_data(today: date) -> list[HistoryData]:
    """The example histories, shifted so that each ends on ``today``."""
    out = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        as_of = data.get("assessed_on")
        anchor = date.fromisoformat(str(as_of)) if as_of else today
        shifted = _shift(data, (today - anchor).days)
        shifted.pop("assessed_on", None)
        out.append(shifted)
    return out


# --- generated journeys --------------------------------------------------------------------------

SSRIS = (("sertraline", (50, 100, 150)), ("escitalopram", (10, 20)), ("fluoxetine", (20, 40)))
SSRIS_2 = (("citalopram", (20, 40)), ("paroxetine", (20, 40)))
SNRIS = (("venlafaxine", (75, 150, 225)), ("duloxetine", (60, 90)))
OTHERS = (("bupropion", (150, 300)), ("mirtazapine", (15, 30, 45)), ("vortioxetine", (10, 20)))
COMORBIDITIES = (
    {"name": "anxiety_disorder"},
    {"name": "hypertension", "status": "controlled"},
    {"name": "insomnia"},
    {"name": "chronic_pain"},
)
AUGMENTERS = (("aripiprazole", (2, 5)), ("quetiapine", (150, 300)), ("lithium", (600, 900)))


@dataclass
class Journey:
    """One patient's journey being written: treatments, PHQ-9 course knots, other forms."""

    rng: random.Random
    today: date
    start: date  # the first treatment starts here
    treatments: list[HistoryData] = field(default_factory=list)
    knots: list[tuple[date, float]] = field(default_factory=list)  # (date, PHQ-9 total)
    extra: list[HistoryData] = field(default_factory=list)

    def weeks(self, n: float) -> timedelta:
        return timedelta(days=round(n * 7))

    def level(self, on: date, total: float) -> None:
        """The PHQ-9 total is about ``total`` on ``on`` (straight lines between knots)."""
        self.knots.append((min(on, self.today), total))

    def medication(
        self,
        drug: tuple[str, tuple[int, ...]],
        start: date,
        weeks: float | None,
        outcome: str,
        adherence: float | None = 0.9,
        augments: str | None = None,
        **more: Any,
    ) -> date:
        """A trial titrated every 2 weeks (``weeks=None``: ongoing); returns its stop or today."""
        name, doses = drug
        stop = None if weeks is None else min(start + self.weeks(weeks), self.today)
        end = stop or self.today
        steps_taken = [
            {"from": (start + self.weeks(2 * k)).isoformat(), "mg_per_day": mg}
            for k, mg in enumerate(doses)
            if start + self.weeks(2 * k) <= end
        ]
        t: HistoryData = {"type": "medication", "drug": name, "start": start.isoformat()}
        if stop is not None:
            t["stop"] = stop.isoformat()
        t["doses"] = steps_taken
        if adherence is not None:
            t["adherence"] = adherence
        if augments is not None:
            t["augments"] = augments
        t["outcome"] = outcome
        t.update(more)
        self.treatments.append(t)
        return end

    def course(self, kind: str, start: date, weeks: float | None, **fields: Any) -> date:
        stop = None if weeks is None else min(start + self.weeks(weeks), self.today)
        t: HistoryData = {"type": kind, "start": start.isoformat()}
        if stop is not None:
            t["stop"] = stop.isoformat()
        t.update(fields)
        self.treatments.append(t)
        return stop or self.today

    def phq9_items(self, total: int, item9: int = 0) -> list[int]:
        """Nine answers adding up to ``total`` (item 9 given), spread over items 1–8."""
        answers = [0] * 8
        for _ in range(max(0, min(24, total - item9))):
            open_items = [i for i, a in enumerate(answers) if a < 3]
            answers[self.rng.choice(open_items)] += 1
        return [*answers, item9]

    def total_on(self, day: date) -> float:
        knots = sorted(self.knots)
        if day <= knots[0][0]:
            return knots[0][1]
        for (d0, v0), (d1, v1) in pairwise(knots):
            if d0 <= day <= d1:
                span = (d1 - d0).days or 1
                return v0 + (v1 - v0) * (day - d0).days / span
        return knots[-1][1]

    def measurements(self, last_days_ago: int, item9_last: int = 0) -> list[HistoryData]:
        """PHQ-9 every 2–4 weeks from a week before the first treatment to ``last_days_ago``."""
        last = self.today - timedelta(days=last_days_ago)
        days: list[date] = []
        day = self.start - timedelta(days=7)
        while day < last:
            days.append(day)
            day += timedelta(days=self.rng.choice((14, 14, 21, 28)))
        days.append(last)
        out: list[HistoryData] = []
        for n, d in enumerate(days):
            noise = self.rng.choice((-2, -1, 0, 0, 1, 2))
            total = round(max(0.0, min(26.0, self.total_on(d) + noise)))
            item9 = item9_last if n == len(days) - 1 else 0
            items = self.phq9_items(total, item9)
            out.append({"instrument": "PHQ-9", "date": d.isoformat(), "items": items})
            if n % 4 == 0:  # a QIDS-SR16 and a GAD-7 now and then, in step with the PHQ-9
                level = min(3, round(total / 8))
                qids = [min(3, max(0, level + self.rng.choice((-1, 0, 0, 1)))) for _ in range(16)]
                qids[11] = min(item9, 3)
                out.append({"instrument": "QIDS-SR16", "date": d.isoformat(), "items": qids})
                gad = [min(3, max(0, level + self.rng.choice((-1, 0, 1)))) for _ in range(7)]
                out.append({"instrument": "GAD-7", "date": d.isoformat(), "items": gad})
        return out + self.extra


def _first_trial_works(j: Journey) -> None:
    """Not TRD: the first antidepressant, titrated, brings a response (ongoing)."""
    drug = j.rng.choice(SSRIS)
    j.level(j.start, j.rng.randint(16, 21))
    j.level(j.start + j.weeks(3), j.rng.randint(14, 18))
    j.medication(drug, j.start, None, "unknown")
    j.level(j.today, j.rng.randint(4, 8))


def _first_trial_early(j: Journey) -> None:
    """Not TRD yet: a first trial started a few weeks ago, still being titrated."""
    j.level(j.start, j.rng.randint(15, 22))
    j.medication(j.rng.choice(SSRIS + OTHERS), j.start, None, "unknown")
    j.level(j.today, j.rng.randint(11, 17))


def _within_class(j: Journey) -> None:
    """TRD within one class: two SSRIs failed adequate trials; a third drug now."""
    first, second = j.rng.sample(SSRIS, 2)
    j.level(j.start, j.rng.randint(18, 23))
    end = j.medication(first, j.start, j.rng.randint(9, 12), "no_response")
    j.level(end, j.rng.randint(16, 21))
    start = end + j.weeks(1)
    end = j.medication(second, start, j.rng.randint(9, 12), "no_response")
    j.level(end, j.rng.randint(16, 20))
    j.medication(j.rng.choice(SNRIS), end + j.weeks(1), None, "unknown")
    j.level(j.today, j.rng.randint(9, 15))


def _across_classes_augmented(j: Journey) -> None:
    """TRD across classes: an SSRI and an SNRI failed; an antipsychotic or lithium was added."""
    ssri, snri, aug = j.rng.choice(SSRIS), j.rng.choice(SNRIS), j.rng.choice(AUGMENTERS)
    j.level(j.start, j.rng.randint(19, 24))
    end = j.medication(ssri, j.start, j.rng.randint(8, 12), "no_response")
    j.level(end, j.rng.randint(17, 21))
    snri_start = end + j.weeks(1)
    added = snri_start + j.weeks(j.rng.randint(10, 14))
    j.level(added, j.rng.randint(14, 18))
    j.medication(snri, snri_start, None, "partial_response")
    extra = {"serum_level": 0.7} if aug[0] == "lithium" else {}
    j.medication(aug, added, None, "unknown", augments=snri[0], **extra)
    j.level(j.today, j.rng.randint(7, 14))


def _esketamine(j: Journey) -> None:
    """TRD, then an esketamine course with an oral antidepressant (ongoing)."""
    first, second = j.rng.choice(SSRIS), j.rng.choice(SNRIS + OTHERS)
    j.level(j.start, j.rng.randint(20, 24))
    end = j.medication(first, j.start, j.rng.randint(8, 11), "no_response")
    end = j.medication(second, end + j.weeks(1), j.rng.randint(8, 11), "no_response")
    j.level(end, j.rng.randint(19, 23))
    oral = j.rng.choice(SSRIS_2)
    course_start = end + j.weeks(1)
    j.medication(oral, course_start, None, "unknown")
    sessions = j.rng.randint(6, 12)
    j.course("esketamine", course_start, None, sessions=sessions, mg_per_session=84)
    j.level(j.today, j.rng.randint(8, 14))


def _ect(j: Journey) -> None:
    """Late-stage TRD: three failed trials (one a TCA), then an ECT course that worked."""
    j.level(j.start, j.rng.randint(21, 25))
    end = j.start
    for drug in (j.rng.choice(SSRIS), j.rng.choice(SNRIS), ("nortriptyline", (50, 75, 100))):
        end = j.medication(drug, end, j.rng.randint(8, 10), "no_response")
        end += j.weeks(1)
    j.level(end, j.rng.randint(21, 24))
    placement = j.rng.choice(("right_unilateral", "bitemporal", "bilateral"))
    sessions = j.rng.randint(8, 12)
    stop = j.course(
        "ect",
        end,
        j.rng.randint(4, 6),
        sessions=sessions,
        electrode_placement=placement,
        outcome="response",
    )
    j.level(stop, j.rng.randint(6, 9))
    j.medication(("venlafaxine", (75, 150, 225)), stop + j.weeks(1), None, "unknown")
    j.level(j.today, j.rng.randint(4, 9))


def _rtms(j: Journey) -> None:
    """TRD, then a course of rTMS over six weeks, with a partial response."""
    j.level(j.start, j.rng.randint(18, 22))
    end = j.medication(j.rng.choice(SSRIS), j.start, j.rng.randint(8, 12), "no_response")
    end = j.medication(j.rng.choice(OTHERS), end + j.weeks(1), j.rng.randint(8, 12), "no_response")
    j.level(end, j.rng.randint(17, 21))
    protocol = j.rng.choice(("10hz", "itbs"))
    stop = j.course(
        "rtms", end + j.weeks(1), 6, sessions=30, protocol=protocol, outcome="partial_response"
    )
    j.level(stop, j.rng.randint(10, 13))
    j.level(j.today, j.rng.randint(9, 14))


def _indeterminate(j: Journey) -> None:
    """Indeterminate: one failed adequate trial; whether the second was taken is not recorded."""
    j.level(j.start, j.rng.randint(16, 21))
    end = j.medication(j.rng.choice(SSRIS), j.start, j.rng.randint(9, 12), "no_response")
    j.level(end, j.rng.randint(15, 19))
    end = j.medication(j.rng.choice(SNRIS), end + j.weeks(1), 10, "no_response", adherence=None)
    j.level(end, j.rng.randint(15, 19))
    j.level(j.today, j.rng.randint(14, 19))


def _lost_response(j: Journey) -> None:
    """A response that was lost on the same drug (tachyphylaxis), now worsening."""
    drug = j.rng.choice(SSRIS + SNRIS)
    j.level(j.start, j.rng.randint(17, 21))
    j.level(j.start + j.weeks(10), j.rng.randint(4, 7))
    lost = j.today - j.weeks(j.rng.randint(10, 16))
    j.level(lost, j.rng.randint(6, 9))
    j.medication(drug, j.start, None, "response", response_lost_on=lost.isoformat())
    j.level(j.today, j.rng.randint(15, 20))


@dataclass(frozen=True)
class Plan:
    """How a generated patient's journey is written: its kind, length, last form and its item 9."""

    write: Callable[[Journey], None]
    weeks_back: tuple[int, int]  # the first treatment started this many weeks ago (range)
    last_form_days_ago: int = 5
    item9_last: int = 0


PLANS: tuple[Plan, ...] = (
    Plan(_first_trial_works, (10, 16)),
    Plan(_first_trial_works, (12, 20), last_form_days_ago=12),
    Plan(_first_trial_works, (9, 11), last_form_days_ago=25),  # PHQ-9 overdue
    Plan(_first_trial_works, (14, 20)),
    Plan(_first_trial_early, (3, 5), last_form_days_ago=3),
    Plan(_first_trial_early, (5, 8), last_form_days_ago=20),  # PHQ-9 overdue
    Plan(_first_trial_early, (4, 6), last_form_days_ago=1, item9_last=1),  # suicide-risk signal
    Plan(_within_class, (30, 40)),
    Plan(_within_class, (32, 44), last_form_days_ago=9),
    Plan(_within_class, (28, 34), last_form_days_ago=24),  # PHQ-9 overdue
    Plan(_within_class, (36, 48), item9_last=2),  # suicide-risk signal
    Plan(_across_classes_augmented, (40, 52)),
    Plan(_across_classes_augmented, (44, 60), last_form_days_ago=11),
    Plan(_across_classes_augmented, (30, 34), last_form_days_ago=19),  # PHQ-9 overdue
    Plan(_across_classes_augmented, (48, 70)),
    Plan(_esketamine, (26, 30), last_form_days_ago=2),
    Plan(_esketamine, (27, 33), last_form_days_ago=4),
    Plan(_esketamine, (28, 34), last_form_days_ago=6),
    Plan(_ect, (50, 60)),
    Plan(_ect, (55, 70), last_form_days_ago=13),
    Plan(_ect, (45, 52)),
    Plan(_rtms, (30, 40)),
    Plan(_rtms, (34, 42), last_form_days_ago=10),
    Plan(_rtms, (32, 45)),
    Plan(_indeterminate, (28, 36)),
    Plan(_indeterminate, (30, 40), last_form_days_ago=8),
    Plan(_lost_response, (40, 60)),
    Plan(_lost_response, (50, 80), last_form_days_ago=16),
    Plan(_within_class, (40, 52), last_form_days_ago=6),
    Plan(_across_classes_augmented, (52, 80), last_form_days_ago=3),
)


def generated_patient(n: int, today: date) -> HistoryData:
    """Generated patient ``n`` (1-based) as of ``today``."""
    plan = PLANS[n - 1]
    rng = random.Random(f"trdnav-demo-{n}")  # noqa: S311 - synthetic data, not secrets
    start = today - timedelta(weeks=rng.randint(*plan.weeks_back))
    journey = Journey(rng, today, start)
    plan.write(journey)
    age_days = rng.randint(22 * 365, 70 * 365)
    sex = rng.choice(("female", "female", "male"))
    onset = start - timedelta(days=rng.randint(20, 120))
    conditions = [dict(c) for c in rng.sample(COMORBIDITIES, rng.choice((0, 0, 1, 1, 2)))]
    data: HistoryData = {
        "patient": {
            "id": f"SY{n:02d}",
            "birth_date": (today - timedelta(days=age_days)).isoformat(),
            "sex": sex,
        },
        "episode": {
            "onset": onset.isoformat(),
            "diagnosis": rng.choice(("mdd_recurrent", "mdd_recurrent", "mdd_single")),
            "severity": rng.choice(("moderate", "severe", "severe")),
        },
        "conditions": conditions,
        "treatments": journey.treatments,
        "measurements": journey.measurements(plan.last_form_days_ago, plan.item9_last),
    }
    return data


def generated_data(today: date) -> list[HistoryData]:
    return [generated_patient(n, today) for n in range(1, len(PLANS) + 1)]


def demo_data(today: date) -> list[HistoryData]:
    """Every demo history as of ``today``: the shifted examples, then the generated patients."""
    return example_data(today) + generated_data(today)


# --- synthetic identities ------------------------------------------------------------------------

DEMO_FAMILY_NAMES = (
    "Sampleton",
    "Testwood",
    "Demoray",
    "Placeholt",
    "Fictora",
    "Mockford",
    "Exampleby",
    "Synthwell",
    "Dummington",
    "Pretendo",
    "Madeupson",
    "Trialworth",
)
DEMO_GIVEN_NAMES = (
    "Alex",
    "Jordan",
    "Sam",
    "Robin",
    "Casey",
    "Morgan",
    "Jamie",
    "Taylor",
    "Riley",
    "Avery",
    "Quinn",
    "Harper",
    "Rowan",
)
DEMO_MRN_SYSTEM = "urn:trdnav:demo:mrn"


def demo_identity(n: int, birth_date: date | None) -> PatientIdentity:
    """The synthetic identity of demo patient ``n`` (0-based, in ``demo_data`` order)."""
    rng = random.Random(f"trdnav-demo-identity-{n}")  # noqa: S311 - synthetic, not secrets
    family = DEMO_FAMILY_NAMES[n % len(DEMO_FAMILY_NAMES)]
    # (family, first given name) differ for every n < 156: no two demo patients share a name
    given = [DEMO_GIVEN_NAMES[(n // len(DEMO_FAMILY_NAMES) * 5 + n) % len(DEMO_GIVEN_NAMES)]]
    if rng.random() < 0.3:
        given.append(rng.choice([g for g in DEMO_GIVEN_NAMES if g != given[0]]))
    mrn = f"DEMO-{100001 + n * 37:06d}"
    return PatientIdentity(
        given=tuple(given),
        family=family,
        birth_date=birth_date,
        mrn=mrn,
        identifiers=(Identifier(system=DEMO_MRN_SYSTEM, value=mrn, type="MR"),),
    )


def load_demo(url: str, today: date) -> int:
    kb = default_knowledge()
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            n = 0
            for data in demo_data(today):
                history = records.validate(data, kb, today)
                pid = records.save(session, history, kb, today, "demo")
                identity = demo_identity(n, history.patient.birth_date)
                save_identity(session, pid, identity, user="demo")
                n += 1
            return n
    finally:
        engine.dispose()
