"""Storing who a patient is (:class:`~trdnav.identity.PatientIdentity`); every read audited.

Identity lives in its own table (``patient_identities``), beside the history and never inside it:
saving or exporting a history leaves it alone, and ``trdnav export`` writes it only when asked
(``--with-identity``). Patients are addressed by their clinic identifier (``external_id``, the
history's ``patient.id``), as in :mod:`trdnav.storage.repository`.

- :func:`save_identity` stores a validated identity (committed; ``expected_version`` for optimistic
  locking with the row's own version). Saving an identity equal to the stored one changes nothing
  (no new version, no audit event), so a re-import is idempotent. An empty identity clears the row
  (kept, with a new version, so a form opened before the clearing is refused as stale).
- :func:`load_identity` / :func:`load_identity_record` read it, audited as ``read`` of entity
  ``patient_identity``; the patient list records one ``list`` event per patient whose identity it
  shows (:func:`audit_listed`).
- :func:`parse_identity` validates identity data (a form's, or the ``identity`` mapping of an
  exported file) and reports every problem at its field path, all at once.
- :func:`search_clause` is the patient list's search over names, MRN, identifiers and date of
  birth: case- and accent-insensitive, every word of the query must match.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from trdnav.errors import InputError, Problem
from trdnav.history_files import problems_from_validation
from trdnav.identity import Identifier, PatientIdentity
from trdnav.storage import models as m
from trdnav.storage.repository import PatientNotFoundError, StaleRecordError, record_audit

ENTITY = "patient_identity"
EARLIEST_BIRTH_DATE = date(1900, 1, 1)
MAX_NAME = 200
_WORDS = re.compile(r"[\s,;]+")

__all__ = [
    "ENTITY",
    "audit_listed",
    "check_identity",
    "identity_data",
    "is_empty",
    "load_identity",
    "load_identity_record",
    "mrn_holders",
    "parse_identity",
    "save_identity",
    "search_clause",
    "search_key",
    "shown_identity",
]


# --- validation ----------------------------------------------------------------------------------


def is_empty(identity: PatientIdentity) -> bool:
    return not (
        identity.given
        or identity.family
        or identity.birth_date
        or identity.mrn
        or identity.identifiers
    )


def check_identity(identity: PatientIdentity, today: date | None = None) -> list[Problem]:
    """What the model's types cannot say: blank or over-long names, a date of birth after today
    or before 1900, an identifier given twice."""
    problems: list[Problem] = []
    for i, name in enumerate(identity.given):
        if not name.strip():
            problems.append(Problem(f"given[{i}]", "empty_name", "a given name cannot be blank"))
        elif len(name) > MAX_NAME:
            problems.append(
                Problem(f"given[{i}]", "too_long", f"at most {MAX_NAME} characters per name")
            )
    if identity.family is not None and not identity.family.strip():
        problems.append(Problem("family", "empty_name", "the family name cannot be blank"))
    if identity.mrn is not None and not identity.mrn.strip():
        problems.append(Problem("mrn", "empty_identifier", "the MRN cannot be blank"))
    born = identity.birth_date
    if born is not None and today is not None and born > today:
        problems.append(
            Problem(
                "birth_date",
                "date_in_future",
                f"the date of birth is after today ({today.isoformat()})",
            )
        )
    elif born is not None and born < EARLIEST_BIRTH_DATE:
        problems.append(
            Problem(
                "birth_date",
                "implausible_date",
                f"expected a date of birth from {EARLIEST_BIRTH_DATE.isoformat()} on",
            )
        )
    return problems + _identifier_problems(list(enumerate(identity.identifiers)))


def _identifier_problems(identifiers: list[tuple[int, Identifier]]) -> list[Problem]:
    """Blank values and identifiers listed twice, by their index in the list given."""
    problems: list[Problem] = []
    seen: set[tuple[str, str]] = set()
    for i, ident in identifiers:
        if not ident.value.strip():
            problems.append(
                Problem(f"identifiers[{i}].value", "empty_identifier", "the value cannot be blank")
            )
            continue
        key = (search_key(ident.system or ""), search_key(ident.value))
        if key in seen:
            problems.append(
                Problem(
                    f"identifiers[{i}].value",
                    "duplicate_identifier",
                    "this identifier (same system and value) is listed twice",
                )
            )
        seen.add(key)
    return problems


def _identifier_or_none(item: Any) -> Identifier | None:
    try:
        return Identifier.model_validate(item)
    except ValidationError:
        return None


def _at(prefix: str, loc: str) -> str:
    if not prefix:
        return loc
    return f"{prefix}.{loc}" if loc and not loc.startswith("[") else prefix + loc


def parse_identity(
    data: Any, today: date | None = None, prefix: str = "", file: str | None = None
) -> PatientIdentity:
    """Validate identity data; raise :class:`InputError` with every problem, each at its field path
    (after ``prefix``, e.g. ``identity`` for the mapping of an exported file)."""
    if not isinstance(data, dict):
        message = "identity must be a mapping with given, family, birth_date, mrn, identifiers"
        raise InputError([Problem(prefix, "not_a_mapping", message, file)])
    try:
        identity = PatientIdentity.model_validate(data)
    except ValidationError as exc:
        problems = problems_from_validation(exc, file)
        # the fields that are well typed are still checked, so every problem is named at once
        refused = {e["loc"][0] for e in exc.errors() if e["loc"]}
        rest = {k: v for k, v in data.items() if k not in refused}
        try:
            partial = PatientIdentity.model_validate(rest)
        except ValidationError:  # pragma: no cover - only well-typed fields are left
            partial = PatientIdentity()
        problems += check_identity(partial, today)
        listed = data.get("identifiers")
        if "identifiers" in refused and isinstance(listed, list):
            typed = [(i, _identifier_or_none(x)) for i, x in enumerate(listed)]
            problems += _identifier_problems([(i, x) for i, x in typed if x is not None])
        placed = [Problem(_at(prefix, p.loc), p.code, p.message, file) for p in problems]
        raise InputError(placed) from None
    found = check_identity(identity, today)
    if found:
        raise InputError([Problem(_at(prefix, p.loc), p.code, p.message, file) for p in found])
    return identity


def identity_data(identity: PatientIdentity) -> dict[str, Any]:
    """The identity as plain data (what an export writes): empty and unknown parts left out."""
    return identity.model_dump(mode="json", exclude_defaults=True)


# --- search --------------------------------------------------------------------------------------


def search_key(text: str) -> str:
    """Lower case, accents removed, spaces collapsed: ``"  Müller-Lüdenscheidt "`` ->
    ``"muller-ludenscheidt"``."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.casefold().split())


def search_text(identity: PatientIdentity) -> str:
    parts = [
        identity.family or "",
        *identity.given,
        identity.mrn or "",
        *(i.value for i in identity.identifiers),
        identity.birth_date.isoformat() if identity.birth_date else "",
    ]
    return search_key(" ".join(p for p in parts if p))


def search_clause(query: str) -> ColumnElement[bool] | None:
    """Rows of ``patient_identities`` whose names, MRN, identifiers or date of birth contain every
    word of ``query`` (``"smith jo"``, ``"SMITH, John"``, ``"MRN-0042"``); None for no words."""
    words = [w for w in _WORDS.split(search_key(query)) if w]
    if not words:
        return None
    column = m.PatientIdentityRow.search_text
    return and_(*(column.contains(w, autoescape=True) for w in words))


# --- rows ----------------------------------------------------------------------------------------


def to_identity(row: m.PatientIdentityRow) -> PatientIdentity:
    return PatientIdentity(
        given=tuple(row.given or ()),
        family=row.family,
        birth_date=row.birth_date,
        mrn=row.mrn,
        identifiers=tuple(Identifier.model_validate(x) for x in row.identifiers or ()),
    )


def shown_identity(row: m.PatientIdentityRow | None) -> PatientIdentity | None:
    """The identity a row holds, or None when there is no row or it was cleared."""
    if row is None:
        return None
    identity = to_identity(row)
    return None if is_empty(identity) else identity


def _fill(row: m.PatientIdentityRow, identity: PatientIdentity) -> None:
    row.given = list(identity.given)
    row.family = identity.family
    row.birth_date = identity.birth_date
    row.mrn = identity.mrn
    row.identifiers = [i.model_dump(mode="json") for i in identity.identifiers]
    row.search_text = search_text(identity)
    row.updated_at = datetime.now(UTC)


def _row_of(session: Session, external_id: str) -> m.PatientIdentityRow | None:
    return session.scalars(
        select(m.PatientIdentityRow)
        .join(m.Patient, m.Patient.id == m.PatientIdentityRow.patient_id)
        .where(m.Patient.external_id == external_id)
    ).one_or_none()


# --- saving and reading --------------------------------------------------------------------------


def save_identity(
    session: Session,
    external_id: str,
    identity: PatientIdentity,
    *,
    user: str = "system",
    ip: str | None = None,
    expected_version: int | None = None,
) -> int:
    """Store ``identity`` for the patient ``external_id``; commit; return the identity's version.

    Raises :class:`PatientNotFoundError` for an unknown patient and :class:`StaleRecordError`
    (nothing stored) when ``expected_version`` is given and differs from the stored one (0 when
    none is stored). ``identity`` is stored as given: validate typed input with
    :func:`parse_identity` first.
    """
    try:
        patient_row = session.scalar(
            select(m.Patient.id).where(m.Patient.external_id == external_id)
        )
        if patient_row is None:
            raise PatientNotFoundError(external_id)
        row = session.get(m.PatientIdentityRow, patient_row)
        stored = row.version if row is not None else 0
        if expected_version is not None and expected_version != stored:
            raise StaleRecordError(external_id, expected_version, stored)
        if row is not None and to_identity(row) == identity:
            return stored  # unchanged: a re-import stores nothing new
        if row is None:
            if is_empty(identity):
                return 0  # nothing to clear
            row = m.PatientIdentityRow(patient_id=patient_row, version=1)
            session.add(row)
            action = "create"
        else:
            row.version = stored + 1
            action = "update"
        _fill(row, identity)
        version = row.version
        record_audit(session, user, action, ENTITY, external_id, ip)
        session.commit()
    except IntegrityError:  # another session created the row first
        session.rollback()
        raise StaleRecordError(external_id, expected_version or 0, 1) from None
    except BaseException:
        session.rollback()
        raise
    return version


def load_identity_record(
    session: Session, external_id: str, *, user: str = "system", ip: str | None = None
) -> tuple[PatientIdentity | None, int]:
    """The patient's identity (None when none is recorded) and its version; audited as a read."""
    row = _row_of(session, external_id)
    identity, version = shown_identity(row), (row.version if row is not None else 0)
    record_audit(session, user, "read", ENTITY, external_id, ip)
    session.commit()
    return identity, version


def load_identity(
    session: Session, external_id: str, *, user: str = "system", ip: str | None = None
) -> PatientIdentity | None:
    """The patient's identity, or None when none is recorded (or no such patient); audited."""
    return load_identity_record(session, external_id, user=user, ip=ip)[0]


def audit_listed(
    session: Session, user: str, external_ids: list[str], ip: str | None = None
) -> None:
    """One ``list`` event per patient whose identity a list showed (the caller commits)."""
    for external_id in external_ids:
        record_audit(session, user, "list", ENTITY, external_id, ip)


def mrn_holders(
    session: Session, mrn: str, *, besides: str, user: str = "system", ip: str | None = None
) -> list[str]:
    """Other patients recorded with this MRN (case-insensitive); each one found is an audited
    read of that patient's identity (the answer tells whose MRN it is)."""
    found = list(
        session.scalars(
            select(m.Patient.external_id)
            .join(m.PatientIdentityRow, m.PatientIdentityRow.patient_id == m.Patient.id)
            .where(func.lower(m.PatientIdentityRow.mrn) == mrn.strip().lower())
            .where(m.Patient.external_id != besides)
            .order_by(m.Patient.external_id)
        )
    )
    for external_id in found:
        record_audit(session, user, "read", ENTITY, external_id, ip)
    if found:
        session.commit()
    return found
