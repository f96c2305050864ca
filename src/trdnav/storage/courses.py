"""Saving and loading interventional courses; every read and write leaves an audit event.

A course (:class:`~trdnav.core.courses.model.Course`) is saved whole as JSON in one ``courses``
row with a ``version`` (optimistic locking, like a patient record): ``save_course`` with
``expected_version=0`` creates it, any other value must be the stored version or
:class:`~trdnav.storage.repository.StaleRecordError` is raised and nothing is stored. Course ids
are made here (:func:`new_course_id`), never taken from a form.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from trdnav.core.courses.model import Course
from trdnav.errors import TrdnavError
from trdnav.storage import models as m
from trdnav.storage.repository import PatientNotFoundError, StaleRecordError, record_audit

ENTITY = "course"


class CourseNotFoundError(TrdnavError):
    def __init__(self, course_id: str) -> None:
        self.course_id = course_id
        super().__init__(f"no course {course_id!r}")


def new_course_id() -> str:
    """A fresh course id (``C-`` and 10 hex digits), unguessable and short enough to read."""
    return "C-" + secrets.token_hex(5).upper()


def _row(session: Session, course_id: str) -> m.CourseRow | None:
    return session.scalars(
        select(m.CourseRow).where(m.CourseRow.course_id == course_id)
    ).one_or_none()


def save_course(
    session: Session,
    course: Course,
    user: str,
    expected_version: int,
    ip: str | None = None,
    audit: Sequence[str] = (),
) -> int:
    """Create (``expected_version=0``) or replace a course whole; commit; return its version.

    ``audit`` names further actions recorded with the save in the same transaction (e.g.
    ``course_override``). Raises :class:`StaleRecordError` when the stored version is not
    ``expected_version`` (a course not yet stored has version 0), or
    :class:`PatientNotFoundError`; nothing is stored on any error.
    """
    try:
        row = _row(session, course.id)
        stored = row.version if row is not None else 0
        if expected_version != stored:
            raise StaleRecordError(course.id, expected_version, stored)
        patient_row = session.scalar(
            select(m.Patient.id).where(m.Patient.external_id == course.patient_id)
        )
        if patient_row is None:
            raise PatientNotFoundError(course.patient_id)
        if row is None:
            row = m.CourseRow(course_id=course.id, patient_id=patient_row, version=1)
            session.add(row)
            action = "create"
        else:
            if row.patient_id != patient_row:
                raise CourseNotFoundError(course.id)
            row.version = stored + 1
            action = "update"
        row.treatment, row.protocol_id = course.treatment, course.protocol_id
        row.status, row.start = course.status, course.start
        row.data = course.model_dump(mode="json")
        row.updated_at = datetime.now(UTC)
        record_audit(session, user, action, ENTITY, course.id, ip)
        for extra in audit:
            record_audit(session, user, extra, ENTITY, course.id, ip)
        session.commit()
        return row.version
    except BaseException:
        session.rollback()
        raise


def _course(row: m.CourseRow) -> Course:
    return Course.model_validate(row.data)


def load_course(
    session: Session, course_id: str, user: str = "system", ip: str | None = None
) -> tuple[Course, int]:
    """The stored course and its version; audited as a read. Raises :class:`CourseNotFoundError`."""
    row = _row(session, course_id)
    if row is None:
        raise CourseNotFoundError(course_id)
    course = _course(row)
    record_audit(session, user, "read", ENTITY, course_id, ip)
    session.commit()
    return course, row.version


def list_courses(
    session: Session, patient_id: str, user: str = "system", ip: str | None = None
) -> list[tuple[Course, int]]:
    """The patient's courses, newest start first, with their versions; audited as a list."""
    rows = session.scalars(
        select(m.CourseRow)
        .join(m.Patient, m.Patient.id == m.CourseRow.patient_id)
        .where(m.Patient.external_id == patient_id)
        .order_by(m.CourseRow.start.desc(), m.CourseRow.id.desc())
    ).all()
    out = [(_course(r), r.version) for r in rows]
    record_audit(session, user, "list", ENTITY, patient_id, ip)
    session.commit()
    return out


def all_courses(session: Session, user: str = "system", ip: str | None = None) -> list[Course]:
    """Every course of the clinic (for clinic-level outcomes); audited as a list."""
    rows = session.scalars(select(m.CourseRow).order_by(m.CourseRow.id)).all()
    out = [_course(r) for r in rows]
    record_audit(session, user, "list", ENTITY, None, ip)
    session.commit()
    return out
