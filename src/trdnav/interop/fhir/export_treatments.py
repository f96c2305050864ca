"""Treatments as FHIR: a MedicationStatement per dose step of each medication trial, a Procedure
per course of ECT, rTMS, esketamine, ketamine or psychotherapy, and a MedicationStatement per
current medication. The mapping is written out in docs/fhir.md ("Export")."""

from __future__ import annotations

from datetime import date

from trdnav.core.history import (
    CurrentMedication,
    Ect,
    Esketamine,
    History,
    Ketamine,
    Medication,
    Psychotherapy,
    Rtms,
    TreatmentBase,
)
from trdnav.interop.fhir.codes import tables
from trdnav.interop.fhir.export_codes import (
    CS_DRUG,
    CS_OUTCOME,
    CS_RECORD_KIND,
    CS_TREATMENT,
    CS_TREATMENT_DETAIL,
    EXT_ADHERENCE,
    EXT_AUGMENTS,
    EXT_MG_PER_KG,
    EXT_MG_PER_SESSION,
    EXT_OUTCOME,
    EXT_RESPONSE_LOST_ON,
    EXT_SERUM_LEVEL,
    EXT_SESSIONS,
    EXT_TRIAL_START,
    EXT_TRIAL_STOP,
    RXNORM,
    Json,
    coding,
    concept,
    ext,
    iso,
    item_identifier,
    item_keys,
    mg_per_day,
    number,
    resource_id,
)
from trdnav.knowledge.load import Knowledge

TREATMENT_NAMES = {
    "ect": "electroconvulsive therapy",
    "rtms": "repetitive transcranial magnetic stimulation",
    "esketamine": "esketamine nasal spray, supervised sessions",
    "ketamine": "ketamine",
    "psychotherapy": "psychotherapy",
}
_VOCABULARY_SYSTEMS = {
    "CPT4": "http://www.ama-assn.org/go/cpt",
    "HCPCS": "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets",
}


def treatment_path(index: int) -> str:
    return f"treatments/{index}"


def _medication_concept(name: str, kb: Knowledge) -> Json:
    """RxNorm ingredient (and our drug id) when the knowledge base knows the drug; the name as
    written is the text."""
    drug = kb.resolve_drug(name)
    codings: list[Json] = []
    if drug is not None:
        if drug.rxnorm:
            codings.append(coding(RXNORM, drug.rxnorm, drug.name))
        codings.append(coding(CS_DRUG, drug.id, drug.name))
    return concept(*codings, text=name)


def _kind(code: str, display: str) -> Json:
    return concept(coding(CS_RECORD_KIND, code, display))


def _outcome_coding(t: TreatmentBase) -> Json:
    return coding(CS_OUTCOME, t.outcome.value, t.outcome.value.replace("_", " "))


def _status(stop: date | None, as_of: date) -> str:
    return "active" if stop is None or stop > as_of else "completed"


def _dose_text(mg: float, unit: str) -> str:
    per = "session" if unit == "mg/session" else ("24 h" if unit == "mg/24h" else "day")
    return f"{number(mg)} mg per {per}"


def medication_statements(
    index: int, t: Medication, history: History, kb: Knowledge, episode_ref: Json, patient: Json
) -> list[Json]:
    """One MedicationStatement per dose step (one without dosage when no step is recorded).

    Each step's ``effectivePeriod`` runs from its ``from`` to the next step's ``from`` (the last
    one to the trial's stop, open when ongoing); the trial's facts (outcome, adherence, augments,
    serum level, response lost, note, start and stop) are on every step of the trial, and the
    steps share the identifier ``<patient>/treatments/<index>``.
    """
    pid = history.patient.id
    as_of = history.assessed_on or t.stop or t.start
    drug = kb.resolve_drug(t.drug)
    unit = drug.dose_unit if drug is not None else "mg/day"
    trial_ext: list[Json] = [
        ext(EXT_OUTCOME, "Coding", _outcome_coding(t)),
        ext(EXT_TRIAL_START, "Date", iso(t.start)),
    ]
    if t.stop is not None:
        trial_ext.append(ext(EXT_TRIAL_STOP, "Date", iso(t.stop)))
    if t.adherence is not None:
        trial_ext.append(ext(EXT_ADHERENCE, "Decimal", number(t.adherence)))
    if t.augments is not None:
        trial_ext.append(ext(EXT_AUGMENTS, "String", t.augments))
    if t.serum_level is not None:
        trial_ext.append(ext(EXT_SERUM_LEVEL, "Decimal", number(t.serum_level)))
    if t.response_lost_on is not None:
        trial_ext.append(ext(EXT_RESPONSE_LOST_ON, "Date", iso(t.response_lost_on)))
    steps: list[tuple[date, date | None, float | None]] = []
    if t.doses:
        for s, step in enumerate(t.doses):
            end = t.doses[s + 1].from_ if s + 1 < len(t.doses) else t.stop
            steps.append((step.from_, end, step.mg_per_day))
    else:
        steps.append((t.start, t.stop, None))
    out: list[Json] = []
    for s, (start, end, mg) in enumerate(steps):
        path = f"{treatment_path(index)}/doses/{s}" if t.doses else treatment_path(index)
        period: Json = {"start": iso(start)}
        if end is not None:
            period["end"] = iso(end)
        last = s == len(steps) - 1
        res: Json = {
            "resourceType": "MedicationStatement",
            "id": resource_id(pid, path),
            "extension": trial_ext,
            "identifier": [item_identifier(pid, treatment_path(index))],
            "status": _status(t.stop, as_of) if last else "completed",
            "category": _kind("treatment-trial", "a medication trial of the treatment history"),
            "medicationCodeableConcept": _medication_concept(t.drug, kb),
            "subject": patient,
            "effectivePeriod": period,
            "reasonReference": [episode_ref],
        }
        if mg is not None:
            res["dosage"] = [
                {
                    "sequence": s + 1,
                    "text": _dose_text(mg, unit),
                    "doseAndRate": [{"rateRatio": mg_per_day(mg, unit)}],
                }
            ]
        if t.note is not None:
            res["note"] = [{"text": t.note}]
        out.append(res)
    return out


def current_medication_statement(
    index: int, c: CurrentMedication, history: History, kb: Knowledge, patient: Json
) -> Json:
    pid = history.patient.id
    path = f"current_medications/{index}"
    res: Json = {
        "resourceType": "MedicationStatement",
        **item_keys(pid, path),
        "status": "active",
        "category": _kind("current-medication", "a drug taken now (interaction checks)"),
        "medicationCodeableConcept": _medication_concept(c.drug, kb),
        "subject": patient,
    }
    if c.start is not None:
        res["effectivePeriod"] = {"start": iso(c.start)}
    if c.mg_per_day is not None:
        res["dosage"] = [
            {
                "text": _dose_text(c.mg_per_day, "mg/day"),
                "doseAndRate": [{"rateRatio": mg_per_day(c.mg_per_day)}],
            }
        ]
    if c.note is not None:
        res["note"] = [{"text": c.note}]
    return res


def _procedure_code(t: TreatmentBase, kb: Knowledge) -> Json:
    kind = str(getattr(t, "type", "other"))
    codings: list[Json] = []
    # the code kb.codes exports for the type, shown as the concept set of that type names it
    known = tables(kb).export_procedure.get(kind)
    if known is not None:
        _, code = known
        cs = kb.population.concept_sets.get(kind)
        hit = next((c for c in cs.include if c.code == code), None) if cs else None
        if hit is not None and hit.vocabulary in _VOCABULARY_SYSTEMS:
            codings.append(coding(_VOCABULARY_SYSTEMS[hit.vocabulary], hit.code, hit.name))
    codings.append(coding(CS_TREATMENT, kind, TREATMENT_NAMES.get(kind, kind)))
    detail = _detail(t)
    if detail is not None:
        shown = detail.replace("_", " ")
        codings.append(coding(CS_TREATMENT_DETAIL, f"{kind}.{detail}", shown))
    return concept(*codings, text=TREATMENT_NAMES.get(kind, kind))


def _detail(t: TreatmentBase) -> str | None:
    """Electrode placement, rTMS protocol, ketamine route or psychotherapy modality."""
    if isinstance(t, Ect):
        return t.electrode_placement
    if isinstance(t, Rtms):
        return t.protocol
    if isinstance(t, Ketamine):
        return t.route
    if isinstance(t, Psychotherapy):
        return t.modality
    return None


def procedure(
    index: int, t: TreatmentBase, history: History, kb: Knowledge, episode_ref: Json, patient: Json
) -> Json:
    """ECT, rTMS, esketamine, ketamine or psychotherapy: one Procedure for the course."""
    pid = history.patient.id
    as_of = history.assessed_on or t.stop or t.start
    extensions: list[Json] = []
    sessions = getattr(t, "sessions", None)
    if sessions is not None:
        extensions.append(ext(EXT_SESSIONS, "Integer", sessions))
    if isinstance(t, Ketamine) and t.mg_per_kg is not None:
        extensions.append(ext(EXT_MG_PER_KG, "Decimal", number(t.mg_per_kg)))
    elif isinstance(t, Esketamine) and t.mg_per_session is not None:
        extensions.append(ext(EXT_MG_PER_SESSION, "Decimal", number(t.mg_per_session)))
    period: Json = {"start": iso(t.start)}
    if t.stop is not None:
        period["end"] = iso(t.stop)
    path = treatment_path(index)
    res: Json = {
        "resourceType": "Procedure",
        **item_keys(pid, path),
        "status": "in-progress" if _status(t.stop, as_of) == "active" else "completed",
        "category": _kind("treatment-course", "a non-drug treatment course of the history"),
        "code": _procedure_code(t, kb),
        "subject": patient,
        "performedPeriod": period,
        "reasonReference": [episode_ref],
        "outcome": concept(_outcome_coding(t), text=t.outcome.value.replace("_", " ")),
    }
    if extensions:
        res["extension"] = extensions
    if t.note is not None:
        res["note"] = [{"text": t.note}]
    return res
