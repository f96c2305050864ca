"""The course store on both databases: whole-course saves, versions, audit, cascade."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from trdnav.core.courses.model import Course, CourseNote
from trdnav.knowledge.load import Knowledge
from trdnav.storage import courses as store
from trdnav.storage import models as m
from trdnav.storage.engine import make_engine, make_sessionmaker
from trdnav.storage.repository import PatientNotFoundError, StaleRecordError

from .conftest import store_examples


@pytest.fixture
def db(db_url: str, kb: Knowledge):  # type: ignore[no-untyped-def]
    store_examples(db_url, kb, "10")
    engine = make_engine(db_url)
    with make_sessionmaker(engine)() as session:
        yield session
    engine.dispose()


def a_course(patient_id: str = "EX10", course_id: str | None = None) -> Course:
    return Course(
        id=course_id or store.new_course_id(),
        patient_id=patient_id,
        protocol_id="ketamine_iv_0_5",
        treatment="ketamine",
        start=date(2024, 6, 3),
        weight_kg=80,
    )


def audit_actions(db, course_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    return list(
        db.scalars(
            select(m.AuditEvent.action)
            .where(m.AuditEvent.entity == "course", m.AuditEvent.entity_id == course_id)
            .order_by(m.AuditEvent.id)
        )
    )


def patient_id_of(db) -> str:  # type: ignore[no-untyped-def]
    return str(db.scalar(select(m.Patient.external_id)))


def test_a_course_is_stored_whole_and_read_back_equal(db) -> None:  # type: ignore[no-untyped-def]
    course = a_course(patient_id_of(db)).model_copy(
        update={
            "rescheduled": {3: date(2024, 6, 12)},
            "notes": (CourseNote(kind="integration", on=date(2024, 6, 4), by="c", text="ok"),),
        }
    )
    assert store.save_course(db, course, "clinician", expected_version=0) == 1
    loaded, version = store.load_course(db, course.id, "clinician")
    assert loaded == course and version == 1
    assert audit_actions(db, course.id) == ["create", "read"]


def test_a_save_at_an_old_version_is_refused_and_stores_nothing(db) -> None:  # type: ignore[no-untyped-def]
    course = a_course(patient_id_of(db))
    store.save_course(db, course, "clinician", expected_version=0)
    changed = course.model_copy(update={"status": "active"})
    assert store.save_course(db, changed, "clinician", expected_version=1, audit=["x"]) == 2
    with pytest.raises(StaleRecordError):
        store.save_course(db, course.model_copy(update={"status": "stopped"}), "c", 1)
    with pytest.raises(StaleRecordError):  # creating it again
        store.save_course(db, course, "clinician", expected_version=0)
    loaded, version = store.load_course(db, course.id)
    assert loaded.status == "active" and version == 2
    assert audit_actions(db, course.id) == ["create", "update", "x", "read"]


def test_a_course_of_an_unknown_patient_is_refused(db) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PatientNotFoundError):
        store.save_course(db, a_course("NOBODY"), "clinician", expected_version=0)
    assert db.scalar(select(func.count()).select_from(m.CourseRow)) == 0


def test_an_unknown_course_is_not_found(db) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(store.CourseNotFoundError):
        store.load_course(db, "C-NONE")


def test_a_patients_courses_are_listed_newest_first(db) -> None:  # type: ignore[no-untyped-def]
    pid = patient_id_of(db)
    first = a_course(pid)
    later = a_course(pid).model_copy(update={"start": date(2024, 9, 1)})
    store.save_course(db, first, "c", 0)
    store.save_course(db, later, "c", 0)
    listed = store.list_courses(db, pid, "reader")
    assert [c.id for c, _v in listed] == [later.id, first.id]
    assert store.list_courses(db, "NOBODY") == []
    assert len(store.all_courses(db)) == 2


def test_deleting_the_patient_deletes_the_courses(db) -> None:  # type: ignore[no-untyped-def]
    store.save_course(db, a_course(patient_id_of(db)), "c", 0)
    db.delete(db.scalars(select(m.Patient)).one())
    db.commit()
    assert db.scalar(select(func.count()).select_from(m.CourseRow)) == 0


def test_course_ids_are_fresh() -> None:
    ids = {store.new_course_id() for _ in range(200)}
    assert len(ids) == 200 and all(i.startswith("C-") for i in ids)


def test_the_clinic_calendar_is_read_from_its_settings_and_bad_values_are_named() -> None:
    from datetime import date

    import pytest

    from trdnav.web.course_reports import parse_calendar

    cal = parse_calendar("mon, wed,fri", "2024-12-25, 2025-01-01")
    assert cal.open_weekdays == frozenset({0, 2, 4})
    assert cal.closed_dates == frozenset({date(2024, 12, 25), date(2025, 1, 1)})
    with pytest.raises(ValueError, match="TRDNAV_CLINIC_OPEN_DAYS"):
        parse_calendar("monday,funday", "")
    with pytest.raises(ValueError, match="TRDNAV_CLINIC_CLOSED_DATES"):
        parse_calendar("mon", "25/12/2024")
