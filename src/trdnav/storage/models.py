"""SQLAlchemy 2 typed models of the store. Each child row keeps its ``position`` in the history.

The history's pydantic models stay the one definition of a treatment or a measurement; these tables
map them (see :mod:`trdnav.storage.repository`). ``audit_events`` is append-only: the ORM refuses
updates and deletes (a ``before_flush`` listener) and PostgreSQL refuses them with a trigger.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    event,
)
from sqlalchemy import Enum as SAEnum
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from trdnav.errors import TrdnavError

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ROLES = ("admin", "clinician", "read_only")
SEXES = ("female", "male", "other", "unknown")
OUTCOMES = (
    "no_response",
    "partial_response",
    "response",
    "remission",
    "response_lost",
    "intolerance",
    "unknown",
)
TREATMENT_TYPES = ("medication", "ect", "rtms", "esketamine", "ketamine", "psychotherapy")


def _enum(name: str, values: tuple[str, ...]) -> SAEnum:
    return SAEnum(*values, name=name, native_enum=False, create_constraint=True, length=32)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _child(name: str) -> Any:
    return relationship(
        name, cascade="all, delete-orphan", order_by=f"{name}.position", passive_deletes=True
    )


def _patient_fk() -> Mapped[int]:
    return mapped_column(ForeignKey("patients.id", ondelete="CASCADE"), index=True)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(120), unique=True)
    role: Mapped[str] = mapped_column(_enum("role", ROLES))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Patient(Base):
    __tablename__ = "patients"
    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(120), unique=True)
    birth_date: Mapped[date | None] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(_enum("sex", SEXES))
    pregnant: Mapped[bool] = mapped_column(Boolean)
    breastfeeding: Mapped[bool] = mapped_column(Boolean)
    assessed_on: Mapped[date | None] = mapped_column(Date)
    staging_inputs: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, default=1)

    episode: Mapped[Episode | None] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, uselist=False
    )
    conditions: Mapped[list[Condition]] = _child("Condition")
    treatments: Mapped[list[Treatment]] = _child("Treatment")
    measurements: Mapped[list[Measurement]] = _child("Measurement")
    labs: Mapped[list[Lab]] = _child("Lab")
    pgx_results: Mapped[list[PgxResult]] = _child("PgxResult")
    current_medications: Mapped[list[CurrentMedication]] = _child("CurrentMedication")
    clinician_alerts: Mapped[list[ClinicianAlert]] = _child("ClinicianAlert")


class Episode(Base):
    __tablename__ = "episodes"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), unique=True
    )
    onset: Mapped[date] = mapped_column(Date)
    diagnosis: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(32))


class Condition(Base):
    __tablename__ = "conditions"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = _patient_fk()
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(120))
    status: Mapped[str | None] = mapped_column(String(120))


class Treatment(Base):
    __tablename__ = "treatments"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = _patient_fk()
    position: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(_enum("treatment_type", TREATMENT_TYPES))
    start: Mapped[date] = mapped_column(Date)
    stop: Mapped[date | None] = mapped_column(Date)
    outcome: Mapped[str] = mapped_column(_enum("outcome", OUTCOMES))
    note: Mapped[str | None] = mapped_column(Text)
    drug: Mapped[str | None] = mapped_column(String(200))
    adherence: Mapped[float | None] = mapped_column(Float)
    augments: Mapped[str | None] = mapped_column(String(200))
    serum_level: Mapped[float | None] = mapped_column(Float)
    response_lost_on: Mapped[date | None] = mapped_column(Date)
    sessions: Mapped[int | None] = mapped_column(Integer)
    electrode_placement: Mapped[str | None] = mapped_column(String(32))
    protocol: Mapped[str | None] = mapped_column(String(32))
    mg_per_session: Mapped[float | None] = mapped_column(Float)
    route: Mapped[str | None] = mapped_column(String(32))
    mg_per_kg: Mapped[float | None] = mapped_column(Float)
    modality: Mapped[str | None] = mapped_column(String(32))
    dose_steps: Mapped[list[DoseStep]] = relationship(
        cascade="all, delete-orphan", order_by="DoseStep.position", passive_deletes=True
    )


class DoseStep(Base):
    __tablename__ = "dose_steps"
    id: Mapped[int] = mapped_column(primary_key=True)
    treatment_id: Mapped[int] = mapped_column(
        ForeignKey("treatments.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    from_date: Mapped[date] = mapped_column(Date)
    mg_per_day: Mapped[float] = mapped_column(Float)


class Measurement(Base):
    __tablename__ = "measurements"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = _patient_fk()
    position: Mapped[int] = mapped_column(Integer)
    instrument: Mapped[str] = mapped_column(String(64))
    date: Mapped[date] = mapped_column(Date)
    items: Mapped[list[int | None] | None] = mapped_column(JSON)
    total: Mapped[float | None] = mapped_column(Float)


class Lab(Base):
    __tablename__ = "labs"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = _patient_fk()
    position: Mapped[int] = mapped_column(Integer)
    test: Mapped[str] = mapped_column(String(120))
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(32))
    date: Mapped[date] = mapped_column(Date)


class PgxResult(Base):
    __tablename__ = "pgx_results"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = _patient_fk()
    position: Mapped[int] = mapped_column(Integer)
    gene: Mapped[str] = mapped_column(String(32))
    phenotype: Mapped[str] = mapped_column(String(64))
    date: Mapped[date | None] = mapped_column(Date)


class CurrentMedication(Base):
    __tablename__ = "current_medications"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = _patient_fk()
    position: Mapped[int] = mapped_column(Integer)
    drug: Mapped[str] = mapped_column(String(200))
    mg_per_day: Mapped[float | None] = mapped_column(Float)
    start: Mapped[date | None] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(Text)


class ClinicianAlert(Base):
    __tablename__ = "clinician_alerts"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = _patient_fk()
    position: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(32))
    date: Mapped[date] = mapped_column(Date)
    severity: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    entered_by: Mapped[str | None] = mapped_column(String(120))


class AlertAcknowledgement(Base):
    __tablename__ = "alert_acknowledgements"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = _patient_fk()
    alert_key: Mapped[str] = mapped_column(String(200))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    action: Mapped[str] = mapped_column(String(64))


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = _patient_fk()
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    text: Mapped[str] = mapped_column(Text)


class Plan(Base):
    __tablename__ = "plans"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = _patient_fk()
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    kb_version: Mapped[str] = mapped_column(String(32))
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)


class AuditEvent(Base):
    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    who: Mapped[str] = mapped_column(String(120))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    action: Mapped[str] = mapped_column(String(32))
    entity: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str | None] = mapped_column(String(120), index=True)
    ip: Mapped[str | None] = mapped_column(String(64))


class PatientSummary(Base):
    """What the patient list shows, recomputed by the core on every save (never edited by hand).

    ``next_due`` is the earliest date a measure falls due, so "overdue" is read against today at
    query time; ``alert_keys`` are the keys of every alert of the assessment (open = not
    acknowledged).
    """

    __tablename__ = "patient_summaries"
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True
    )
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    as_of: Mapped[date] = mapped_column(Date)
    kb_version: Mapped[str] = mapped_column(String(32))
    trd_status: Mapped[str] = mapped_column(String(32))
    failed_trials: Mapped[int] = mapped_column(Integer)
    stage_label: Mapped[str | None] = mapped_column(String(64))
    last_phq9: Mapped[int | None] = mapped_column(Integer)
    last_phq9_date: Mapped[date | None] = mapped_column(Date)
    phq9_trend: Mapped[list[int] | None] = mapped_column(JSON)
    suicide_risk: Mapped[bool] = mapped_column(Boolean)
    alert_keys: Mapped[list[str]] = mapped_column(JSON)
    next_due: Mapped[date | None] = mapped_column(Date)
    due_items: Mapped[list[dict[str, str]]] = mapped_column(JSON)


class SelfReportLink(Base):
    """A single-use, expiring questionnaire link; the token carries only ``id`` (signed)."""

    __tablename__ = "selfreport_links"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    patient_id: Mapped[int] = _patient_fk()
    instrument: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LoginAttempt(Base):
    """Failed sign-ins, for throttling by user name and by address."""

    __tablename__ = "login_attempts"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(120), index=True)
    ip: Mapped[str | None] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ApiToken(Base):
    """A bearer token for the JSON API; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class AppendOnlyError(TrdnavError):
    """An audit event was about to be updated or deleted."""


@event.listens_for(Session, "before_flush")
def _refuse_audit_changes(session: Session, _context: Any, _instances: Any) -> None:
    for obj in (*session.dirty, *session.deleted):
        if isinstance(obj, AuditEvent) and (obj in session.deleted or session.is_modified(obj)):
            raise AppendOnlyError("audit events are append-only")


class PatientIdentityRow(Base):
    """Who the patient is (:class:`~trdnav.identity.PatientIdentity`), one row per patient, kept
    apart from the history so that a history export leaves it out; read and written only through
    :mod:`trdnav.storage.identity` (every read audited).

    ``search_text`` is the lower-cased, accent-free text the patient list searches (names, MRN,
    identifier values, date of birth); ``version`` is this row's own optimistic-locking version.
    """

    __tablename__ = "patient_identities"
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True
    )
    given: Mapped[list[str]] = mapped_column(JSON)
    family: Mapped[str | None] = mapped_column(String(200))
    birth_date: Mapped[date | None] = mapped_column(Date)
    mrn: Mapped[str | None] = mapped_column(String(200), index=True)
    identifiers: Mapped[list[dict[str, str | None]]] = mapped_column(JSON)
    search_text: Mapped[str] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class CourseRow(Base):
    """One interventional course, the :class:`~trdnav.core.courses.model.Course` saved whole as
    JSON in ``data``; the other columns are copies for listing and filtering."""

    __tablename__ = "courses"
    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[str] = mapped_column(String(64), unique=True)
    patient_id: Mapped[int] = _patient_fk()
    treatment: Mapped[str] = mapped_column(String(32))
    protocol_id: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(32))
    start: Mapped[date] = mapped_column(Date)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class UserSession(Base):
    """A browser session, kept on the server so that it can be revoked.

    The cookie holds a random token; only its SHA-256 is stored (``token_sha256``), so a copy of
    this table signs no one in. ``password_sha256`` is the SHA-256 of the user's password hash
    when the session began: a password changed anywhere (the admin page, ``trdnav user create``)
    ends every session begun before.
    """

    __tablename__ = "user_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    password_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    user_agent: Mapped[str | None] = mapped_column(String(200))
    ip: Mapped[str | None] = mapped_column(String(64))


class PendingSignin(Base):
    """A sign-in whose password was right, waiting for its second factor (a few minutes).

    Its token (cookie ``trdnav_pending``, path ``/signin``) is stored as a SHA-256 like a
    session's; it is not a session: it opens no page but the code form.
    """

    __tablename__ = "pending_signins"
    id: Mapped[int] = mapped_column(primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))
    next_path: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class UserTotp(Base):
    """A user's TOTP secret (RFC 6238); active once ``confirmed_at`` is set by a first code.

    ``last_step`` is the time step of the last code accepted: a code is never accepted twice.
    """

    __tablename__ = "user_totp"
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    secret: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_step: Mapped[int | None] = mapped_column(Integer)


class RecoveryCode(Base):
    """A single-use recovery code of the second factor; only its SHA-256 is stored."""

    __tablename__ = "recovery_codes"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_sha256: Mapped[str] = mapped_column(String(64))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
