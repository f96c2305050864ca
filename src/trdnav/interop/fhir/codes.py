"""Code systems of the FHIR import and the lookup tables built from the knowledge base.

Every code fact lives in the knowledge base: RxNorm ingredient RXCUIs (``kb.drugs``), LOINC codes
of instruments (``kb.instruments[id].loinc``), the CPT/HCPCS codes of the population concept sets
(ECT, rTMS, esketamine) and the code tables of ``knowledge/data/codes/`` (``kb.codes``: ICD-10-CM
and SNOMED CT codes of the episode diagnosis, severity, the conditions vocabulary and pregnancy,
LOINC codes of the screening labs, the lithium level, answer codes and the pregnancy and
breastfeeding status observations, procedure codes). :func:`tables` turns ``kb.codes`` into the
dictionaries the import and export read, once per knowledge base. What stays here are the URIs
of the code systems and the project's own systems and extensions. A code found in no table is
reported as not mapped, never guessed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, TypeVar

from trdnav.core.history import Diagnosis, Severity
from trdnav.knowledge.codes import code_key
from trdnav.knowledge.load import Knowledge

# --- code systems -------------------------------------------------------------------------------
RXNORM: Final = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC: Final = "http://loinc.org"
SNOMED: Final = "http://snomed.info/sct"
ICD10CM: Final = "http://hl7.org/fhir/sid/icd-10-cm"
ICD10: Final = "http://hl7.org/fhir/sid/icd-10"
CPT: Final = "http://www.ama-assn.org/go/cpt"
UCUM: Final = "http://unitsofmeasure.org"
V2_0203: Final = "http://terminology.hl7.org/CodeSystem/v2-0203"
CONDITION_CLINICAL: Final = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION: Final = "http://terminology.hl7.org/CodeSystem/condition-ver-status"

# The project's own systems (export writes them; import reads them back without an assumption).
TRDNAV: Final = "https://trdnav.org/fhir"
TRIAL_OUTCOME: Final = f"{TRDNAV}/CodeSystem/trial-outcome"  # codes: history Outcome values
INSTRUMENT: Final = f"{TRDNAV}/CodeSystem/instrument"  # codes: kb instrument ids
INSTRUMENT_ITEM: Final = f"{TRDNAV}/CodeSystem/instrument-item"  # codes: "<instrument id>.<n>"
TREATMENT_DETAIL: Final = f"{TRDNAV}/CodeSystem/treatment-detail"  # e.g. "ect.right_unilateral"
EXT_ADHERENCE: Final = f"{TRDNAV}/StructureDefinition/adherence"  # valueDecimal 0..1
EXT_AUGMENTS: Final = f"{TRDNAV}/StructureDefinition/augments"  # valueString: drug name
EXT_SERUM_LEVEL: Final = f"{TRDNAV}/StructureDefinition/serum-level"  # valueDecimal (mmol/L)
EXT_RESPONSE_LOST_ON: Final = f"{TRDNAV}/StructureDefinition/response-lost-on"  # valueDate
EXT_SESSIONS: Final = f"{TRDNAV}/StructureDefinition/sessions"  # valueInteger, on a Procedure
EXT_MG_PER_SESSION: Final = f"{TRDNAV}/StructureDefinition/mg-per-session"  # valueDecimal
EXT_MG_PER_KG: Final = f"{TRDNAV}/StructureDefinition/mg-per-kg"  # valueDecimal
EXT_ORDINAL: Final = "http://hl7.org/fhir/StructureDefinition/ordinalValue"  # R4 core extension


@lru_cache(maxsize=1024)
def _system_key(system: str) -> str:
    return system.rstrip("/").removeprefix("https://").removeprefix("http://").lower()


def is_system(system: str | None, *names: str) -> bool:
    """``system`` is one of ``names`` (ignoring a trailing slash and http/https)."""
    if system is None:
        return False
    key = _system_key(system)
    return any(key == _system_key(n) for n in names)


def is_hcpcs(system: str | None) -> bool:
    return system is not None and "hcpcs" in system.lower()


def is_cpt(system: str | None) -> bool:
    return is_system(system, CPT) or (system is not None and "cpt" in system.lower())


def is_icd10(system: str | None) -> bool:
    return is_system(system, ICD10CM, ICD10) or (system is not None and "icd-10" in system.lower())


BIPOLAR: Final = frozenset({Diagnosis.BIPOLAR_I_DEPRESSION, Diagnosis.BIPOLAR_II_DEPRESSION})


@dataclass(frozen=True)
class CodeTables:
    """The lookup tables of ``kb.codes``. ICD-10-CM keys are prefixes without dots (read with
    :func:`longest_prefix`); other keys are codes as written."""

    icd_diagnosis: Mapping[str, tuple[Diagnosis | None, Severity | None]]  # None: excluded
    snomed_diagnosis: Mapping[str, Diagnosis]
    snomed_severity: Mapping[str, Severity]
    icd_conditions: Mapping[str, tuple[str, str | None]]  # (term, status or None)
    snomed_conditions: Mapping[str, tuple[str, str | None]]
    icd_pregnancy: tuple[str, ...]
    snomed_pregnancy: frozenset[str]
    lab_loinc: Mapping[str, str]  # LOINC -> lab id
    drug_level_loinc: Mapping[str, str]  # LOINC -> drug id (lithium)
    loinc_answers: Mapping[str, int]  # answer code -> item score
    cpt_procedures: Mapping[str, str]  # CPT -> treatment type
    hcpcs_procedures: Mapping[str, str]  # HCPCS (upper case) -> treatment type
    snomed_procedures: Mapping[str, str]  # SNOMED CT -> treatment type
    snomed_procedure_detail: Mapping[str, str]  # SNOMED CT -> detail (psychotherapy modality)
    mg_per_session: Mapping[str, float]  # HCPCS (upper case) -> esketamine mg per session
    export_procedure: Mapping[str, tuple[str, str]]  # treatment type -> (system, code)
    # (diagnosis, severity) -> (ICD-10-CM code, display): the code the export writes
    export_icd_diagnosis: Mapping[tuple[str, str], tuple[str, str]]
    export_severity: Mapping[str, tuple[str, str]]  # severity -> (SNOMED CT code, display)
    # status -> (LOINC code, display) of the observation; (status, answer) -> the answer's
    status_observation: Mapping[str, tuple[str, str]]
    status_answer: Mapping[tuple[str, bool], tuple[str, str]]


@lru_cache(maxsize=16)  # keyed on the Knowledge object (identity): built once per knowledge base
def tables(kb: Knowledge) -> CodeTables:
    """The lookup tables of ``kb.codes`` (see :mod:`trdnav.knowledge.codes`)."""
    c = kb.codes
    icd_dx: dict[str, tuple[Diagnosis | None, Severity | None]] = {}
    snomed_dx: dict[str, Diagnosis] = {}
    export_dx: dict[tuple[str, str], tuple[str, str]] = {}
    for d in c.diagnoses:
        dx = Diagnosis(d.diagnosis) if d.diagnosis else None
        sev = Severity(d.severity) if d.severity else None
        if d.system == "icd10cm":
            icd_dx[d.key] = (dx, sev)
            if dx is not None:
                for shown in d.export_for:
                    export_dx[(dx.value, shown)] = (d.code, d.display)
        elif d.system == "snomed" and dx is not None:
            snomed_dx[d.code] = dx
    export_sev = {s: (q.code, q.display) for q in c.severities for s in q.export_for}
    conditions = {
        system: {e.key: (e.condition, e.status) for e in c.conditions if e.system == system}
        for system in ("icd10cm", "snomed")
    }
    procedures = {
        system: {e.key.upper(): e.treatment for e in c.procedures if e.system == system}
        for system in ("cpt", "hcpcs", "snomed")
    }
    return CodeTables(
        icd_diagnosis=icd_dx,
        snomed_diagnosis=snomed_dx,
        snomed_severity={q.code: Severity(q.severity) for q in c.severities},
        icd_conditions=conditions["icd10cm"],
        snomed_conditions=conditions["snomed"],
        icd_pregnancy=tuple(p.key for p in c.pregnancy if p.system == "icd10cm"),
        snomed_pregnancy=frozenset(p.code for p in c.pregnancy if p.system == "snomed"),
        lab_loinc={x.code: x.lab for x in c.labs if x.lab is not None},
        drug_level_loinc={x.code: x.drug_level for x in c.labs if x.drug_level is not None},
        loinc_answers={x.code: x.score for x in c.answers},
        cpt_procedures=procedures["cpt"],
        hcpcs_procedures=procedures["hcpcs"],
        snomed_procedures=procedures["snomed"],
        snomed_procedure_detail={
            p.code: p.detail for p in c.procedures if p.system == "snomed" and p.detail
        },
        mg_per_session={
            p.code.upper(): p.mg_per_session for p in c.procedures if p.mg_per_session is not None
        },
        export_procedure={p.treatment: (p.system, p.code) for p in c.procedures if p.export},
        export_icd_diagnosis=export_dx,
        export_severity=export_sev,
        status_observation={
            s.status: (s.code, s.display) for s in c.patient_status if s.answer is None
        },
        status_answer={
            (s.status, s.answer): (s.code, s.display)
            for s in c.patient_status
            if s.answer is not None
        },
    )


V = TypeVar("V")


def longest_prefix(code: str, table: Mapping[str, V]) -> V | None:
    """The value of the longest key of ``table`` that ``code`` (dots removed) starts with."""
    key = code_key("icd10cm", code)
    for n in range(len(key), 0, -1):
        if key[:n] in table:
            return table[key[:n]]
    return None


def ucum_to_unit(unit: str) -> str:
    """A UCUM unit in the spelling the history's lab units accept: ``m[IU]/L`` -> ``mIU/L``."""
    return unit.replace("[iU]", "IU").replace("[IU]", "IU").replace("[", "").replace("]", "")
