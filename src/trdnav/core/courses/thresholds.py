"""A session record checked against its protocol: input consistency, then every threshold rule.

- :func:`validate_session` raises :class:`~trdnav.errors.InputError` for a record that
  contradicts itself or the protocol (a post-dose reading before the dose, ``minutes_after_dose``
  disagreeing with the clock by more than :data:`MINUTES_TOLERANCE`, a missing dose or weight, an
  unknown question); :func:`validate_course` lists the problems of a whole course (a session
  recorded twice, a record of another protocol).
- :func:`evaluate_session` applies the protocol: pre-checks, pre-dose vitals, thresholds, the dose,
  the timed post-dose checks, observation time and discharge criteria. A ``block`` before the dose
  defers the session unless the record carries an override for its code (the finding stays, with
  ``overridden_by``); a ``block`` after the dose (e.g. stop the infusion) prevents discharge until
  overridden; an ``extend_monitoring`` rule keeps monitoring going while the latest reading still
  crosses it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from trdnav.core.courses.dosing import weight_based_dose
from trdnav.core.courses.model import Course, SessionRecord, Vitals
from trdnav.core.courses.results import CourseFinding, DoseCalculation, SessionEvaluation
from trdnav.core.courses.schedule import numbered_sessions, phase_of
from trdnav.errors import InputError, Problem
from trdnav.knowledge.protocols import SCALE_MEASURES, Protocol, ThresholdRule

MINUTES_TOLERANCE = 2
"""``minutes_after_dose`` may differ from ``at - dose_time`` by this many minutes (rounding)."""

_COMPARE = {
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
}
_SYMBOL = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤"}


def _minutes(later: datetime, earlier: datetime) -> float | None:
    try:
        return (later - earlier).total_seconds() / 60
    except TypeError:  # one with a time zone, one without
        return None


def session_problems(protocol: Protocol, course: Course, record: SessionRecord) -> list[Problem]:
    """Every contradiction in ``record`` (empty when it is consistent)."""
    out: list[Problem] = []
    phase = phase_of(protocol, course, record.number)
    if phase is None:
        total = len(numbered_sessions(protocol, course))
        out.append(Problem("number", "unknown_session", f"the schedule has sessions 1 to {total}"))
    if record.on < course.start:
        out.append(Problem("on", "before_start", f"before the course starts ({course.start})"))
    if record.route is not None and record.route not in protocol.routes:
        out.append(
            Problem("route", "unknown_route", f"expected one of {', '.join(protocol.routes)}")
        )
    known_checks = {c.id for c in protocol.pre_checks}
    for key in record.pre_checks:
        if key not in known_checks:
            out.append(Problem(f"pre_checks.{key}", "unknown_question", "not a protocol question"))
    known_criteria = {c.id for c in protocol.discharge_criteria}
    for key in record.discharge_criteria_met:
        if key not in known_criteria:
            out.append(
                Problem(f"discharge_criteria_met.{key}", "unknown_criterion", "not a criterion")
            )
    pre, dose_time = record.pre_vitals, record.dose_time
    if pre is not None and pre.minutes_after_dose is not None:
        out.append(
            Problem(
                "pre_vitals.minutes_after_dose",
                "pre_after_dose",
                "pre-dose vitals are before the dose",
            )
        )
    if dose_time is not None and dose_time.date() != record.on:
        out.append(Problem("dose_time", "dose_other_day", f"not on the session date {record.on}"))
    post_data = bool(record.post_vitals) or any(
        s.minutes_after_dose is not None for s in record.scales
    )
    if dose_time is None:
        if post_data:
            out.append(
                Problem("dose_time", "dose_time_missing", "post-dose readings need the dose time")
            )
    else:
        if pre is not None:
            gap = _minutes(dose_time, pre.at)
            if gap is None:
                out.append(Problem("pre_vitals.at", "time_zone_mixed", "mixes time zones"))
            elif gap < 0:
                out.append(Problem("pre_vitals.at", "pre_after_dose", "is after the dose time"))
        for i, v in enumerate(record.post_vitals):
            since = _minutes(v.at, dose_time)
            if since is None:
                out.append(Problem(f"post_vitals.{i}.at", "time_zone_mixed", "mixes time zones"))
            elif since < 0:
                out.append(
                    Problem(
                        f"post_vitals.{i}.at",
                        "before_dose",
                        f"a post-dose reading at {v.at:%H:%M} is before the dose "
                        f"({dose_time:%H:%M})",
                    )
                )
            elif (
                v.minutes_after_dose is not None
                and abs(since - v.minutes_after_dose) > MINUTES_TOLERANCE
            ):
                out.append(
                    Problem(
                        f"post_vitals.{i}.minutes_after_dose",
                        "minutes_inconsistent",
                        f"{v.minutes_after_dose} min does not match the times "
                        f"({since:.0f} min after the dose)",
                    )
                )
        if record.observed_until is not None:
            observed = _minutes(record.observed_until, dose_time)
            if observed is None or observed < 0:
                out.append(
                    Problem("observed_until", "before_dose", "observation ends before the dose")
                )
    dose = phase.dose if phase is not None else None
    if dose is not None and record.status == "done":
        if dose_time is not None and record.dose_mg is None:
            out.append(Problem("dose_mg", "dose_missing", "record the dose given (mg)"))
        if dose.mg_per_kg is not None and (record.weight_kg or course.weight_kg) is None:
            out.append(
                Problem("weight_kg", "weight_missing", "a weight-based dose needs the weight (kg)")
            )
    return out


def validate_session(protocol: Protocol, course: Course, record: SessionRecord) -> None:
    """Raise :class:`InputError` with every problem of ``record``."""
    problems = session_problems(protocol, course, record)
    if problems:
        raise InputError(problems)


def validate_course(protocol: Protocol, course: Course) -> list[Problem]:
    """The problems of a whole course: protocol and treatment, sessions recorded twice (two done
    records for one number, or a record after the done one), unknown rescheduled sessions, and
    each record's own problems (``sessions.<i>.<field>``)."""
    out: list[Problem] = []
    if course.protocol_id != protocol.id:
        out.append(Problem("protocol_id", "protocol_mismatch", f"expected {protocol.id!r}"))
    if course.treatment != protocol.treatment:
        out.append(
            Problem("treatment", "treatment_mismatch", f"the protocol is {protocol.treatment}")
        )
    done: dict[int, int] = {}
    for i, r in enumerate(course.sessions):
        if r.number in done:
            out.append(
                Problem(
                    f"sessions.{i}.number",
                    "session_recorded_twice",
                    f"session {r.number} is recorded already (sessions.{done[r.number]})",
                )
            )
        elif r.status == "done":
            done[r.number] = i
    known = {s.number for s in numbered_sessions(protocol, course)}
    for n in sorted(course.rescheduled):
        if n not in known:
            out.append(
                Problem(f"rescheduled.{n}", "unknown_session", f"session {n} is not planned")
            )
    for i, r in enumerate(course.sessions):
        for p in session_problems(protocol, course, r):
            out.append(Problem(f"sessions.{i}.{p.loc}", p.code, p.message))
    return out


@dataclass
class _Found:
    finding: CourseFinding
    kind: str  # "pre_block" | "post_block" | "warn" | "extend" | "info"


def _readings(rule: ThresholdRule, record: SessionRecord) -> list[tuple[float, int | None]]:
    """(value, minutes after dose) for every reading the rule looks at, in time order."""
    m = rule.measure
    if rule.timing == "session":
        value = getattr(record, m)
        return [] if value is None else [(float(value), None)]
    if rule.timing == "pre_dose":
        v = record.pre_vitals
        value = None if v is None else getattr(v, m)
        return [] if value is None else [(float(value), None)]
    if m in SCALE_MEASURES:
        scales = [
            s for s in record.scales if s.instrument == m and s.minutes_after_dose is not None
        ]
        return [(s.total, s.minutes_after_dose) for s in scales]
    out: list[tuple[float, int | None]] = []
    pre = record.pre_vitals
    for v in _post_in_order(record):
        minutes = _post_minutes(record, v.at, v.minutes_after_dose)
        if m in ("systolic_rise", "diastolic_rise"):
            if pre is None:
                continue
            base = m.removesuffix("_rise")
            out.append((float(getattr(v, base) - getattr(pre, base)), minutes))
        else:
            value = getattr(v, m)
            if value is not None:
                out.append((float(value), minutes))
    return out


def _post_minutes(record: SessionRecord, at: datetime, given: int | None) -> int | None:
    if given is not None:
        return given
    if record.dose_time is None:
        return None
    since = _minutes(at, record.dose_time)
    return None if since is None else round(since)


def _post_in_order(record: SessionRecord) -> list[Vitals]:
    return sorted(record.post_vitals, key=lambda v: v.at)


def _fmt(x: float) -> str:
    return f"{x:g}"


def _threshold_findings(protocol: Protocol, record: SessionRecord) -> list[_Found]:
    out: list[_Found] = []
    for rule in protocol.thresholds:
        readings = _readings(rule, record)
        crossing = [(v, t) for v, t in readings if _COMPARE[rule.comparison](v, rule.value)]
        if not crossing:
            continue
        value, minutes = crossing[0]
        worst = (max if rule.comparison in ("gt", "ge") else min)(v for v, _ in crossing)
        when = "" if minutes is None else f" at {minutes} min"
        detail = f" ({rule.measure.replace('_', ' ')} {_fmt(worst)}"
        detail += f"; first {_fmt(value)}{when}" if len(crossing) > 1 else when
        detail += f"; limit {_SYMBOL[rule.comparison]} {_fmt(rule.value)})"
        if rule.action == "block":
            kind = "pre_block" if rule.timing == "pre_dose" else "post_block"
        elif rule.action == "extend_monitoring":
            latest = readings[-1][0]
            unresolved = _COMPARE[rule.comparison](latest, rule.value)
            kind = "extend" if unresolved else "warn"
            if not unresolved:
                detail += "; back within the limit at the latest reading"
        else:
            kind = "warn"
        out.append(
            _Found(
                CourseFinding(
                    code=rule.code,
                    severity="block" if rule.action == "block" else "warn",
                    message=rule.message + detail,
                    citations=rule.source,
                    verified=rule.verified,
                    rule_id=rule.id,
                ),
                kind,
            )
        )
    return out


def _dose_findings(
    protocol: Protocol, course: Course, record: SessionRecord
) -> tuple[list[_Found], DoseCalculation | None]:
    phase = phase_of(protocol, course, record.number)
    dose = phase.dose if phase is not None else None
    if dose is None:
        return [], None
    out: list[_Found] = []
    kind = "pre_block" if dose.off_protocol_action == "block" else "warn"
    severity = "block" if dose.off_protocol_action == "block" else "warn"
    calc: DoseCalculation | None = None
    if dose.mg_per_kg is not None:
        weight = record.weight_kg or course.weight_kg
        if weight is None and record.status != "done":
            return [], None
        calc = weight_based_dose(dose.mg_per_kg, weight, dose.max_mg)
        if record.dose_mg is not None and abs(record.dose_mg - calc.mg) > dose.tolerance_mg:
            out.append(
                _Found(
                    CourseFinding(
                        code="dose_differs_from_calculated",
                        severity=severity,
                        message=f"{_fmt(record.dose_mg)} mg differs from the protocol dose "
                        f"{calc.formula}",
                        citations=dose.source,
                        verified=dose.verified,
                    ),
                    kind,
                )
            )
    elif dose.options_mg and record.dose_mg is not None:
        allowed = (
            (dose.first_session_mg,)
            if record.number == 1 and dose.first_session_mg is not None
            else dose.options_mg
        )
        if record.dose_mg not in allowed:
            which = "the first dose" if len(allowed) == 1 and record.number == 1 else "a dose"
            out.append(
                _Found(
                    CourseFinding(
                        code="dose_not_in_protocol",
                        severity=severity,
                        message=f"{_fmt(record.dose_mg)} mg is not {which} of this phase "
                        f"({' or '.join(_fmt(x) for x in allowed)} mg)",
                        citations=dose.source,
                        verified=dose.verified,
                    ),
                    kind,
                )
            )
    return out, calc


def _generic(
    code: str, severity: str, message: str, source: Iterable[str], verified: bool
) -> CourseFinding:
    return CourseFinding(
        code=code, severity=severity, message=message, citations=tuple(source), verified=verified
    )


def evaluate_session(
    protocol: Protocol, course: Course, record: SessionRecord
) -> SessionEvaluation:
    """The protocol applied to ``record`` (raises :class:`InputError` for an inconsistent one)."""
    validate_session(protocol, course, record)
    required = protocol.observation.minimum_minutes if protocol.observation else None
    if record.status in ("missed", "cancelled"):
        return SessionEvaluation(
            findings=(),
            deferred=False,
            extend_monitoring=False,
            may_discharge=False,
            observation_minutes_required=required,
        )
    found: list[_Found] = []
    for c in protocol.pre_checks:
        answer = record.pre_checks.get(c.id)
        if answer is True:
            continue
        state = "not answered" if answer is None else "answered no"
        found.append(
            _Found(
                _generic(c.code, c.action, f"{c.text}: {state}", c.source, c.verified),
                "pre_block" if c.action == "block" else "warn",
            )
        )
    if protocol.pre_vitals_required and record.pre_vitals is None:
        found.append(
            _Found(
                _generic(
                    "pre_dose_vitals_missing",
                    "block",
                    "Pre-dose vital signs are not recorded: the protocol needs them first",
                    protocol.source,
                    protocol.verified,
                ),
                "pre_block",
            )
        )
    found.extend(_threshold_findings(protocol, record))
    dose_found, calc = _dose_findings(protocol, course, record)
    found.extend(dose_found)
    done = record.status == "done"
    missing_checks = False
    if done and record.dose_time is not None:
        for check in protocol.post_dose_checks:
            if check.what == "vitals":
                times = [
                    _post_minutes(record, v.at, v.minutes_after_dose) for v in record.post_vitals
                ]
            else:
                times = [s.minutes_after_dose for s in record.scales if s.instrument == check.what]
            if any(t is not None and abs(t - check.minutes) <= check.window_minutes for t in times):
                continue
            missing_checks = True
            what = "vital signs" if check.what == "vitals" else check.what.upper()
            found.append(
                _Found(
                    _generic(
                        "post_dose_check_missing",
                        "warn",
                        f"{what} at {check.minutes} min after the dose "
                        f"(± {check.window_minutes} min) not recorded",
                        check.source,
                        check.verified,
                    ),
                    "warn",
                )
            )
    if done and protocol.record_fields is not None:
        for name in protocol.record_fields.fields:
            if getattr(record, name) is None:
                found.append(
                    _Found(
                        _generic(
                            "record_field_missing",
                            "warn",
                            f"{name.replace('_', ' ')} is not recorded",
                            protocol.record_fields.source,
                            protocol.record_fields.verified,
                        ),
                        "warn",
                    )
                )
    if (
        protocol.electrode_placement is not None
        and record.electrode_placement is not None
        and record.electrode_placement != protocol.electrode_placement
    ):
        found.append(
            _Found(
                _generic(
                    "electrode_placement_differs",
                    "warn",
                    f"placement {record.electrode_placement} differs from the protocol's "
                    f"{protocol.electrode_placement}: use the matching protocol or record why",
                    protocol.source,
                    protocol.verified,
                ),
                "warn",
            )
        )
    if protocol.transport is not None:
        t = protocol.transport
        found.append(_Found(_generic(t.code, "info", t.rule, t.source, t.verified), "info"))
        if done and not record.transport:
            found.append(
                _Found(
                    _generic(
                        "transport_not_recorded",
                        "warn",
                        f"Transport home is not recorded. {t.rule}",
                        t.source,
                        t.verified,
                    ),
                    "warn",
                )
            )
    for caution in protocol.cautions:
        found.append(
            _Found(
                _generic(caution.code, "info", caution.text, caution.source, caution.verified),
                "info",
            )
        )

    overrides = {o.code: o for o in record.overrides}
    findings: list[CourseFinding] = []
    unresolved_pre = unresolved_post = False
    block_codes: set[str] = set()
    for f in found:
        finding = f.finding
        if f.kind in ("pre_block", "post_block"):
            block_codes.add(finding.code)
            if finding.code in overrides:
                finding = finding.model_copy(update={"overridden_by": overrides[finding.code].by})
            elif f.kind == "pre_block":
                unresolved_pre = True
            else:
                unresolved_post = True
        findings.append(finding)
    for code, o in overrides.items():
        if code not in block_codes:
            findings.append(
                _generic(
                    "override_without_block",
                    "info",
                    f"{o.by} overrode {code}, which this record does not raise",
                    protocol.source,
                    protocol.verified,
                )
            )
    extend = any(f.kind == "extend" for f in found)
    observed: float | None = None
    if record.dose_time is not None and record.observed_until is not None:
        observed = _minutes(record.observed_until, record.dose_time)
    may_discharge = (
        done
        and not unresolved_pre
        and not unresolved_post
        and not extend
        and not missing_checks
        and (required is None or (observed is not None and observed >= required))
        and all(
            record.discharge_criteria_met.get(c.id) is True for c in protocol.discharge_criteria
        )
    )
    if done and required is not None and (observed is None or observed < required):
        seen = "not recorded" if observed is None else f"{observed:.0f} min so far"
        obs = protocol.observation
        if obs is not None:
            findings.append(
                _generic(
                    "observation_incomplete",
                    "info",
                    f"Observation of at least {required} min after the dose is required ({seen})",
                    obs.source,
                    obs.verified,
                )
            )
    order = {"block": 0, "warn": 1, "info": 2}
    findings.sort(key=lambda f: order.get(f.severity, 3))
    return SessionEvaluation(
        findings=tuple(findings),
        deferred=unresolved_pre,
        extend_monitoring=extend,
        may_discharge=may_discharge,
        observation_minutes_required=required,
        dose=calc,
    )
