"""Scores, forms, labs, pharmacogenomics, staging inputs, pregnancy and clinician alerts as FHIR.

A measurement is an Observation (the instrument's LOINC total code when the knowledge base has
one; the total as ``valueQuantity``; the score band as ``interpretation``; every item answer as a
component) and, when item answers were recorded, a QuestionnaireResponse that the Observation is
``derivedFrom``. docs/fhir.md ("Export") lists the codes.
"""

from __future__ import annotations

from trdnav.core.history import ClinicianAlert, History, Lab, Measurement, PgxResult, StagingInputs
from trdnav.core.measures import ScoredMeasurement
from trdnav.interop.fhir.codes import tables
from trdnav.interop.fhir.export_codes import (
    CS_INSTRUMENT,
    CS_INSTRUMENT_ITEM,
    CS_LAB,
    CS_PGX,
    CS_SCORE_BAND,
    CS_STAGING_INPUT,
    CS_STAGING_INPUT_VALUE,
    CS_SUICIDE_RISK,
    DATA_ABSENT,
    EXT_ENTERED_TOTAL,
    LOINC,
    OBSERVATION_CATEGORY,
    QUESTIONNAIRE,
    RISK_PROBABILITY,
    UCUM,
    Json,
    coding,
    concept,
    ext,
    iso,
    item_identifier,
    item_keys,
    number,
    ref,
    resource_id,
    slug,
)
from trdnav.knowledge.load import Knowledge
from trdnav.knowledge.schema import Instrument

RISK_LEVELS = {"low": "low", "moderate": "moderate", "high": "high"}


def _category(code: str, display: str) -> list[Json]:
    return [concept(coding(OBSERVATION_CATEGORY, code, display))]


def _instrument_code(name: str, inst: Instrument | None) -> Json:
    codings: list[Json] = []
    if inst is not None:
        if inst.loinc.total:
            codings.append(coding(LOINC, inst.loinc.total, f"{inst.name} total score"))
        codings.append(coding(CS_INSTRUMENT, inst.id, inst.full_name))
    return concept(*codings, text=name)


def _item_code(inst: Instrument | None, n: int) -> Json:
    codings: list[Json] = []
    if inst is not None:
        loinc = inst.loinc.items.get(n)
        text = next((i.text for i in inst.items if i.n == n), None)
        shown = text if text and inst.licence.store_item_text else None
        if loinc:
            codings.append(coding(LOINC, loinc, shown))
        codings.append(coding(CS_INSTRUMENT_ITEM, f"{inst.id}.{n}", shown))
    return concept(*codings, text=f"item {n}")


def questionnaire_response(
    index: int, m: Measurement, history: History, kb: Knowledge, patient: Json
) -> Json:
    """The answered form: one item per question (``linkId`` = item number), unanswered items
    with no ``answer``."""
    pid = history.patient.id
    inst = kb.resolve_instrument(m.instrument)
    path = f"measurements/{index}/form"
    items: list[Json] = []
    for n, answer in enumerate(m.items or (), start=1):
        item: Json = {"linkId": str(n)}
        text = (
            next((i.text for i in inst.items if i.n == n), None)
            if inst is not None and inst.licence.store_item_text
            else None
        )
        if text:
            item["text"] = text
        if answer is not None:
            item["answer"] = [{"valueInteger": answer}]
        items.append(item)
    res: Json = {
        "resourceType": "QuestionnaireResponse",
        "id": resource_id(pid, path),
        "identifier": item_identifier(pid, f"measurements/{index}"),
        "status": "completed",
        "subject": patient,
        "authored": iso(m.date),
        "item": items,
    }
    if inst is not None:
        res["questionnaire"] = f"{QUESTIONNAIRE}/{inst.id}"
    return res


def measurement_observation(
    index: int,
    m: Measurement,
    scored: ScoredMeasurement | None,
    history: History,
    kb: Knowledge,
    patient: Json,
    form_id: str | None,
) -> Json:
    pid = history.patient.id
    inst = kb.resolve_instrument(m.instrument)
    path = f"measurements/{index}"
    res: Json = {
        "resourceType": "Observation",
        **item_keys(pid, path),
        "status": "final",
        "category": _category("survey", "Survey"),
        "code": _instrument_code(m.instrument, inst),
        "subject": patient,
        "effectiveDateTime": iso(m.date),
    }
    total = scored.score.total if scored is not None else m.total
    if total is not None:
        res["valueQuantity"] = {
            "value": number(total),
            "unit": "{score}",
            "system": UCUM,
            "code": "{score}",
        }
    if m.items is not None and m.total is not None:
        res["extension"] = [ext(EXT_ENTERED_TOTAL, "Decimal", number(m.total))]
    band = scored.score.band if scored is not None else None
    if band:
        res["interpretation"] = [concept(coding(CS_SCORE_BAND, slug(band), band), text=band)]
    if scored is not None and scored.score.prorated:
        res["note"] = [{"text": "total prorated for a missing item"}]
    if m.items is not None:
        components: list[Json] = []
        for n, answer in enumerate(m.items, start=1):
            comp: Json = {"code": _item_code(inst, n)}
            if answer is None:
                comp["dataAbsentReason"] = concept(
                    coding(
                        DATA_ABSENT,
                        "asked-unknown",
                        "Asked But Unknown",
                    )
                )
            else:
                comp["valueInteger"] = answer
            components.append(comp)
        res["component"] = components
    if form_id is not None:
        res["derivedFrom"] = [ref(form_id)]
    return res


def lab_observation(index: int, lab: Lab, history: History, kb: Knowledge, patient: Json) -> Json:
    pid = history.patient.id
    path = f"labs/{index}"
    known = kb.workup.resolve_lab(lab.test)
    codings = [coding(CS_LAB, known.id, known.name)] if known else []
    return {
        "resourceType": "Observation",
        **item_keys(pid, path),
        "status": "final",
        "category": _category("laboratory", "Laboratory"),
        "code": concept(*codings, text=lab.test),
        "subject": patient,
        "effectiveDateTime": iso(lab.date),
        "valueQuantity": {"value": number(lab.value), "unit": lab.unit},
    }


def pgx_observation(index: int, p: PgxResult, history: History, patient: Json) -> Json:
    pid = history.patient.id
    path = f"pgx/{index}"
    res: Json = {
        "resourceType": "Observation",
        **item_keys(pid, path),
        "status": "final",
        "category": _category("laboratory", "Laboratory"),
        "code": concept(coding(CS_PGX, p.gene, f"{p.gene} phenotype"), text=f"{p.gene} phenotype"),
        "subject": patient,
        "valueCodeableConcept": concept(text=p.phenotype),
    }
    if p.date is not None:
        res["effectiveDateTime"] = iso(p.date)
    return res


def staging_input_observations(s: StagingInputs, history: History, patient: Json) -> list[Json]:
    """One Observation per staging input that is given (DM-TRD's extra inputs)."""
    pid = history.patient.id
    out: list[Json] = []
    for name, value in s.model_dump().items():
        if value is None:
            continue
        path = f"staging_inputs/{name}"
        res: Json = {
            "resourceType": "Observation",
            **item_keys(pid, path),
            "status": "final",
            "category": _category("social-history", "Social History"),
            "code": concept(coding(CS_STAGING_INPUT, name), text=name.replace("_", " ")),
            "subject": patient,
        }
        if isinstance(value, bool):
            res["valueBoolean"] = value
        elif isinstance(value, int):
            res["valueInteger"] = value
        else:
            res["valueCodeableConcept"] = concept(
                coding(CS_STAGING_INPUT_VALUE, str(value)), text=str(value)
            )
        out.append(res)
    return out


def pregnancy_observations(history: History, kb: Knowledge, patient: Json) -> list[Json]:
    """Pregnancy status unless the patient is male and not pregnant; breastfeeding status only
    when breastfeeding. LOINC codes and answers from ``kb.codes`` (patient_status table)."""
    pid = history.patient.id
    p = history.patient
    t = tables(kb)
    out: list[Json] = []
    if p.pregnant or p.sex.value != "male":
        answer = t.status_answer[("pregnant", bool(p.pregnant))]
        code = t.status_observation["pregnant"]
        out.append(_status_obs(pid, "patient/pregnant", code, answer, patient))
    if p.breastfeeding:
        code = t.status_observation["breastfeeding"]
        answer = t.status_answer[("breastfeeding", True)]
        out.append(_status_obs(pid, "patient/breastfeeding", code, answer, patient))
    return out


def _status_obs(
    pid: str, path: str, code: tuple[str, str], answer: tuple[str, str], patient: Json
) -> Json:
    return {
        "resourceType": "Observation",
        **item_keys(pid, path),
        "status": "final",
        "category": _category("social-history", "Social History"),
        "code": concept(coding(LOINC, *code), text=code[1]),
        "subject": patient,
        "valueCodeableConcept": concept(coding(LOINC, *answer), text=answer[1]),
    }


def clinician_alert(index: int, a: ClinicianAlert, history: History, patient: Json) -> Json:
    """A clinician-entered suicide-risk alert as a RiskAssessment (qualitative risk)."""
    pid = history.patient.id
    path = f"clinician_alerts/{index}"
    res: Json = {
        "resourceType": "RiskAssessment",
        **item_keys(pid, path),
        "status": "final",
        "code": concept(coding(CS_SUICIDE_RISK, a.type, "suicide risk"), text="suicide risk"),
        "subject": patient,
        "occurrenceDateTime": iso(a.date),
        "prediction": [
            {
                "outcome": concept(text="suicide or self-harm"),
                "qualitativeRisk": concept(
                    coding(RISK_PROBABILITY, RISK_LEVELS[a.severity], a.severity),
                    text=a.severity,
                ),
            }
        ],
    }
    if a.entered_by is not None:
        res["performer"] = {"display": a.entered_by}
    if a.note is not None:
        res["note"] = [{"text": a.note}]
    return res
