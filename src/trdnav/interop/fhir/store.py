"""Storing an import in the clinic database (the CLI's ``--database-url`` and the API).

The patient is the one the clinic already records with the import's MRN (the identity of
exactly one other patient holds it), else the history's own id (the MRN, else the FHIR id).

The history is saved whole with :func:`trdnav.storage.records.save` (the record and its list
summary in one transaction) and the identity with
:func:`trdnav.storage.identity.save_identity`. A re-import of the same data changes nothing: an
equal history is not saved again (no new version, no audit event of a change), and
``save_identity`` leaves an equal identity alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from sqlalchemy.orm import Session

from trdnav.errors import InputError, Problem
from trdnav.interop.fhir.report import FhirImport
from trdnav.knowledge.load import Knowledge
from trdnav.storage import records, repository
from trdnav.storage.identity import check_identity, is_empty, mrn_holders, save_identity

Action = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True)
class Stored:
    patient_id: str
    version: int
    action: Action
    identity_version: int
    matched_by_mrn: bool = False


def store_import(
    session: Session,
    result: FhirImport,
    kb: Knowledge,
    today: date,
    user: str,
    ip: str | None = None,
) -> Stored:
    """Create or replace the patient's record and identity; unchanged data stores nothing."""
    problems = check_identity(result.identity, today)
    if problems:
        raise InputError(
            [Problem(f"identity.{p.loc}", p.code, f"Patient: {p.message}") for p in problems]
        )
    history = result.history
    pid = history.patient.id
    matched = False
    mrn = result.identity.mrn
    if mrn:
        holders = mrn_holders(session, mrn, besides=pid, user=user, ip=ip)
        if len(holders) == 1:  # the clinic knows this MRN under its own patient id
            pid, matched = holders[0], True
            patient = history.patient.model_copy(update={"id": pid})
            history = history.model_copy(update={"patient": patient})
    stored_version = repository.patient_version(session, pid)
    action: Action
    if stored_version is None:
        action = "created"
    else:
        current, stored_version = repository.load_record(session, pid, user, ip)
        action = "unchanged" if current == history else "updated"
    if action != "unchanged":
        records.save(session, history, kb, today, user, ip=ip)
    version = repository.patient_version(session, pid) or 0
    identity_version = 0
    if not is_empty(result.identity):
        identity_version = save_identity(session, pid, result.identity, user=user, ip=ip)
    return Stored(pid, version, action, identity_version, matched)
