"""The operations on a course, shared by the pages and the JSON API.

Each operation reads the stored course at the version the caller read (its form's hidden
``version`` or the API's ``If-Match``), builds the changed :class:`Course` with the record's own
models, applies the course engine's rules (:mod:`trdnav.core.courses`: eligibility, thresholds)
and saves the course whole with that version. Invalid input raises :class:`InputError` naming
each field (nothing stored); a stale version raises ``StaleRecordError`` (nothing stored). No
clinical rule is decided here: the engine decides, this module stores what it decided.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from trdnav.core.courses import eligibility, thresholds
from trdnav.core.courses.model import (
    Acknowledgement,
    Course,
    CourseNote,
    Eligibility,
    Override,
    SessionRecord,
)
from trdnav.core.courses.results import EligibilityDecision, SessionEvaluation
from trdnav.core.safety import Finding, screen_option
from trdnav.errors import InputError, Problem
from trdnav.identity import PatientIdentity
from trdnav.knowledge.load import Knowledge
from trdnav.knowledge.protocols import Protocol
from trdnav.storage import courses as store
from trdnav.storage import identity as identities
from trdnav.storage import repository

MIN_REASON = 10
M = TypeVar("M", bound=BaseModel)
_INDEX = re.compile(r"\[(\d+)\]")


def field_path(loc: Iterable[Any]) -> str:
    """A pydantic error location as a form field name: ``post_vitals.0.systolic``."""
    return ".".join(str(x) for x in loc)


def normal_loc(loc: str) -> str:
    """``post_vitals[0].at`` (the engine's paths) as ``post_vitals.0.at`` (the forms' names)."""
    return _INDEX.sub(r".\1", loc).lstrip(".")


def problems_of(exc: ValidationError, prefix: str = "") -> list[Problem]:
    out = []
    for e in exc.errors():
        loc = field_path(e["loc"])
        out.append(Problem(f"{prefix}{loc}" if loc else prefix.rstrip("."), e["type"], e["msg"]))
    return out


def validated(model: type[M], data: Any, prefix: str = "") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InputError(problems_of(exc, prefix)) from None


def protocol_of(kb: Knowledge, protocol_id: str, loc: str = "protocol_id") -> Protocol:
    protocol = kb.protocols.get(protocol_id)
    if protocol is None:
        known = ", ".join(sorted(kb.protocols))
        raise InputError([Problem(loc, "unknown_protocol", f"expected one of {known}")])
    return protocol


@dataclass(frozen=True)
class Opened:
    course: Course
    version: int
    protocol: Protocol
    identity: PatientIdentity | None = None  # the patient's name, DOB and MRN, when recorded


def open_course(
    db: Session, kb: Knowledge, course_id: str, user: str, ip: str | None = None
) -> Opened:
    """The course, its protocol and the patient's identity (both reads audited)."""
    course, version = store.load_course(db, course_id, user, ip)
    identity = identities.load_identity(db, course.patient_id, user=user, ip=ip)
    return Opened(course, version, protocol_of(kb, course.protocol_id), identity)


def findings_for(
    db: Session,
    kb: Knowledge,
    opened: Opened,
    today: date,
    user: str,
    ip: str | None = None,
) -> list[Finding]:
    """The planner's safety screening of the protocol's option for this patient, today."""
    option_id = opened.protocol.option_id
    option = kb.options.options.get(option_id)
    history = repository.load_history(db, opened.course.patient_id, user, ip)
    drugs = option.drugs if option is not None else ()
    return screen_option(option_id, drugs, history, today, kb)


def decide(opened: Opened, findings: Sequence[Finding]) -> EligibilityDecision:
    return eligibility.review_eligibility(opened.protocol, findings, opened.course)


def create(
    db: Session,
    kb: Knowledge,
    patient_id: str,
    data: Mapping[str, Any],
    user: str,
    ip: str | None = None,
) -> tuple[Course, int]:
    """A new planned course (id made here); the treatment is the protocol's."""
    problems = []
    protocol_id = str(data.get("protocol_id") or "")
    protocol = kb.protocols.get(protocol_id)
    if protocol is None:
        known = ", ".join(sorted(kb.protocols))
        problems.append(Problem("protocol_id", "unknown_protocol", f"expected one of {known}"))
    fields = {
        "id": store.new_course_id(),
        "patient_id": patient_id,
        "protocol_id": protocol_id,
        "treatment": protocol.treatment if protocol is not None else "ketamine",
        "start": data.get("start") or None,
        "weight_kg": data.get("weight_kg") or None,
        "status": "planned",
    }
    try:
        course = Course.model_validate(fields)
    except ValidationError as exc:
        problems += problems_of(exc)
        raise InputError(problems) from None
    if problems:
        raise InputError(problems)
    if repository.patient_version(db, patient_id) is None:
        raise repository.PatientNotFoundError(patient_id)
    version = store.save_course(db, course, user, 0, ip)
    return course, version


def _save(
    db: Session,
    course: Course,
    user: str,
    version: int,
    ip: str | None,
    audit: Sequence[str] = (),
) -> int:
    return store.save_course(db, course, user, version, ip, audit)


def review(
    db: Session,
    opened: Opened,
    findings: Sequence[Finding],
    acknowledged: Iterable[str],
    consent: Mapping[str, Any],
    user: str,
    now: datetime,
    ip: str | None = None,
) -> tuple[Course, int]:
    """Record the review of the findings shown: cautions acknowledged, consent (who, date, note).

    Acknowledging a code that is not a caution shown is refused; overrides made before are kept.
    """
    course = opened.course
    shown = {f.code: f for f in findings}
    cautions = {c for c, f in shown.items() if f.severity == "caution"}
    chosen = list(dict.fromkeys(acknowledged))
    problems = [
        Problem(f"ack.{c}", "not_a_caution", "not a caution of this screening")
        for c in chosen
        if c not in cautions
    ]
    before = course.eligibility
    kept = {a.code: a for a in before.acknowledged} if before else {}
    acks = tuple(kept.get(c) or Acknowledgement(code=c, by=user, at=now) for c in chosen)
    data = {
        "reviewed_by": user,
        "reviewed_at": now,
        "findings_reviewed": tuple(shown),
        "acknowledged": acks,
        "overrides": before.overrides if before else (),
        "consent_recorded_by": user if consent.get("consent_on") else None,
        "consent_on": consent.get("consent_on") or None,
        "consent_note": consent.get("consent_note") or None,
    }
    try:
        review_ = Eligibility.model_validate(data)
    except ValidationError as exc:
        problems += problems_of(exc)
    if problems:
        raise InputError(problems)
    changed = course.model_copy(update={"eligibility": review_})
    return changed, _save(db, changed, user, opened.version, ip, ("course_review",))


def override(
    db: Session,
    opened: Opened,
    findings: Sequence[Finding],
    code: str,
    reason: str,
    user: str,
    now: datetime,
    ip: str | None = None,
) -> tuple[Course, int]:
    """Proceed past a contraindication: who, when and a written reason (audited)."""
    blocking = {f.code for f in findings if f.severity == "contraindicated"}
    problems = []
    if code not in blocking:
        problems.append(Problem("code", "not_a_contraindication", "not a contraindication shown"))
    if len(reason.strip()) < MIN_REASON:
        problems.append(
            Problem(
                "reason", "reason_too_short", f"write the reason (at least {MIN_REASON} characters)"
            )
        )
    if problems:
        raise InputError(problems)
    course = opened.course
    ov = validated(Override, {"code": code, "by": user, "at": now, "reason": reason.strip()})
    before = course.eligibility
    base = (
        before.model_copy(update={"overrides": (*before.overrides, ov)})
        if before is not None
        else Eligibility(
            reviewed_by=user,
            reviewed_at=now,
            findings_reviewed=tuple(f.code for f in findings),
            overrides=(ov,),
        )
    )
    changed = course.model_copy(update={"eligibility": base})
    return changed, _save(db, changed, user, opened.version, ip, ("course_override",))


def start(
    db: Session,
    opened: Opened,
    findings: Sequence[Finding],
    user: str,
    ip: str | None = None,
) -> tuple[Course, int]:
    """Move a planned course to ``active``, only when the engine says it can start."""
    if opened.course.status != "planned":
        raise InputError([Problem("status", "not_planned", "the course has started already")])
    decision = decide(opened, findings)
    if not decision.can_start:
        raise InputError(
            [Problem("eligibility", "cannot_start", r) for r in decision.reasons]
            or [Problem("eligibility", "cannot_start", "the eligibility review is incomplete")]
        )
    changed = opened.course.model_copy(update={"status": "active"})
    return changed, _save(db, changed, user, opened.version, ip, ("course_start",))


@dataclass(frozen=True)
class Recorded:
    course: Course
    version: int
    record: SessionRecord
    evaluation: SessionEvaluation


def _blocks(evaluation: SessionEvaluation) -> list[str]:
    return [f.code for f in evaluation.findings if f.severity == "block" and not f.overridden_by]


def _check_new_record(protocol: Protocol, course: Course, record: SessionRecord) -> None:
    """The engine's problems of the course with ``record`` added that concern ``record``."""
    i = len(course.sessions)
    prefix = f"sessions.{i}."
    added = course.model_copy(update={"sessions": (*course.sessions, record)})
    problems = [
        Problem(p.loc.removeprefix(prefix), p.code, p.message)
        for p in thresholds.validate_course(protocol, added)
        if p.loc.startswith(prefix)
    ]
    if problems:
        raise InputError(problems)


def record_session(
    db: Session,
    opened: Opened,
    data: Mapping[str, Any],
    user: str,
    now: datetime,
    override_reason: str = "",
    ip: str | None = None,
) -> Recorded:
    """Validate a session record, apply the protocol's thresholds, store it.

    A block that is not overridden stores the session as ``deferred`` (the dose must not be
    given); with ``override_reason`` (at least 10 characters) each block is overridden by the
    user with that reason (audited as ``course_override``) and the session is stored as done.
    A session number already recorded as done is refused.
    """
    course = opened.course
    if course.status != "active":
        raise InputError(
            [Problem("status", "course_not_active", "start the course (eligibility) first")]
        )
    fields = {**data, "status": "done", "recorded_by": user}
    record = validated(SessionRecord, fields)
    if any(s.number == record.number and s.status == "done" for s in course.sessions):
        raise InputError(
            [Problem("number", "session_recorded", f"session {record.number} is recorded already")]
        )
    _check_new_record(opened.protocol, course, record)
    evaluation = thresholds.evaluate_session(opened.protocol, course, record)
    audit: list[str] = ["course_session"]
    blocks = _blocks(evaluation)
    if blocks and override_reason.strip():
        if len(override_reason.strip()) < MIN_REASON:
            raise InputError(
                [
                    Problem(
                        "override_reason",
                        "reason_too_short",
                        f"write the reason (at least {MIN_REASON} characters)",
                    )
                ]
            )
        overrides = tuple(
            Override(code=c, by=user, at=now, reason=override_reason.strip()) for c in blocks
        )
        record = record.model_copy(update={"overrides": (*record.overrides, *overrides)})
        evaluation = thresholds.evaluate_session(opened.protocol, course, record)
        audit.append("course_override")
    if evaluation.deferred:
        record = record.model_copy(update={"status": "deferred"})
    changed = course.model_copy(update={"sessions": (*course.sessions, record)})
    version = _save(db, changed, user, opened.version, ip, audit)
    return Recorded(changed, version, record, evaluation)


def reschedule(
    db: Session, opened: Opened, number: int, on: date, user: str, ip: str | None = None
) -> tuple[Course, int]:
    course = opened.course
    moved = {**course.rescheduled, number: on}
    changed = course.model_copy(update={"rescheduled": moved})
    return changed, _save(db, changed, user, opened.version, ip, ("course_reschedule",))


def mark_missed(
    db: Session, opened: Opened, number: int, on: date, user: str, ip: str | None = None
) -> tuple[Course, int]:
    course = opened.course
    if any(s.number == number and s.status in ("done", "missed") for s in course.sessions):
        raise InputError(
            [Problem("number", "session_recorded", f"session {number} is recorded already")]
        )
    record = SessionRecord(number=number, status="missed", on=on, recorded_by=user)
    changed = course.model_copy(update={"sessions": (*course.sessions, record)})
    return changed, _save(db, changed, user, opened.version, ip, ("course_missed",))


def add_note(
    db: Session,
    opened: Opened,
    data: Mapping[str, Any],
    user: str,
    ip: str | None = None,
) -> tuple[Course, int]:
    fields = {k: data[k] for k in ("kind", "on", "text") if k in data and data[k] != ""}
    extra = sorted(set(data) - {"kind", "on", "text", "by", "csrf_token", "version"})
    if extra:
        raise InputError([Problem(k, "extra_forbidden", "not a field of a note") for k in extra])
    note = validated(CourseNote, {**fields, "by": user})
    course = opened.course
    changed = course.model_copy(update={"notes": (*course.notes, note)})
    return changed, _save(db, changed, user, opened.version, ip, ("course_note",))


def set_plan(
    db: Session,
    opened: Opened,
    data: Mapping[str, Any],
    user: str,
    ip: str | None = None,
) -> tuple[Course, int]:
    """The maintenance / taper plan and, optionally, the course's end (completed or stopped)."""
    course = opened.course
    update: dict[str, Any] = {
        "plan_after": data.get("plan_after") or course.plan_after,
        "plan_note": data.get("plan_note") or None,
    }
    status = data.get("status") or course.status
    if status != course.status:
        if status not in ("completed", "stopped") or course.status != "active":
            raise InputError(
                [Problem("status", "invalid_transition", "only an active course can end")]
            )
        update["status"] = status
    changed = validated(Course, {**course.model_dump(), **update})
    return changed, _save(db, changed, user, opened.version, ip, ("course_plan",))
