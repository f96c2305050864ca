"""Code systems, extensions and small builders of the FHIR export (docs/fhir.md, "Export").

Standard systems (LOINC, RxNorm, SNOMED CT, ICD-10-CM, UCUM, HL7 terminology) are named by their
official URIs. Where FHIR has no element for a history field, the export uses a code system or an
extension of our own under ``https://trdnav.org/fhir/``; each is listed here and in the docs, so
an importer (ours included) reads them back and ``import(export(history)) == history``.

These constants belong to the export; the import side keeps its own (interop.fhir.codes).
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

Json = dict[str, Any]

# --- standard systems ---------------------------------------------------------------------------
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
CPT = "http://www.ama-assn.org/go/cpt"
HCPCS = "https://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
RISK_PROBABILITY = "http://terminology.hl7.org/CodeSystem/risk-probability"
PROVENANCE_PARTICIPANT = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
DATA_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"

# --- our own ------------------------------------------------------------------------------------
BASE = "https://trdnav.org/fhir"
CS = f"{BASE}/CodeSystem"
SD = f"{BASE}/StructureDefinition"

CS_ASSESSMENT = f"{CS}/assessment"  # trd-status, failed-adequate-trials, staging-<method>
CS_TRD_STATUS = f"{CS}/trd-status"  # trd, not_trd, indeterminate
CS_STAGING_ITEM = f"{CS}/staging-item"  # component codes: stage, label, score, band, <item>
CS_DIAGNOSIS = f"{CS}/diagnosis"  # episode.diagnosis values
CS_SEVERITY = f"{CS}/severity"  # episode.severity values
CS_CONDITION = f"{CS}/condition"  # the conditions vocabulary (knowledge/data/conditions.yaml)
CS_RECORD_KIND = f"{CS}/record-kind"  # which part of the history a resource comes from
CS_OUTCOME = f"{CS}/trial-outcome"  # treatment outcome values (history Outcome)
CS_TREATMENT = f"{CS}/treatment-type"  # ect, rtms, esketamine, ketamine, psychotherapy
CS_TREATMENT_DETAIL = f"{CS}/treatment-detail"  # <type>.<detail>: ect.bilateral, rtms.10hz …
CS_DRUG = f"{CS}/drug"  # knowledge-base drug ids
CS_INSTRUMENT = f"{CS}/instrument"  # knowledge-base instrument ids
CS_INSTRUMENT_ITEM = f"{CS}/instrument-item"  # <instrument id>.<item number>
CS_SCORE_BAND = f"{CS}/score-band"  # the band label of an instrument's total
CS_LAB = f"{CS}/lab"  # knowledge-base lab ids
CS_PGX = f"{CS}/pgx-gene"  # gene phenotype observations
CS_STAGING_INPUT = f"{CS}/staging-input"  # history.staging_inputs fields
CS_STAGING_INPUT_VALUE = f"{CS}/staging-input-value"  # their values (none, some, severe …)
CS_SUICIDE_RISK = f"{CS}/clinician-alert"  # clinician-entered suicide-risk alerts
CS_OPTION = f"{CS}/option"  # plan option ids (knowledge/data/options)
CS_OPTION_STATUS = f"{CS}/option-status"  # recommended … contraindicated
QUESTIONNAIRE = f"{BASE}/Questionnaire"  # canonical of an instrument's form: <QUESTIONNAIRE>/<id>

NS_ITEM = f"{BASE}/NamingSystem/history-item"  # identifier: "<patient>/<list>/<index>[/…]"
NS_PATIENT = f"{BASE}/NamingSystem/patient-id"  # the clinic's patient identifier

EXT_OUTCOME = f"{SD}/trial-outcome"  # valueCoding (CS_OUTCOME): a trial's outcome
EXT_ADHERENCE = f"{SD}/adherence"  # valueDecimal 0..1
EXT_AUGMENTS = f"{SD}/augments"  # valueString: the drug an add-on augments, as written
EXT_SERUM_LEVEL = f"{SD}/serum-level"  # valueDecimal, mmol/L
EXT_RESPONSE_LOST_ON = f"{SD}/response-lost-on"  # valueDate
EXT_TRIAL_START = f"{SD}/trial-start"  # valueDate: the trial's start (a dose step's own is later)
EXT_TRIAL_STOP = f"{SD}/trial-stop"  # valueDate: the trial's stop (absent: ongoing)
EXT_SESSIONS = f"{SD}/sessions"  # valueInteger
EXT_MG_PER_SESSION = f"{SD}/mg-per-session"  # valueDecimal
EXT_MG_PER_KG = f"{SD}/mg-per-kg"  # valueDecimal
EXT_CONDITION_STATUS = f"{SD}/condition-status"  # valueString: conditions[].status as written
EXT_ENTERED_TOTAL = f"{SD}/entered-total"  # valueDecimal: a total entered beside the items
EXT_OPTION_RANK = f"{SD}/option-rank"  # valueInteger, 1 = first
EXT_OPTION_STATUS = f"{SD}/option-status"  # valueCode from CS_OPTION_STATUS
EXT_KB_VERSION = f"{SD}/kb-version"  # valueString (Provenance, CarePlan)

_ID_NAMESPACE = uuid.UUID("6f1d4f8e-2b0c-5c7e-9a51-7d3c0e4b8a21")


def resource_id(patient_id: str, path: str) -> str:
    """A stable id for the resource made from ``path`` of a patient's history (uuid5)."""
    return str(uuid.uuid5(_ID_NAMESPACE, f"{patient_id}\x1f{path}"))


def ref(resource_id_: str) -> Json:
    return {"reference": f"urn:uuid:{resource_id_}"}


def coding(system: str, code: str, display: str | None = None) -> Json:
    out: Json = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def concept(*codings: Json, text: str | None = None) -> Json:
    out: Json = {}
    if codings:
        out["coding"] = list(codings)
    if text is not None:
        out["text"] = text
    return out


def ext(url: str, kind: str, value: Any) -> Json:
    """An extension ``{url, value<Kind>: value}``; ``kind`` is e.g. ``"Date"``, ``"Decimal"``."""
    return {"url": url, f"value{kind}": value}


def item_identifier(patient_id: str, path: str) -> Json:
    """Where in the history a resource comes from: ``EX10/treatments/2/doses/1``."""
    return {"system": NS_ITEM, "value": f"{patient_id}/{path}"}


def item_keys(patient_id: str, path: str) -> Json:
    """``id`` and ``identifier`` of the resource made from ``path``: both derived from it."""
    return {"id": resource_id(patient_id, path), "identifier": [item_identifier(patient_id, path)]}


def iso(d: date | None) -> str | None:
    return None if d is None else d.isoformat()


def number(x: float) -> int | float:
    """A decimal as JSON shows it: ``150.0`` -> ``150`` (FHIR decimals keep their precision)."""
    return int(x) if float(x).is_integer() else float(x)


def mg_per_day(value: float, unit: str = "mg/day") -> Json:
    """A daily dose as a rate: ``{numerator: N mg, denominator: 1 d}`` (Dosage.doseAndRate)."""
    per = "session" if unit == "mg/session" else "d"
    denominator: Json = {"value": 1, "unit": per}
    if per == "d":
        denominator.update(system=UCUM, code="d")
    return {
        "numerator": {"value": number(value), "unit": "mg", "system": UCUM, "code": "mg"},
        "denominator": denominator,
    }


def slug(label: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in label.lower()).split())
