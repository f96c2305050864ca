from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session

from trdnav.core.history import History, Medication
from trdnav.history_files import load_history as load_file
from trdnav.knowledge.load import Knowledge
from trdnav.storage import models as m
from trdnav.storage.engine import make_sessionmaker
from trdnav.storage.repository import (
    PatientNotFoundError,
    StaleRecordError,
    list_patients,
    load_history,
    patient_version,
    save_history,
)

from .conftest import EXAMPLES

TODAY = date(2024, 6, 1)


def _example(kb: Knowledge, name: str) -> History:
    return load_file(next(p for p in EXAMPLES if p.name.startswith(name)), kb, TODAY)


def test_every_example_round_trips_through_the_database(session: Session, kb: Knowledge) -> None:
    assert len(EXAMPLES) >= 20
    originals = {}
    for path in EXAMPLES:
        history = load_file(path, kb, TODAY)
        originals[save_history(session, history, "alice")] = history
    session.expunge_all()
    for pid, history in originals.items():
        assert load_history(session, pid).model_dump() == history.model_dump(), pid


def test_saving_again_replaces_the_record_and_bumps_the_version(
    session: Session, kb: Knowledge
) -> None:
    history = _example(kb, "10-")
    pid = save_history(session, history, "alice")
    assert patient_version(session, pid) == 1
    shorter = history.model_copy(update={"treatments": history.treatments[:1], "labs": ()})
    save_history(session, shorter, "alice", expected_version=1)
    assert patient_version(session, pid) == 2
    assert load_history(session, pid).model_dump() == shorter.model_dump()
    assert session.scalar(select(func.count()).select_from(m.Treatment)) == 1


def test_a_stale_version_is_refused_and_the_record_is_unchanged(
    session: Session, kb: Knowledge
) -> None:
    history = _example(kb, "10-")
    pid = save_history(session, history, "alice")
    save_history(session, history, "bob", expected_version=1)
    changed = history.model_copy(update={"conditions": ()})
    with pytest.raises(StaleRecordError) as caught:
        save_history(session, changed, "alice", expected_version=1)
    assert (caught.value.expected, caught.value.stored) == (1, 2)
    assert patient_version(session, pid) == 2
    assert load_history(session, pid).model_dump() == history.model_dump()


def test_a_failing_save_leaves_nothing_half_written(engine: Engine, kb: Knowledge) -> None:
    history = _example(kb, "10-")
    bad = history.treatments[0]
    assert isinstance(bad, Medication)
    # an outcome outside the allowed values gets past pydantic (model_copy does not validate)
    broken = history.model_copy(
        update={"treatments": (*history.treatments, bad.model_copy(update={"outcome": "cured"}))}
    )
    with make_sessionmaker(engine)() as session:
        with pytest.raises((IntegrityError, StatementError, LookupError)):
            save_history(session, broken, "alice")
        assert session.scalar(select(func.count()).select_from(m.Patient)) == 0
        assert session.scalar(select(func.count()).select_from(m.Treatment)) == 0
        assert session.scalar(select(func.count()).select_from(m.DoseStep)) == 0
        assert session.scalar(select(func.count()).select_from(m.AuditEvent)) == 0
        # and a failing replacement keeps the previous record whole
        pid = save_history(session, history, "alice")
        with pytest.raises((IntegrityError, StatementError, LookupError)):
            save_history(session, broken, "alice")
        session.expunge_all()
        assert load_history(session, pid).model_dump() == history.model_dump()
        assert patient_version(session, pid) == 1


def test_patients_are_listed_and_searched(session: Session, kb: Knowledge) -> None:
    for name in ("01-", "02-", "10-"):
        save_history(session, _example(kb, name), "alice")
    ids = list_patients(session)
    assert ids == sorted(ids) and len(ids) == 3
    assert list_patients(session, search=ids[0].lower()) == [ids[0]]
    with pytest.raises(PatientNotFoundError):
        load_history(session, "nobody")
