"""FHIR ``Condition`` -> the history's ``conditions`` (the documented vocabulary), the episode
(onset, diagnosis, severity) and ``patient.pregnant``.

``verificationStatus`` refuted or entered-in-error: not imported (reported). ``clinicalStatus``
active/recurrence/relapse: present; inactive/resolved: kept with that status (the history format
accepts FHIR-style statuses, and the assessment says such a condition is not counted); FHIR
``remission`` becomes the term's own ``remission`` status where it has one, else ``inactive``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from trdnav.core.history import Diagnosis, Severity
from trdnav.interop.fhir import codes
from trdnav.interop.fhir.bundle import Entry
from trdnav.interop.fhir.ledger import Ledger, codings, texts, to_date
from trdnav.knowledge.codes import code_key
from trdnav.knowledge.load import Knowledge

PRESENT = ("active", "recurrence", "relapse")
ABSENT = ("inactive", "resolved", "remission")


@dataclass
class Depressive:
    ref: str
    diagnosis: Diagnosis
    severity: Severity | None
    onset: date | None
    onset_note: str | None
    active: bool
    code: str


@dataclass
class ConditionFacts:
    depressive: list[Depressive]
    pregnant_refs: list[str]


def _status(c: Any) -> str | None:
    for coding in codings(c.clinicalStatus):
        if coding.code:
            return str(coding.code)
    return None


def _verification(c: Any) -> str | None:
    for coding in codings(c.verificationStatus):
        if coding.code:
            return str(coding.code)
    return None


def _onset(c: Any) -> tuple[date | None, str | None]:
    if c.onsetDateTime is not None:
        return to_date(c.onsetDateTime)
    if c.onsetPeriod is not None and c.onsetPeriod.start is not None:
        return to_date(c.onsetPeriod.start)
    if c.recordedDate is not None:
        when, _ = to_date(c.recordedDate)
        return when, "no onset: the date it was recorded was taken as the onset"
    return None, None


def _diagnosis(
    code: str, system: str | None, t: codes.CodeTables
) -> tuple[Diagnosis, Severity | None] | None:
    """The diagnosis (and the severity an ICD-10-CM code gives) of a code; None when no table
    maps it or an ICD-10-CM code is excluded (F32.A, F32.8x, F33.8)."""
    if codes.is_icd10(system):
        found = codes.longest_prefix(code, t.icd_diagnosis)
        if found is None or found[0] is None:
            return None
        return found[0], found[1]
    if codes.is_system(system, codes.SNOMED) and code in t.snomed_diagnosis:
        return t.snomed_diagnosis[code], None
    return None


def _term(code: str, system: str | None, t: codes.CodeTables) -> tuple[str, str | None] | None:
    if codes.is_icd10(system):
        return codes.longest_prefix(code, t.icd_conditions)
    if codes.is_system(system, codes.SNOMED):
        return t.snomed_conditions.get(code)
    return None


def _pregnancy(code: str, system: str | None, t: codes.CodeTables) -> bool:
    if codes.is_icd10(system):
        return code_key("icd10cm", code).startswith(t.icd_pregnancy)
    return codes.is_system(system, codes.SNOMED) and code in t.snomed_pregnancy


def read_conditions(entries: list[Entry], kb: Knowledge, ledger: Ledger) -> ConditionFacts:
    facts = ConditionFacts([], [])
    t = codes.tables(kb)
    found: dict[str, tuple[str | None, list[str], tuple[Any, ...]]] = {}
    for e in entries:
        c = e.resource
        verification = _verification(c)
        if verification in ("refuted", "entered-in-error"):
            ledger.skip(e.ref, verification.replace("-", "_"), f"verificationStatus {verification}")
            continue
        status = _status(c)
        if status is not None and status not in (*PRESENT, *ABSENT):
            ledger.skip(e.ref, "invalid_status", f"unknown clinicalStatus {status!r}")
            continue
        matched = False
        for coding in codings(c.code):
            if not coding.code:
                continue
            dx = _diagnosis(coding.code, coding.system, t)
            if dx is not None:
                onset, note = _onset(c)
                facts.depressive.append(
                    Depressive(
                        e.ref,
                        dx[0],
                        dx[1] or _severity(c, t),
                        onset,
                        note,
                        status in (None, *PRESENT),
                        f"{coding.code}",
                    )
                )
                matched = True
                break
            if _pregnancy(coding.code, coding.system, t):
                if status in (None, *PRESENT):
                    facts.pregnant_refs.append(e.ref)
                    ledger.to(e.ref, "patient.pregnant")
                else:
                    ledger.skip(e.ref, "not_current", f"pregnancy with clinicalStatus {status}")
                matched = True
                break
            term = _term(coding.code, coding.system, t)
            if term is not None and term[0] in kb.conditions:
                name, term_status = term
                hist_status = _history_status(name, term_status, status, kb, e.ref, ledger)
                onset, _ = _onset(c)
                key = (
                    0 if hist_status is None or hist_status in PRESENT else 1,
                    -(onset.toordinal() if onset else 0),
                    e.ref,
                )
                prev = found.get(name)
                if prev is None or key < prev[2]:
                    found[name] = (hist_status, [e.ref, *(prev[1] if prev else [])], key)
                else:
                    prev[1].append(e.ref)
                matched = True
                break
        if not matched:
            words = "; ".join(texts(c.code)) or "no code"
            shown = ", ".join(f"{x.system or '?'}|{x.code}" for x in codings(c.code)) or "none"
            ledger.skip(
                e.ref,
                "unmapped_condition",
                f"{words} ({shown}) is neither a depressive or bipolar diagnosis nor a term of "
                "the conditions vocabulary the assessment reads",
            )
            continue
        if verification in ("unconfirmed", "provisional", "differential"):
            ledger.assume(
                e.ref,
                f"verificationStatus {verification}: counted as present so "
                "that a risk is not hidden",
            )
        if status is None:
            ledger.assume(e.ref, "no clinicalStatus: taken as active")
    for name, (status, refs, key) in found.items():
        data: dict[str, Any] = {"name": name}
        if status is not None:
            data["status"] = status
        ledger.add("conditions", data, refs, (name,))
        if len(refs) > 1:
            ledger.assume(
                refs[0],
                f"{len(refs)} Conditions map to {name}: the present one "
                "(else the most recent) gives its status",
            )
        del key
    return facts


def _severity(c: Any, t: codes.CodeTables) -> Severity | None:
    for coding in codings(c.severity):
        if codes.is_system(coding.system, codes.SNOMED) and coding.code in t.snomed_severity:
            return t.snomed_severity[coding.code]
    return None


def _history_status(
    name: str,
    term_status: str | None,
    fhir_status: str | None,
    kb: Knowledge,
    ref: str,
    ledger: Ledger,
) -> str | None:
    allowed = kb.conditions[name].statuses
    if fhir_status in ("resolved", "inactive"):
        return fhir_status
    if fhir_status == "remission":
        if "remission" in allowed:
            return "remission"
        ledger.assume(
            ref, f"clinicalStatus remission: {name} has no remission status, kept as inactive"
        )
        return "inactive"
    if term_status is not None and term_status in allowed:
        return term_status
    return None if fhir_status in (None, "active") else fhir_status
