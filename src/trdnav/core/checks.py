"""Checks of a parsed history that need the knowledge base or several fields at once.

Every problem is collected (never only the first), each with the field path a clinician can find in
the file, e.g. ``treatments[2].doses[0].from``.
"""

from __future__ import annotations

from datetime import date

from trdnav.core.date_range import implausible_dates
from trdnav.core.history import Condition, History, Measurement, Medication
from trdnav.core.measures import measurement_problems
from trdnav.core.workup import workup_input_problems
from trdnav.errors import Problem
from trdnav.knowledge.load import Knowledge


def _after(loc: str, value: date, as_of: date) -> Problem:
    return Problem(
        loc,
        "date_after_assessment",
        f"{value.isoformat()} is after the assessment date {as_of.isoformat()}",
    )


def _suggest(names: list[str]) -> str:
    return f"; did you mean {' or '.join(repr(n) for n in names)}?" if names else ""


def check_history(history: History, kb: Knowledge, as_of: date) -> list[Problem]:
    # a date out of range (9999-12-31) is reported alone: the other checks do date arithmetic
    problems: list[Problem] = implausible_dates(history)
    if problems:
        return problems
    p = history.patient
    if p.birth_date is not None and p.birth_date > as_of:
        problems.append(_after("patient.birth_date", p.birth_date, as_of))
    if history.episode.onset > as_of:
        problems.append(_after("episode.onset", history.episode.onset, as_of))
    if p.birth_date is not None and history.episode.onset < p.birth_date:
        problems.append(
            Problem("episode.onset", "date_before_birth", "episode onset is before the birth date")
        )
    statuses = kb.conditions_source.clinical_statuses
    generic = () if statuses is None else (*statuses.present, *statuses.absent)
    for i, cond in enumerate(history.conditions):
        term = kb.conditions.get(cond.name)
        if term is None:
            problems.append(
                Problem(
                    f"conditions[{i}].name",
                    "unknown_condition",
                    f"unknown condition {cond.name!r}"
                    + _suggest(kb.closest_conditions(cond.name))
                    + " (the vocabulary is listed in docs/history-format.md)",
                )
            )
        elif cond.status is not None and cond.status not in (*term.statuses, *generic):
            allowed = ", ".join((*term.statuses, *generic)) or "no status"
            problems.append(
                Problem(
                    f"conditions[{i}].status",
                    "invalid_status",
                    f"status {cond.status!r} is not allowed for {cond.name} (expected: {allowed})",
                )
            )
    for i, t in enumerate(history.treatments):
        loc = f"treatments[{i}]"
        if t.stop is not None and t.stop < t.start:
            problems.append(
                Problem(
                    f"{loc}.stop",
                    "stop_before_start",
                    f"stop {t.stop.isoformat()} is before start {t.start.isoformat()}",
                )
            )
        if t.start > as_of:
            problems.append(_after(f"{loc}.start", t.start, as_of))
        if t.stop is not None and t.stop > as_of:
            problems.append(_after(f"{loc}.stop", t.stop, as_of))
        if p.birth_date is not None and t.start < p.birth_date:
            problems.append(
                Problem(
                    f"{loc}.start", "date_before_birth", "treatment starts before the birth date"
                )
            )
        if isinstance(t, Medication):
            problems.extend(_check_medication(loc, t, kb))
    for i, m in enumerate(history.measurements):
        problems.extend(_check_measurement(f"measurements[{i}]", m, history, as_of))
        problems.extend(measurement_problems(f"measurements[{i}]", m, history, kb))
    problems.extend(workup_input_problems(history, kb, as_of))
    return problems


def _check_medication(loc: str, t: Medication, kb: Knowledge) -> list[Problem]:
    problems: list[Problem] = []
    if kb.resolve_drug(t.drug) is None:
        problems.append(
            Problem(
                f"{loc}.drug",
                "unknown_drug",
                f"unknown drug {t.drug!r}" + _suggest(kb.closest_drug_names(t.drug)),
            )
        )
    if t.augments is not None and kb.resolve_drug(t.augments) is None:
        problems.append(
            Problem(
                f"{loc}.augments",
                "unknown_drug",
                f"unknown drug {t.augments!r}" + _suggest(kb.closest_drug_names(t.augments)),
            )
        )
    seen: set[date] = set()
    for j, step in enumerate(t.doses):
        dloc = f"{loc}.doses[{j}].from"
        if step.from_ < t.start or (t.stop is not None and step.from_ > t.stop):
            end = t.stop.isoformat() if t.stop else "ongoing"
            problems.append(
                Problem(
                    dloc,
                    "dose_outside_trial",
                    f"dose step date {step.from_.isoformat()} is outside the trial "
                    f"({t.start.isoformat()} to {end})",
                )
            )
        if step.from_ in seen:
            problems.append(
                Problem(
                    dloc, "duplicate_dose_step", f"two dose steps start on {step.from_.isoformat()}"
                )
            )
        seen.add(step.from_)
    if t.response_lost_on is not None and t.response_lost_on < t.start:
        problems.append(
            Problem(
                f"{loc}.response_lost_on",
                "date_before_start",
                "response_lost_on is before the trial started",
            )
        )
    return problems


def _check_measurement(loc: str, m: Measurement, history: History, as_of: date) -> list[Problem]:
    problems: list[Problem] = []
    if m.date > as_of:
        problems.append(_after(f"{loc}.date", m.date, as_of))
    birth = history.patient.birth_date
    if birth is not None and m.date < birth:
        problems.append(
            Problem(
                f"{loc}.date", "date_before_birth", f"{m.date.isoformat()} is before the birth date"
            )
        )
    if m.items is None and m.total is None:
        problems.append(Problem(loc, "measurement_empty", "give items or a total"))
    return problems


def resolve_condition_statuses(history: History, kb: Knowledge) -> tuple[History, list[str]]:
    """Read FHIR-style clinical statuses on any condition (resolved at the boundary).

    ``active``/``present`` (and the other present statuses of the vocabulary) mean the condition
    is there: its own default status then applies. ``resolved``/``inactive`` mean it is not
    counted, and a note says so, except for a history-of term (a past haemorrhage stays a risk),
    which is kept and noted. A term's own statuses take precedence.
    """
    generic = kb.conditions_source.clinical_statuses
    if generic is None or not history.conditions:
        return history, []
    kept: list[Condition] = []
    notes: list[str] = []
    changed = False
    for i, cond in enumerate(history.conditions):
        term = kb.conditions.get(cond.name)
        status = cond.status
        if term is None or status is None or status in term.statuses:
            kept.append(cond)
        elif status in generic.present:
            kept.append(cond.model_copy(update={"status": None}))
            changed = True
        elif status in generic.absent and term.historical:
            kept.append(cond.model_copy(update={"status": None}))
            changed = True
            notes.append(
                f"conditions[{i}] {cond.name}: status {status!r} — a history-of condition, "
                "still counted (a past event remains a risk)"
            )
        elif status in generic.absent:
            changed = True
            notes.append(f"conditions[{i}] {cond.name}: status {status!r} — not counted")
        else:
            kept.append(cond)
    if not changed:
        return history, notes
    return history.model_copy(update={"conditions": tuple(kept)}), notes
