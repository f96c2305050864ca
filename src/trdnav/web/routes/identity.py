"""The identity form: a patient's name, date of birth, MRN and other identifiers, typed or edited.

Like the record forms (:mod:`trdnav.web.routes.records`): admin and clinician roles, the session's
CSRF token, the version the form was opened at (the identity's own version: a concurrent save is
a 409 page and nothing is stored), problems beside their fields (422) with the values kept, 303 to
the patient page on success. Opening the form is an audited read of the identity.

Field names are the identity's own paths: ``given`` (the given names, in order, separated by
spaces), ``family``, ``birth_date``, ``mrn``, ``identifiers[0].type`` / ``.system`` / ``.value``.
An MRN already recorded for another patient is refused (it names that patient). Clearing every
field clears the identity.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from trdnav.errors import InputError
from trdnav.identity import PatientIdentity
from trdnav.storage import identity as identities
from trdnav.storage import models as m
from trdnav.storage import repository
from trdnav.storage.repository import PatientNotFoundError, StaleRecordError
from trdnav.web import forms
from trdnav.web.deps import CurrentUser, SessionDep, TodayDep, Writer, client_ip
from trdnav.web.pages import render
from trdnav.web.routes.records import Submitted, patient_url, version_of

router = APIRouter(include_in_schema=False)

MAX_IDENTIFIER_ROWS = 20
BLANK_ROWS = 2
IDENTIFIER_TYPES = (
    ("MR", "medical record number"),
    ("PI", "patient internal identifier"),
    ("NI", "national identifier"),
    ("NH", "national health plan number"),
    ("SS", "social security number"),
    ("PPN", "passport number"),
    ("DL", "driver's licence number"),
)
LABELS = {
    "given": "Given names",
    "family": "Family name",
    "birth_date": "Date of birth",
    "mrn": "MRN",
}
_ROW = re.compile(r"^identifiers\[(\d+)\]\.(type|system|value)$")
_PART = ("type", "system", "value")


def label_of(name: str) -> str:
    row = _ROW.match(name)
    if row is not None:
        return f"Identifier {int(row.group(1)) + 1}: {row.group(2)}"
    return LABELS.get(name, name)


class IdentityEntry:
    """The form's fields as identity data, what the form itself refused, and where each entered
    identifier row went (empty rows are skipped, so data index -> form row)."""

    def __init__(self, values: forms.Values) -> None:
        self.errors: dict[str, str] = {}
        self.top: list[str] = []
        self.rows: list[int] = []
        self.data: dict[str, Any] = {}
        given = values.get("given", "").split()
        if given:
            self.data["given"] = given
        for name in ("family", "mrn"):
            self._text(values, name)
        born, problem = forms.convert(forms.Kind.DATE, values.get("birth_date", ""))
        if problem:
            self.errors["birth_date"] = problem
        elif born is not None:
            self.data["birth_date"] = born.isoformat()
        found: list[dict[str, str]] = []
        for n in sorted(_row_numbers(values)):
            row = {part: values.get(f"identifiers[{n}].{part}", "") for part in _PART}
            if not any(row.values()):
                continue
            self.rows.append(n)
            if not row["value"]:
                self.errors[f"identifiers[{n}].value"] = "enter the identifier's value"
            found.append({k: v for k, v in row.items() if v})
        if found:
            self.data["identifiers"] = found

    def _text(self, values: forms.Values, name: str) -> None:
        text, problem = forms.convert(forms.Kind.TEXT, values.get(name, ""))
        if problem:
            self.errors[name] = problem
        elif text is not None:
            self.data[name] = text

    def field_for(self, loc: str) -> str | None:
        if loc.startswith("given"):
            return "given"
        if loc in LABELS:
            return loc
        row = re.match(r"^identifiers\[(\d+)\](?:\.(\w+))?", loc)
        if row is not None and int(row.group(1)) < len(self.rows):
            part = row.group(2) if row.group(2) in _PART else "value"
            return f"identifiers[{self.rows[int(row.group(1))]}].{part}"
        return None

    def place(self, exc: InputError) -> None:
        for p in exc.problems:
            name = self.field_for(p.loc)
            if name is None:
                self.top.append(p.render())
            elif name not in self.errors:
                self.errors[name] = p.message


def _row_numbers(values: forms.Values) -> set[int]:
    numbers = set()
    for key in values:
        row = _ROW.match(key)
        if row is not None and int(row.group(1)) < MAX_IDENTIFIER_ROWS:
            numbers.add(int(row.group(1)))
    return numbers


def identity_values(identity: PatientIdentity | None) -> dict[str, str]:
    """A stored identity as the form's field values."""
    if identity is None:
        return {}
    values = {
        "given": " ".join(identity.given),
        "family": identity.family or "",
        "birth_date": identity.birth_date.isoformat() if identity.birth_date else "",
        "mrn": identity.mrn or "",
    }
    for n, ident in enumerate(identity.identifiers):
        values[f"identifiers[{n}].type"] = ident.type or ""
        values[f"identifiers[{n}].system"] = ident.system or ""
        values[f"identifiers[{n}].value"] = ident.value
    return {k: v for k, v in values.items() if v}


def _form(
    request: Request,
    today: date,
    patient_id: str,
    version: int,
    values: forms.Values,
    entry: IdentityEntry | None = None,
    status: int = 200,
    history_birth_date: date | None = None,
) -> Response:
    rows = sorted(_row_numbers(values))
    shown = [*rows, *range(max(rows, default=-1) + 1, max(rows, default=-1) + 1 + BLANK_ROWS)]
    context = {
        "patient_id": patient_id,
        "base": patient_url(patient_id),
        "version": version,
        "values": values,
        "errors": entry.errors if entry else {},
        "top": entry.top if entry else [],
        "stale": status == 409,
        "adds": False,
        "label_of": label_of,
        "title": "Patient identity",
        "subtitle": "Name, date of birth and identifiers: shown on the list and the patient page, "
        "kept out of history-file exports unless asked for.",
        "rows": [n for n in shown if n < MAX_IDENTIFIER_ROWS],
        "identifier_types": IDENTIFIER_TYPES,
        "history_birth_date": history_birth_date,
        "action": patient_url(patient_id) + "/identity",
    }
    return render(request, "patients/identity_form.html", context, status, today=today)


def _history_birth_date(db: Session, patient_id: str) -> date | None:
    """The history's own date of birth (the one age-based rules read), to point out a mismatch."""
    return db.scalar(select(m.Patient.birth_date).where(m.Patient.external_id == patient_id))


def _opened(
    request: Request, db: Session, patient_id: str, user: CurrentUser
) -> tuple[PatientIdentity | None, int]:
    if repository.patient_version(db, patient_id) is None:
        raise PatientNotFoundError(patient_id)
    return identities.load_identity_record(db, patient_id, user=user.who, ip=client_ip(request))


@router.get("/patients/{patient_id}/identity")
def identity_form(
    request: Request, patient_id: str, db: SessionDep, today: TodayDep, user: Writer
) -> Response:
    identity, version = _opened(request, db, patient_id, user)
    values = identity_values(identity)
    born = _history_birth_date(db, patient_id)
    return _form(request, today, patient_id, version, values, history_birth_date=born)


@router.post("/patients/{patient_id}/identity")
def save_identity_form(
    request: Request,
    patient_id: str,
    db: SessionDep,
    today: TodayDep,
    user: Writer,
    values: Submitted,
) -> Response:
    if repository.patient_version(db, patient_id) is None:
        raise PatientNotFoundError(patient_id)
    version = version_of(values)
    entry = IdentityEntry(values)
    ip = client_ip(request)
    identity: PatientIdentity | None = None
    try:
        identity = identities.parse_identity(entry.data, today)
    except InputError as exc:
        entry.place(exc)
    mrn = entry.data.get("mrn")
    if mrn and "mrn" not in entry.errors:
        holders = identities.mrn_holders(db, mrn, besides=patient_id, user=user.who, ip=ip)
        if holders:
            entry.errors["mrn"] = f"this MRN is already recorded for patient {holders[0]}"
    born = _history_birth_date(db, patient_id)
    if version is None:
        return _form(request, today, patient_id, 0, values, entry, 409, born)
    if entry.errors or entry.top or identity is None:
        return _form(request, today, patient_id, version, values, entry, 422, born)
    try:
        identities.save_identity(
            db, patient_id, identity, user=user.who, ip=ip, expected_version=version
        )
    except StaleRecordError:
        return _form(request, today, patient_id, version, values, entry, 409, born)
    return RedirectResponse(patient_url(patient_id), status_code=303)
