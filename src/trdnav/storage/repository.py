"""Saving and loading whole histories; every read and write leaves an audit event.

``save_history`` replaces a patient's full record in one transaction (committed on success, rolled
back on any error) and bumps the patient's ``version``; pass ``expected_version`` for optimistic
locking. Patients are addressed by their clinic identifier (``history.patient.id``).

The version is bumped first, by one conditional ``UPDATE … WHERE version = <the version read>``:
that statement takes the row's lock (PostgreSQL) or the database's write lock (SQLite) before any
child row is touched, and a concurrent save that committed in between makes it match no row, so
two saves from the same version can never both succeed (no lost update); the loser gets
:class:`StaleRecordError` and stores nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import CursorResult, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from trdnav.core import history as h
from trdnav.errors import TrdnavError
from trdnav.storage import models as m

_TREATMENT_FIELDS = (
    "drug",
    "adherence",
    "augments",
    "serum_level",
    "response_lost_on",
    "sessions",
    "electrode_placement",
    "protocol",
    "mg_per_session",
    "route",
    "mg_per_kg",
    "modality",
)


class StaleRecordError(TrdnavError):
    """The stored record changed since it was read (its version differs from the expected one)."""

    def __init__(self, patient_id: str, expected: int, stored: int) -> None:
        self.patient_id, self.expected, self.stored = patient_id, expected, stored
        super().__init__(
            f"patient {patient_id}: stored version {stored}, expected {expected} "
            "(someone else saved it first)"
        )


class PatientNotFoundError(TrdnavError):
    def __init__(self, patient_id: str) -> None:
        self.patient_id = patient_id
        super().__init__(f"no patient {patient_id!r}")


def record_audit(
    session: Session,
    who: str,
    action: str,
    entity: str,
    entity_id: str | None = None,
    ip: str | None = None,
) -> None:
    session.add(
        m.AuditEvent(
            who=who, at=datetime.now(UTC), action=action, entity=entity, entity_id=entity_id, ip=ip
        )
    )


def _get_patient(session: Session, patient_id: str) -> m.Patient | None:
    query = (
        select(m.Patient)
        .where(m.Patient.external_id == patient_id)
        .options(
            selectinload(m.Patient.episode),
            selectinload(m.Patient.conditions),
            selectinload(m.Patient.treatments).selectinload(m.Treatment.dose_steps),
            selectinload(m.Patient.measurements),
            selectinload(m.Patient.labs),
            selectinload(m.Patient.pgx_results),
            selectinload(m.Patient.current_medications),
            selectinload(m.Patient.clinician_alerts),
        )
    )
    return session.scalars(query).one_or_none()


def _treatment_row(i: int, t: Any) -> m.Treatment:
    row = m.Treatment(
        position=i, type=t.type, start=t.start, stop=t.stop, outcome=str(t.outcome), note=t.note
    )
    for name in _TREATMENT_FIELDS:
        if name in type(t).model_fields:
            setattr(row, name, getattr(t, name))
    if isinstance(t, h.Medication):
        row.dose_steps = [
            m.DoseStep(position=j, from_date=d.from_, mg_per_day=d.mg_per_day)
            for j, d in enumerate(t.doses)
        ]
    return row


def _fill(p: m.Patient, history: h.History) -> None:
    pt = history.patient
    p.birth_date, p.sex = pt.birth_date, pt.sex.value
    p.pregnant, p.breastfeeding = pt.pregnant, pt.breastfeeding
    p.assessed_on = history.assessed_on
    p.staging_inputs = (
        history.staging_inputs.model_dump(mode="json") if history.staging_inputs else None
    )
    ep = history.episode
    p.episode = m.Episode(onset=ep.onset, diagnosis=ep.diagnosis.value, severity=ep.severity.value)
    p.conditions = [
        m.Condition(position=i, name=c.name, status=c.status)
        for i, c in enumerate(history.conditions)
    ]
    p.treatments = [_treatment_row(i, t) for i, t in enumerate(history.treatments)]
    p.measurements = [
        m.Measurement(
            position=i,
            instrument=x.instrument,
            date=x.date,
            items=list(x.items) if x.items is not None else None,
            total=x.total,
        )
        for i, x in enumerate(history.measurements)
    ]
    p.labs = [
        m.Lab(position=i, test=x.test, value=x.value, unit=x.unit, date=x.date)
        for i, x in enumerate(history.labs)
    ]
    p.pgx_results = [
        m.PgxResult(position=i, gene=x.gene, phenotype=x.phenotype, date=x.date)
        for i, x in enumerate(history.pgx)
    ]
    p.current_medications = [
        m.CurrentMedication(
            position=i, drug=x.drug, mg_per_day=x.mg_per_day, start=x.start, note=x.note
        )
        for i, x in enumerate(history.current_medications)
    ]
    p.clinician_alerts = [
        m.ClinicianAlert(
            position=i,
            type=x.type,
            date=x.date,
            severity=x.severity,
            note=x.note,
            entered_by=x.entered_by,
        )
        for i, x in enumerate(history.clinician_alerts)
    ]


SAVE_ATTEMPTS = 5  # a save without an expected version retries a lost race this many times


def save_history(
    session: Session,
    history: h.History,
    user: str,
    expected_version: int | None = None,
    ip: str | None = None,
    before_commit: Callable[[m.Patient], None] | None = None,
) -> str:
    """Create or replace the patient's full record; commit; return the patient id.

    Raises :class:`StaleRecordError` (nothing stored) when ``expected_version`` is given and the
    stored version differs (a new patient has version 0), also when another save of the same
    version wins a race. Without ``expected_version`` the record is replaced whatever is stored
    (a lost race is retried). ``before_commit`` runs inside the same transaction (e.g. to refresh
    the patient's summary), so its failure stores nothing either.
    """
    for _attempt in range(SAVE_ATTEMPTS):
        try:
            if _save_once(session, history, user, expected_version, ip, before_commit):
                session.commit()
                return history.patient.id
            session.rollback()
        except BaseException:
            session.rollback()
            raise
    raise StaleRecordError(  # pragma: no cover - five lost races in a row
        history.patient.id, -1, patient_version(session, history.patient.id) or 0
    )


def _claim_version(session: Session, p: m.Patient, stored: int) -> bool:
    """Bump the stored version from ``stored`` (taking the row's write lock); False if it moved."""
    result = session.execute(
        update(m.Patient)
        .where(m.Patient.id == p.id, m.Patient.version == stored)
        .values(version=stored + 1)
        .execution_options(synchronize_session=False)
    )
    if not isinstance(result, CursorResult) or result.rowcount != 1:
        return False
    set_committed_value(p, "version", stored + 1)
    return True


def _save_once(
    session: Session,
    history: h.History,
    user: str,
    expected_version: int | None,
    ip: str | None,
    before_commit: Callable[[m.Patient], None] | None,
) -> bool:
    """One attempt (the caller commits); False when a race without an expected version was lost."""
    patient_id = history.patient.id
    p = _get_patient(session, patient_id)
    stored = p.version if p is not None else 0
    if expected_version is not None and expected_version != stored:
        raise StaleRecordError(patient_id, expected_version, stored)
    if p is None:
        p = m.Patient(external_id=patient_id, version=1)
        _fill(p, history)
        session.add(p)
        action = "create"
        try:
            session.flush()
        except IntegrityError:
            # created by someone else since the read above
            session.rollback()
            now = patient_version(session, patient_id)
            if now is None:
                raise
            if expected_version is not None:
                raise StaleRecordError(patient_id, expected_version, now) from None
            return False
    else:
        if not _claim_version(session, p, stored):
            if expected_version is not None:
                session.rollback()
                raise StaleRecordError(
                    patient_id, expected_version, patient_version(session, patient_id) or 0
                )
            return False
        # children are replaced: delete the old rows before inserting the new ones
        p.episode = None
        p.conditions, p.treatments, p.measurements, p.labs = [], [], [], []
        p.pgx_results, p.current_medications, p.clinician_alerts = [], [], []
        session.flush()
        _fill(p, history)
        action = "update"
    record_audit(session, user, action, "patient", patient_id, ip)
    if before_commit is not None:
        session.flush()
        before_commit(p)
    return True


def lock_record(session: Session, patient_id: str) -> None:
    """Take the patient's write lock until the transaction ends (PostgreSQL: the row's lock;
    SQLite: the database's write lock), so that a read-modify-write in the same transaction
    cannot be overtaken. A patient that does not exist is not an error here."""
    session.execute(
        update(m.Patient)
        .where(m.Patient.external_id == patient_id)
        .values(version=m.Patient.version)
        .execution_options(synchronize_session=False)
    )


def _treatment(t: Any, doses: Sequence[Any]) -> Any:
    common: dict[str, Any] = {
        "type": t.type,
        "start": t.start,
        "stop": t.stop,
        "outcome": t.outcome,
        "note": t.note,
    }
    for name in _TREATMENT_FIELDS:
        value = getattr(t, name)
        if value is not None:
            common[name] = value
    if t.type == "medication":
        common["doses"] = [{"from": d.from_date, "mg_per_day": d.mg_per_day} for d in doses]
    return common


_CHILD_TABLES = {
    "conditions": m.Condition.__table__,
    "treatments": m.Treatment.__table__,
    "measurements": m.Measurement.__table__,
    "labs": m.Lab.__table__,
    "pgx_results": m.PgxResult.__table__,
    "current_medications": m.CurrentMedication.__table__,
    "clinician_alerts": m.ClinicianAlert.__table__,
}


@dataclass(frozen=True)
class _StoredRecord:
    """One patient's rows, read with plain SELECTs (attribute names are the column names)."""

    patient: Any
    episode: Any
    children: dict[str, Sequence[Any]]
    doses: dict[int, list[Any]]


def _read_rows(session: Session, patient_id: str) -> _StoredRecord | None:
    """The patient's rows without building ORM objects (a long record reads several times faster;
    saving still goes through the ORM, :func:`_get_patient`)."""
    patients, episodes = m.Patient.__table__, m.Episode.__table__
    doses, treatments = m.DoseStep.__table__, m.Treatment.__table__
    patient = session.execute(
        select(patients).where(patients.c.external_id == patient_id)
    ).one_or_none()
    if patient is None:
        return None
    episode = session.execute(
        select(episodes).where(episodes.c.patient_id == patient.id)
    ).one_or_none()
    children = {
        name: session.execute(
            select(table).where(table.c.patient_id == patient.id).order_by(table.c.position)
        ).all()
        for name, table in _CHILD_TABLES.items()
    }
    by_treatment: dict[int, list[Any]] = {}
    for d in session.execute(
        select(doses)
        .join(treatments, treatments.c.id == doses.c.treatment_id)
        .where(treatments.c.patient_id == patient.id)
        .order_by(doses.c.treatment_id, doses.c.position)
    ):
        by_treatment.setdefault(d.treatment_id, []).append(d)
    return _StoredRecord(patient, episode, children, by_treatment)


def _to_history(r: _StoredRecord) -> h.History:
    p, ep, c = r.patient, r.episode, r.children
    if ep is None:  # pragma: no cover - save_history always writes an episode
        raise PatientNotFoundError(p.external_id)
    data: dict[str, Any] = {
        "patient": {
            "id": p.external_id,
            "birth_date": p.birth_date,
            "sex": p.sex,
            "pregnant": p.pregnant,
            "breastfeeding": p.breastfeeding,
        },
        "assessed_on": p.assessed_on,
        "episode": {"onset": ep.onset, "diagnosis": ep.diagnosis, "severity": ep.severity},
        "conditions": [{"name": x.name, "status": x.status} for x in c["conditions"]],
        "treatments": [_treatment(t, r.doses.get(t.id, ())) for t in c["treatments"]],
        "measurements": [
            {"instrument": x.instrument, "date": x.date, "items": x.items, "total": x.total}
            for x in c["measurements"]
        ],
        "staging_inputs": p.staging_inputs,
        "clinician_alerts": [
            {
                "type": x.type,
                "date": x.date,
                "severity": x.severity,
                "note": x.note,
                "entered_by": x.entered_by,
            }
            for x in c["clinician_alerts"]
        ],
        "labs": [
            {"test": x.test, "value": x.value, "unit": x.unit, "date": x.date} for x in c["labs"]
        ],
        "pgx": [
            {"gene": x.gene, "phenotype": x.phenotype, "date": x.date} for x in c["pgx_results"]
        ],
        "current_medications": [
            {"drug": x.drug, "mg_per_day": x.mg_per_day, "start": x.start, "note": x.note}
            for x in c["current_medications"]
        ],
    }
    return h.History.model_validate(data)


def load_history(
    session: Session, patient_id: str, user: str = "system", ip: str | None = None
) -> h.History:
    """The stored history, rebuilt exactly as saved; raises :class:`PatientNotFoundError`."""
    return load_record(session, patient_id, user, ip)[0]


def load_record(
    session: Session,
    patient_id: str,
    user: str = "system",
    ip: str | None = None,
    commit: bool = True,
) -> tuple[h.History, int]:
    """The stored history and its version (for optimistic locking); audited as a read.

    ``commit=False`` leaves the read (and its audit event) in the caller's transaction."""
    rows = _read_rows(session, patient_id)
    if rows is None:
        raise PatientNotFoundError(patient_id)
    history = _to_history(rows)
    record_audit(session, user, "read", "patient", patient_id, ip)
    if commit:
        session.commit()
    return history, int(rows.patient.version)


def patient_version(session: Session, patient_id: str) -> int | None:
    return session.scalar(select(m.Patient.version).where(m.Patient.external_id == patient_id))


def list_patients(session: Session, search: str | None = None, user: str = "system") -> list[str]:
    """Patient ids in order, optionally those containing ``search`` (case-insensitive)."""
    query = select(m.Patient.external_id).order_by(m.Patient.external_id)
    if search:
        query = query.where(m.Patient.external_id.ilike(f"%{search}%"))
    ids = list(session.scalars(query))
    record_audit(session, user, "list", "patient", search)
    session.commit()
    return ids
