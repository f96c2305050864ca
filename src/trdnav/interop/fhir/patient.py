"""FHIR ``Patient`` -> the history's ``patient`` and the :class:`PatientIdentity`; and which
resources belong to that patient (``subject`` / ``patient`` references).

The history's patient id is, in order: TRD Navigator's own clinic id (identifier system
``https://trdnav.org/fhir/NamingSystem/patient-id``, written by the export), the medical record
number (identifier of type MR), the FHIR id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from trdnav.errors import InputError, Problem
from trdnav.identity import Identifier, PatientIdentity
from trdnav.interop.fhir import codes
from trdnav.interop.fhir.bundle import Entry
from trdnav.interop.fhir.ledger import Ledger, codings, to_date

NS_PATIENT = f"{codes.TRDNAV}/NamingSystem/patient-id"  # TRD Navigator's own clinic id
_IDENTITY_PATHS = {
    "family": "name.family",
    "given": "name.given",
    "mrn": "identifier.value",
    "identifiers": "identifier.value",
    "value": "identifier.value",  # of an Identifier
}
_SEX = {"female": "female", "male": "male", "other": "other", "unknown": "unknown"}


@dataclass
class PatientFacts:
    patient_id: str
    data: dict[str, Any]
    identity: PatientIdentity
    keys: set[str] = field(default_factory=set)  # references that name this patient
    ref: str | None = None

    def owns(self, resource: Any) -> bool | None:
        """True/False when the resource names a patient, None when it names none."""
        subject = getattr(resource, "subject", None) or getattr(resource, "patient", None)
        reference = getattr(subject, "reference", None) if subject is not None else None
        if not reference:
            return None
        if reference in self.keys:
            return True
        tail = "/".join(reference.rstrip("/").split("/")[-2:])
        return tail in self.keys


def _identity(p: Any) -> tuple[PatientIdentity, str | None]:
    try:
        return _read_identity(p)
    except ValidationError as exc:  # a name or identifier beyond the clinic's limits (200 chars)
        problems = []
        for e in exc.errors():
            path = "Patient." + _IDENTITY_PATHS.get(str(e["loc"][0]), str(e["loc"][0]))
            message = f"{path} cannot be stored: {e['msg']}"
            problems.append(Problem(path, "identity_invalid", message))
        raise InputError(problems) from None


def _read_identity(p: Any) -> tuple[PatientIdentity, str | None]:
    names = list(p.name or [])
    official = next((n for n in names if n.use == "official"), None)
    usual = next((n for n in names if n.use in (None, "usual")), None)
    name = official or usual or (names[0] if names else None)
    given = tuple(name.given or ()) if name is not None else ()
    family = name.family if name is not None else None
    if name is not None and not given and not family and name.text:
        family = name.text
    mrn: str | None = None
    identifiers: list[Identifier] = []
    for ident in p.identifier or []:
        if not ident.value or codes.is_system(ident.system, NS_PATIENT):
            continue
        kinds = [c.code for c in codings(ident.type) if codes.is_system(c.system, codes.V2_0203)]
        kind = kinds[0] if kinds else (ident.type.text if ident.type is not None else None)
        if kind == "MR" and mrn is None:
            mrn = ident.value
        identifiers.append(Identifier(system=ident.system, value=ident.value, type=kind))
    birth, _ = to_date(p.birthDate)
    identity = PatientIdentity(
        given=given, family=family, birth_date=birth, mrn=mrn, identifiers=tuple(identifiers)
    )
    return identity, mrn


def read_patient(entries: list[Entry], ledger: Ledger) -> PatientFacts:
    """The one patient of the input (an input about several patients is refused)."""
    patients = [e for e in entries if e.resource.get_resource_type() == "Patient"]
    if len(patients) > 1:
        refs = ", ".join(e.ref for e in patients[:5])
        raise InputError(
            [
                Problem(
                    "",
                    "several_patients",
                    f"the input holds {len(patients)} patients ({refs}): import one patient "
                    "at a time",
                )
            ]
        )
    if not patients:
        return _without_patient(entries, ledger)
    e = patients[0]
    p = e.resource
    identity, mrn = _identity(p)
    clinic_id = next(
        (i.value for i in p.identifier or [] if codes.is_system(i.system, NS_PATIENT) and i.value),
        None,
    )
    pid = clinic_id or mrn or p.id
    data: dict[str, Any] = {"id": pid, "sex": _SEX.get(p.gender or "unknown", "unknown")}
    if identity.birth_date is not None:
        data["birth_date"] = identity.birth_date.isoformat()
    keys = {f"Patient/{p.id}"} if p.id else set()
    if e.full_url:
        keys.add(e.full_url)
    facts = PatientFacts(pid, data, identity, keys, e.ref)
    ledger.to(e.ref, "patient")
    ledger.to(e.ref, "patient identity")
    if clinic_id is None and mrn is None:
        ledger.assume(e.ref, f"no identifier of type MR: the patient id is the FHIR id {p.id!r}")
    _, partial = to_date(p.birthDate)
    if partial:
        ledger.assume(e.ref, "birth date: " + partial, "patient")
    return facts


def _without_patient(entries: list[Entry], ledger: Ledger) -> PatientFacts:
    refs: set[str] = set()
    for e in entries:
        subject = getattr(e.resource, "subject", None) or getattr(e.resource, "patient", None)
        reference = getattr(subject, "reference", None) if subject is not None else None
        if reference:
            refs.add(reference)
    if len(refs) != 1:
        what = "no patient reference" if not refs else f"{len(refs)} different patients"
        raise InputError(
            [
                Problem(
                    "",
                    "no_patient",
                    f"the input has no Patient resource and {what}: add the Patient, or import "
                    "one patient's resources at a time",
                )
            ]
        )
    reference = refs.pop()
    pid = reference.rstrip("/").split("/")[-1]
    tail = "/".join(reference.rstrip("/").split("/")[-2:])
    facts = PatientFacts(pid, {"id": pid, "sex": "unknown"}, PatientIdentity(), {reference, tail})
    for e in entries[:1]:
        ledger.assume(
            e.ref,
            f"no Patient resource: the patient is {reference!r} (id {pid!r}, sex and birth date "
            "unknown)",
            "patient",
        )
    return facts
