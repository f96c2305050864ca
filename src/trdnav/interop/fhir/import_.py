"""FHIR R4 -> a treatment history, a patient identity and a report of every resource.

:func:`import_fhir` is a pure function of decoded JSON (a Bundle of type collection, transaction,
batch or searchset; one resource; or a list of resources from NDJSON), the knowledge base and
today's date. The history it returns went through :func:`trdnav.history_files.parse_history`, so
every check of a history file ran; an item the checks refuse (a dose step after the stop, a lab
value beyond plausibility) is dropped and its resources are reported as not mapped, so the
result is reduced, never refused, unless the patient or the episode itself is invalid.

The same input gives the same history: resources are keyed by ``ResourceType/id`` (a repeated id
is read once), and every list is ordered by date, then by id, never by input order. The history
has no ``assessed_on`` (it is a live record, assessed as of the day it is read).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from trdnav.core.date_range import add_days
from trdnav.core.history import Diagnosis, History, Severity
from trdnav.errors import InputError, Problem
from trdnav.history_files import parse_history
from trdnav.interop.fhir.bundle import read_entries
from trdnav.interop.fhir.conditions import ConditionFacts, Depressive, read_conditions
from trdnav.interop.fhir.ledger import SECTIONS, Item, Ledger
from trdnav.interop.fhir.medications import read_events
from trdnav.interop.fhir.observations import LithiumLevel, read_observations
from trdnav.interop.fhir.patient import read_patient
from trdnav.interop.fhir.procedures import read_procedures
from trdnav.interop.fhir.record import RecordReader, is_assessment, item_path
from trdnav.interop.fhir.report import FhirImport
from trdnav.interop.fhir.trials import current_medication_items, infer_augments, trial_items
from trdnav.knowledge.load import Knowledge

_SUBJECT_TYPES = frozenset(
    {
        "Condition",
        "MedicationRequest",
        "MedicationStatement",
        "MedicationDispense",
        "Procedure",
        "Observation",
        "QuestionnaireResponse",
    }
)
_BAND_SEVERITY = (
    ("moderately severe", Severity.SEVERE),
    ("severe", Severity.SEVERE),
    ("moderate", Severity.MODERATE),
    ("mild", Severity.MILD),
    ("minimal", Severity.MILD),
)


def import_fhir(data: Any, kb: Knowledge, today: date) -> FhirImport:
    """Map decoded FHIR JSON to a validated history; raises ``InputError`` for unusable input."""
    ledger = Ledger()
    entries = read_entries(data, ledger)
    patient = read_patient(entries, ledger)
    mine = []
    for e in entries:
        kind = e.resource.get_resource_type()
        if kind == "Patient":
            continue
        if kind in _SUBJECT_TYPES:
            owns = patient.owns(e.resource)
            if owns is False:
                ledger.skip(
                    e.ref,
                    "other_patient",
                    "refers to another patient than the "
                    f"input's ({patient.ref or patient.patient_id})",
                )
                continue
            if owns is None:
                ledger.assume(e.ref, "no subject: taken as the input's patient")
        mine.append(e)
    record = RecordReader(patient.patient_id, ledger, kb)
    ehr = []
    for e in mine:
        if is_assessment(e.resource):
            ledger.skip(
                e.ref,
                "derived",
                "an assessment result (TRD status, stage, failed "
                "trials): recomputed from the history, not imported",
            )
            continue
        path = item_path(e.resource, patient.patient_id)
        if path is not None:
            try:
                if record.read(e, path):
                    continue
            except (AttributeError, TypeError, ValueError, IndexError) as exc:
                ledger.skip(
                    e.ref,
                    "unreadable",
                    "marked as written by TRD Navigator's export, "
                    f"but an element it needs is missing or malformed ({exc})",
                )
                continue
        if e.resource.get_resource_type() == "RiskAssessment":
            ledger.skip(
                e.ref,
                "unsupported_type",
                "a RiskAssessment not written by TRD "
                "Navigator: suicide-risk alerts are entered by a clinician in the app",
            )
            continue
        ehr.append(e)
    record.finish()
    mine = ehr
    conditions = [e for e in mine if e.resource.get_resource_type() == "Condition"]
    facts = read_conditions(conditions, kb, ledger)
    events = read_events(mine, kb, ledger, today)
    trial_items(events, kb, ledger, today)
    current_medication_items(events, ledger, today)
    read_procedures(mine, kb, ledger, today)
    lithium = read_observations(mine, kb, ledger)
    _lithium_levels(lithium, ledger, today)
    infer_augments(ledger, kb)
    episode = record.episode if _complete(record.episode) else _episode(facts, ledger, kb, today)
    assert episode is not None  # noqa: S101 (for mypy: _complete checked it)
    patient_data = {**patient.data, **record.patient}
    if facts.pregnant_refs:
        patient_data["pregnant"] = True
    extra = {"staging_inputs": record.staging} if record.staging else {}
    history = _validated(patient_data, episode, extra, ledger, kb, today)
    return FhirImport(history=history, identity=patient.identity, report=ledger.report())


def _complete(episode: dict[str, Any] | None) -> bool:
    return episode is not None and all(episode.get(k) for k in ("onset", "diagnosis", "severity"))


def _lithium_levels(levels: list[LithiumLevel], ledger: Ledger, today: date) -> None:
    trials = [
        i
        for i in ledger.items
        if i.section == "treatments"
        and str(i.data.get("drug") or "").lower() == "lithium"
        and isinstance(i.data.get("start"), str)
    ]
    for level in sorted(levels, key=lambda x: (x.when, x.ref)):
        host = None
        for t in trials:
            start = date.fromisoformat(t.data["start"])
            stop = date.fromisoformat(t.data["stop"]) if t.data.get("stop") else today
            if start <= level.when <= add_days(stop, 7):
                host = t
        if host is None:
            ledger.skip(level.ref, "no_lithium_trial", "a lithium level outside any lithium trial")
            continue
        host.data["serum_level"] = level.value  # the latest level in the trial wins
        host.sources.append(level.ref)
        ledger.targets.setdefault(level.ref, []).append(host)


def _episode(facts: ConditionFacts, ledger: Ledger, kb: Knowledge, today: date) -> dict[str, Any]:
    dep = facts.depressive
    active = [d for d in dep if d.active]
    pool = active or dep
    if not pool:
        return _episode_without_diagnosis(ledger, kb, today)

    def recent(d: Depressive) -> tuple[int, str]:
        return (d.onset.toordinal() if d.onset else 0, d.ref)

    chosen = max(pool, key=recent)
    bipolar = [
        d
        for d in pool
        if d.diagnosis in (Diagnosis.BIPOLAR_I_DEPRESSION, Diagnosis.BIPOLAR_II_DEPRESSION)
    ]
    diagnosis = chosen.diagnosis
    if bipolar and chosen not in bipolar:
        b = max(bipolar, key=recent)
        diagnosis = b.diagnosis
        ledger.assume(
            b.ref,
            f"a bipolar diagnosis is on record beside {chosen.code}: the "
            f"episode is recorded as {diagnosis.value}",
            "episode",
        )
    if not active:
        ledger.assume(
            chosen.ref,
            "no active depressive Condition: the most recent one "
            "(clinicalStatus inactive/resolved) describes the episode",
            "episode",
        )
    for d in dep:
        if d is chosen or (d.active and d in pool):
            ledger.to(d.ref, "episode")
        else:
            ledger.skip(
                d.ref,
                "past_episode",
                "an inactive or resolved depressive diagnosis: "
                "the history describes the current episode",
            )
    onset = chosen.onset
    if chosen.onset_note:
        ledger.assume(chosen.ref, chosen.onset_note, "episode")
    if onset is None:
        onset = _earliest_treatment(ledger) or today
        ledger.assume(
            chosen.ref,
            f"no onset date: the episode is taken to start "
            f"{onset.isoformat()} (the first treatment, else today)",
            "episode",
        )
    severity = chosen.severity or next((d.severity for d in pool if d.severity), None)
    if severity is None:
        severity = _severity_from_scores(ledger, onset, chosen.ref)
    return {"onset": onset.isoformat(), "diagnosis": diagnosis.value, "severity": severity.value}


def _earliest_treatment(ledger: Ledger) -> date | None:
    starts = [
        date.fromisoformat(i.data["start"])
        for i in ledger.items
        if i.section == "treatments" and isinstance(i.data.get("start"), str)
    ]
    return min(starts) if starts else None


def _severity_from_scores(ledger: Ledger, onset: date, ref: str) -> Severity:
    phq9 = sorted(
        (
            i
            for i in ledger.items
            if i.section == "measurements"
            and i.data["instrument"] == "PHQ-9"
            and i.data["date"] >= onset.isoformat()
        ),
        key=lambda i: i.data["date"],
    )
    for item in phq9:
        items = item.data.get("items")
        total = item.data.get("total")
        if total is None and items is not None and None not in items:
            total = sum(items)
        if total is None:
            continue
        band = _phq9_band(float(total))
        ledger.assume(
            ref,
            f"severity {band.value} from the first PHQ-9 of the episode "
            f"({total:g} on {item.data['date']}): no severity in the diagnosis",
            "episode",
        )
        return band
    ledger.assume(
        ref, "no severity in the diagnosis and no PHQ-9: severity taken as moderate", "episode"
    )
    return Severity.MODERATE


def _phq9_band(total: float) -> Severity:
    # PHQ-9 bands of the knowledge base: 10-14 moderate, 15-19 moderately severe, 20+ severe
    if total >= 15:
        return Severity.SEVERE
    if total >= 10:
        return Severity.MODERATE
    return Severity.MILD


def _episode_without_diagnosis(ledger: Ledger, kb: Knowledge, today: date) -> dict[str, Any]:
    onset = _earliest_treatment(ledger) or today
    first = ledger.refs[0] if ledger.refs else "input"
    ledger.read(first) if not ledger.refs else None
    note = (
        f"no depressive or bipolar Condition: the episode (diagnosis other) is taken to start "
        f"{onset.isoformat()}, the first treatment (else today)"
    )
    ledger.assume(first, note, "episode")
    severity = _severity_from_scores(ledger, onset, first)
    return {
        "onset": onset.isoformat(),
        "diagnosis": Diagnosis.OTHER.value,
        "severity": severity.value,
    }


_PATH = re.compile(r"^([a-z_]+)\[(\d+)\]")


def _assemble(
    patient: dict[str, Any], episode: dict[str, Any], extra: dict[str, Any], ledger: Ledger
) -> dict[str, Any]:
    out: dict[str, Any] = {"patient": patient, "episode": episode, **extra}
    for section in SECTIONS:
        items = sorted(
            (i for i in ledger.items if i.section == section), key=lambda i: (*i.key, i.sources[0])
        )
        for n, item in enumerate(items):
            item.path = f"{section}[{n}]"
        if items:
            out[section] = [i.data for i in items]
    return out


def _validated(
    patient: dict[str, Any],
    episode: dict[str, Any],
    extra: dict[str, Any],
    ledger: Ledger,
    kb: Knowledge,
    today: date,
) -> History:
    while True:
        data = _assemble(patient, episode, extra, ledger)
        try:
            history = parse_history(data, kb, today)
        except InputError as exc:
            by_path = {i.path: i for i in ledger.items}
            refused: dict[int, tuple[Item, Problem]] = {}
            blocking: list[Problem] = []
            for p in exc.problems:
                m = _PATH.match(p.loc)
                item = by_path.get(m.group(0)) if m else None
                if item is None:
                    blocking.append(p)
                elif id(item) not in refused:
                    refused[id(item)] = (item, p)
            if blocking:
                raise InputError(
                    [
                        Problem(p.loc, p.code, f"the imported history is invalid: {p.message}")
                        for p in blocking
                    ]
                ) from None
            for item, p in refused.values():
                inner = p.loc[len(item.path or "") :].lstrip(".")
                where = f" ({inner})" if inner else ""
                ledger.drop(
                    item,
                    "refused_by_checks",
                    f"the history's checks refused it{where}: {p.message}",
                )
            continue
        return history.model_copy(update={"assessed_on": None})
