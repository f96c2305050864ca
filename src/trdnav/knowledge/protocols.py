"""Protocol templates of interventional courses (esketamine, ketamine, rTMS, ECT) as data.

One YAML file per protocol under ``knowledge/data/protocols/<id>.yaml``; a clinic adds its own
templates in a folder named by ``TRDNAV_PROTOCOLS_DIR`` (validated the same way; a clinic template
may not reuse a packaged id). Every number (dose, frequency, threshold, time) sits in a
:class:`~trdnav.knowledge.schema.Sourced` model, so the loader checks each citation key against the
bibliography and the software can show which facts are unverified.

:func:`load_protocols` reads a folder; :func:`protocol_defects` checks what the schema alone cannot
(unique ids and keys, phase arithmetic, review points naming real phases and sessions, record
fields naming real fields of the session record). The course engine (``trdnav.core.courses``) reads
these models; it hard-codes no clinical figure.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from trdnav.core.courses.model import CourseTreatment, SessionRecord
from trdnav.errors import Problem
from trdnav.knowledge.schema import Sourced, Strict

Measure = Literal[
    "systolic",
    "diastolic",
    "heart_rate",
    "spo2",
    "systolic_rise",
    "diastolic_rise",
    "cadss",
    "moaas",
    "seizure_seconds",
    "reorientation_minutes",
    "intensity_pct_mt",
    "pulses",
]
"""What a threshold rule reads. Vital signs and ``*_rise`` (post-dose minus pre-dose) come from
the vitals; ``cadss``/``moaas`` from the session's scales (instrument ids); the rest from the
session record's own fields."""

SESSION_MEASURES: frozenset[str] = frozenset(
    {"seizure_seconds", "reorientation_minutes", "intensity_pct_mt", "pulses"}
)
SCALE_MEASURES: frozenset[str] = frozenset({"cadss", "moaas"})

Timing = Literal["pre_dose", "post_dose", "session"]
Comparison = Literal["gt", "ge", "lt", "le"]
Action = Literal["block", "warn", "extend_monitoring"]
LabelStatus = Literal["on_label", "off_label"]
MissedRule = Literal["make_up_end_of_phase", "no_make_up"]

RECORD_FIELDS: frozenset[str] = frozenset(SessionRecord.model_fields)


class ThresholdRule(Sourced):
    """``measure`` ``comparison`` ``value`` at ``timing`` -> ``action`` with ``message``.

    Fires when any reading at that timing satisfies the comparison (e.g. any post-dose systolic
    above 140). ``block`` before the dose defers the session (a clinician may override with a
    written reason); ``extend_monitoring`` keeps the patient under observation until the latest
    reading no longer satisfies it."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="stable finding code")
    measure: Measure
    timing: Timing
    comparison: Comparison
    value: float
    action: Action
    message: str = Field(min_length=10)

    @model_validator(mode="after")
    def _timing_fits_measure(self) -> ThresholdRule:
        if self.measure in SESSION_MEASURES and self.timing != "session":
            raise ValueError(f"{self.measure} is a session measure: timing must be 'session'")
        if self.measure not in SESSION_MEASURES and self.timing == "session":
            raise ValueError(f"{self.measure} is read before or after the dose, not 'session'")
        if self.measure in SCALE_MEASURES | {"systolic_rise", "diastolic_rise"} and (
            self.timing != "post_dose"
        ):
            raise ValueError(f"{self.measure} is a post-dose measure")
        return self


class PreCheck(Sourced):
    """A protocol question answered before each session (``SessionRecord.pre_checks[key]``).
    Unanswered or answered "no" raises ``action``."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="key in pre_checks")
    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    text: str = Field(min_length=5, description="the question, answered yes/no")
    action: Literal["block", "warn"] = "warn"


class TimedCheck(Sourced):
    """A post-dose reading expected at ``minutes`` after the dose (± ``window_minutes``):
    ``what`` is ``vitals`` or an instrument id (``cadss``, ``moaas``)."""

    what: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    minutes: int = Field(ge=0, le=24 * 60)
    window_minutes: int = Field(ge=0, le=120)


class DoseSpec(Sourced):
    """The dose of a phase: fixed options (esketamine devices), weight-based (IV ketamine), or
    set by the clinician (``clinician_sets_dose``: the record must carry the dose given)."""

    options_mg: tuple[float, ...] = ()
    first_session_mg: float | None = Field(default=None, gt=0)
    mg_per_kg: float | None = Field(default=None, gt=0, le=10)
    max_mg: float | None = Field(default=None, gt=0)
    infusion_minutes: int | None = Field(default=None, gt=0, le=600)
    device_mg: float | None = Field(default=None, gt=0)
    minutes_between_devices: int | None = Field(default=None, ge=0, le=60)
    clinician_sets_dose: bool = False
    off_protocol_action: Literal["block", "warn"] = "warn"
    tolerance_mg: float = Field(
        default=0.5, ge=0, description="a weight-based dose may differ by this much (rounding)"
    )

    @model_validator(mode="after")
    def _one_way_to_dose(self) -> DoseSpec:
        ways = sum([bool(self.options_mg), self.mg_per_kg is not None, self.clinician_sets_dose])
        if ways != 1:
            raise ValueError("give exactly one of options_mg, mg_per_kg, clinician_sets_dose")
        if self.first_session_mg is not None and self.first_session_mg not in self.options_mg:
            raise ValueError("first_session_mg must be one of options_mg")
        if self.device_mg is not None:
            for mg in self.options_mg:
                if not math.isclose(mg / self.device_mg, round(mg / self.device_mg)):
                    raise ValueError(
                        f"{mg} mg is not a whole number of {self.device_mg} mg devices"
                    )
        return self


class Phase(Sourced):
    """A run of sessions: ``sessions`` planned, ``per_week`` treatment days a week (``every_weeks``
    apart: 2 = every other week), ``per_day`` sessions on each treatment day."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    sessions: int = Field(ge=1, le=200)
    per_week: int = Field(ge=1, le=7)
    every_weeks: int = Field(default=1, ge=1, le=8)
    per_day: int = Field(default=1, ge=1, le=20)
    intersession_minutes: int | None = Field(default=None, ge=1, le=600)
    weeks: int | None = Field(default=None, ge=1, le=104)
    days: int | None = Field(default=None, ge=1, le=200, description="treatment days")
    open_ended: bool = Field(default=False, description="continues beyond the planned sessions")
    dose: DoseSpec | None = None
    missed_session: MissedRule = "no_make_up"

    @model_validator(mode="after")
    def _arithmetic(self) -> Phase:
        if self.per_day > 1 and self.intersession_minutes is None:
            raise ValueError("several sessions a day need intersession_minutes")
        if self.sessions % self.per_day:
            raise ValueError("sessions must be a whole number of treatment days (per_day)")
        if self.days is not None and self.days * self.per_day != self.sessions:
            raise ValueError("sessions must equal days × per_day")
        if self.weeks is not None:
            expected = self.per_week * self.per_day * math.ceil(self.weeks / self.every_weeks)
            if expected != self.sessions:
                raise ValueError(
                    f"sessions must equal per_week × per_day × weeks / every_weeks = {expected}"
                )
        return self


class ReviewPoint(Sourced):
    """A response review due at session ``after_session`` or at the end of phase
    ``end_of_phase`` (exactly one), shown as a task."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    after_session: int | None = Field(default=None, ge=1)
    end_of_phase: str | None = None
    text: str = Field(min_length=10)

    @model_validator(mode="after")
    def _one_anchor(self) -> ReviewPoint:
        if (self.after_session is None) == (self.end_of_phase is None):
            raise ValueError("give exactly one of after_session and end_of_phase")
        return self


class DischargeCriterion(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    text: str = Field(min_length=5)


class Discharge(Sourced):
    criteria: tuple[DischargeCriterion, ...] = Field(min_length=1)


class Observation(Sourced):
    minimum_minutes: int = Field(ge=0, le=24 * 60)


class Transport(Sourced):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    rule: str = Field(min_length=10)
    no_driving_until_next_day: bool = False


class MeasureBefore(Sourced):
    """A measure taken before each session (e.g. PHQ-9, with its suicide item)."""

    instrument: str = Field(description="instrument id of the knowledge base")
    text: str = Field(min_length=5)


class RecordFields(Sourced):
    """Session-record fields a completed session must carry (rTMS motor threshold, ECT seizure
    duration ...); a missing one is a warning."""

    fields: tuple[str, ...] = Field(min_length=1)


class Caution(Sourced):
    """A standing warning shown with every session (e.g. rTMS seizure risk factors)."""

    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    text: str = Field(min_length=10)


class Protocol(Sourced):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str = Field(min_length=3)
    treatment: CourseTreatment
    option_id: str = Field(description="the planner option screened for eligibility")
    routes: tuple[str, ...] = Field(min_length=1)
    label_status: LabelStatus
    summary: str = Field(min_length=20)
    phases: tuple[Phase, ...] = Field(min_length=1)
    pre_checks: tuple[PreCheck, ...] = ()
    pre_vitals_required: bool = False
    thresholds: tuple[ThresholdRule, ...] = ()
    post_dose_checks: tuple[TimedCheck, ...] = ()
    observation: Observation | None = None
    discharge: Discharge | None = None
    transport: Transport | None = None
    missed_sessions: Sourced = Field(description="why the phases' missed-session rules")
    review_points: tuple[ReviewPoint, ...] = ()
    measure_before: tuple[MeasureBefore, ...] = ()
    record_fields: RecordFields | None = None
    cautions: tuple[Caution, ...] = ()
    electrode_placement: Literal["rul", "bitemporal", "bifrontal"] | None = None
    rems: bool = False
    clinic: bool = Field(default=False, description="set by the loader for clinic templates")
    added_in: str = "0.1.0"

    @property
    def off_label(self) -> bool:
        return self.label_status == "off_label"

    @property
    def post_dose_minutes(self) -> tuple[int, ...]:
        """Minutes after the dose at which vital signs are due."""
        return tuple(c.minutes for c in self.post_dose_checks if c.what == "vitals")

    @property
    def discharge_criteria(self) -> tuple[DischargeCriterion, ...]:
        return self.discharge.criteria if self.discharge is not None else ()

    @property
    def planned_total(self) -> int:
        return sum(p.sessions for p in self.phases)

    def phase(self, phase_id: str) -> Phase:
        return next(p for p in self.phases if p.id == phase_id)


def _duplicates(values: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    dup: list[str] = []
    for v in values:
        if v in seen and v not in dup:
            dup.append(v)
        seen.add(v)
    return dup


def protocol_defects(p: Protocol, instrument_ids: Iterable[str] = ()) -> list[tuple[str, str]]:
    """(loc, message) for what the schema alone cannot check."""
    out: list[tuple[str, str]] = []
    instruments = set(instrument_ids)
    for name, values in (
        ("phases", [ph.id for ph in p.phases]),
        ("pre_checks", [c.id for c in p.pre_checks]),
        ("thresholds", [t.id for t in p.thresholds]),
        ("review_points", [r.id for r in p.review_points]),
        ("discharge.criteria", [c.id for c in p.discharge.criteria] if p.discharge else []),
    ):
        for dup in _duplicates(values):
            out.append((name, f"{dup!r} appears twice"))
    codes = [t.code for t in p.thresholds] + [c.code for c in p.pre_checks]
    codes += [c.code for c in p.cautions] + ([p.transport.code] if p.transport else [])
    for dup in _duplicates(codes):
        out.append(("thresholds", f"finding code {dup!r} is used by two rules"))
    phase_ids = {ph.id for ph in p.phases}
    for i, ph in enumerate(p.phases[:-1]):
        if ph.open_ended:
            out.append((f"phases[{i}].open_ended", "only the last phase may be open-ended"))
    for i, r in enumerate(p.review_points):
        if r.end_of_phase is not None and r.end_of_phase not in phase_ids:
            out.append((f"review_points[{i}].end_of_phase", f"no phase {r.end_of_phase!r}"))
        if r.after_session is not None and r.after_session > p.planned_total:
            out.append(
                (f"review_points[{i}].after_session", f"only {p.planned_total} sessions planned")
            )
    for i, t in enumerate(p.thresholds):
        if t.action == "extend_monitoring" and t.timing != "post_dose":
            out.append((f"thresholds[{i}].action", "extend_monitoring applies after the dose"))
    for i, c in enumerate(p.post_dose_checks):
        if c.what != "vitals" and instruments and c.what not in instruments:
            out.append((f"post_dose_checks[{i}].what", f"unknown instrument {c.what!r}"))
    for i, m in enumerate(p.measure_before):
        if instruments and m.instrument not in instruments:
            out.append((f"measure_before[{i}].instrument", f"unknown instrument {m.instrument!r}"))
    if p.record_fields is not None:
        for name in p.record_fields.fields:
            if name not in RECORD_FIELDS:
                out.append(("record_fields.fields", f"{name!r} is not a session-record field"))
    if (
        p.observation is not None
        and p.observation.minimum_minutes > 0
        and not any(ph.dose for ph in p.phases)
    ):
        out.append(("observation", "an observation time needs a dosed phase"))
    if p.label_status == "on_label" and any(
        ph.dose is not None and ph.dose.clinician_sets_dose for ph in p.phases
    ):
        out.append(("label_status", "an on-label protocol states its doses"))
    return out


def _read(path: Path, problems: list[Problem]) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        problems.append(Problem("", "yaml_invalid", f"not valid YAML: {exc}", str(path)))
        return None


def load_protocols(
    folder: Path,
    problems: list[Problem],
    *,
    instrument_ids: Iterable[str] = (),
    clinic: bool = False,
) -> dict[str, Protocol]:
    """Every ``*.yaml`` in ``folder`` validated as a :class:`Protocol` (file name = id); defects
    are appended to ``problems`` naming the file and the field."""
    instruments = tuple(instrument_ids)
    out: dict[str, Protocol] = {}
    if not folder.is_dir():
        problems.append(Problem("", "protocols_missing", "not a folder", str(folder)))
        return out
    for path in sorted(folder.glob("*.yaml")):
        raw = _read(path, problems)
        if raw is None:
            continue
        try:
            protocol = Protocol.model_validate(raw)
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(x) for x in err["loc"])
                problems.append(Problem(loc, "knowledge_invalid", err["msg"], str(path)))
            continue
        if protocol.id != path.stem:
            problems.append(
                Problem(
                    "id", "id_mismatch", f"id {protocol.id!r} differs from file name", str(path)
                )
            )
        problems.extend(
            Problem(loc, "protocol_invalid", msg, str(path))
            for loc, msg in protocol_defects(protocol, instruments)
        )
        out[protocol.id] = protocol.model_copy(update={"clinic": clinic})
    return out
