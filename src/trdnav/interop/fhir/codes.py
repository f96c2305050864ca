"""Code systems and the small code tables of the FHIR import (documented in docs/fhir.md).

The knowledge base already holds the codes it cites: RxNorm ingredient RXCUIs (``kb.drugs``),
LOINC codes of instruments (``kb.instruments[id].loinc``) and the CPT/HCPCS codes of the
population concept sets (ECT, rTMS, esketamine). What it does not hold (ICD-10-CM and SNOMED CT
codes of the conditions vocabulary and of the episode diagnosis, LOINC codes of the screening
labs, LOINC answer codes) is tabled here, each table marked unverified in docs/fhir.md until it
is read against its source. A code found in no table is reported as not mapped, never guessed.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final, TypeVar

from trdnav.core.history import Diagnosis, Severity

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


# --- the episode: depressive and bipolar diagnoses -----------------------------------------------
# ICD-10-CM prefixes (dots removed) -> diagnosis. Longest prefix wins.
ICD_DIAGNOSIS: Final[dict[str, Diagnosis]] = {
    "F32": Diagnosis.MDD_SINGLE,
    "F33": Diagnosis.MDD_RECURRENT,
    "F341": Diagnosis.PERSISTENT_DEPRESSIVE_DISORDER,
    "F31": Diagnosis.BIPOLAR_I_DEPRESSION,
    "F3181": Diagnosis.BIPOLAR_II_DEPRESSION,
}
# Not a major depressive episode although under F32/F33: other/unspecified depression codes.
ICD_NOT_MDD: Final = ("F328", "F32A", "F338")
# 4th character of F32/F33: severity of the episode (F3x.4/.5: in remission; .9: unspecified).
ICD_SEVERITY: Final[dict[str, Severity]] = {
    "0": Severity.MILD,
    "1": Severity.MODERATE,
    "2": Severity.SEVERE,
    "3": Severity.SEVERE_PSYCHOTIC,
}
# F31.3x/F31.4/F31.5: bipolar, current episode depressed (mild-moderate / severe / psychotic).
ICD_BIPOLAR_SEVERITY: Final[dict[str, Severity]] = {
    "F313": Severity.MODERATE,
    "F314": Severity.SEVERE,
    "F315": Severity.SEVERE_PSYCHOTIC,
}
SNOMED_DIAGNOSIS: Final[dict[str, Diagnosis]] = {
    "370143000": Diagnosis.MDD_SINGLE,  # major depressive disorder (single/recurrent unstated)
    "36923009": Diagnosis.MDD_SINGLE,  # major depression, single episode
    "66344007": Diagnosis.MDD_RECURRENT,  # recurrent major depression
    "78667006": Diagnosis.PERSISTENT_DEPRESSIVE_DISORDER,  # dysthymia
    "13746004": Diagnosis.BIPOLAR_I_DEPRESSION,  # bipolar disorder (type unstated)
    "371596008": Diagnosis.BIPOLAR_I_DEPRESSION,  # bipolar I disorder
    "83225003": Diagnosis.BIPOLAR_II_DEPRESSION,  # bipolar II disorder
}
# Condition.severity (SNOMED CT severity qualifiers)
SNOMED_SEVERITY: Final[dict[str, Severity]] = {
    "255604002": Severity.MILD,
    "6736007": Severity.MODERATE,
    "24484000": Severity.SEVERE,
}
BIPOLAR: Final = frozenset({Diagnosis.BIPOLAR_I_DEPRESSION, Diagnosis.BIPOLAR_II_DEPRESSION})

# --- the conditions vocabulary ------------------------------------------------------------------
# ICD-10-CM prefixes (dots removed) -> (term, status or None). Longest prefix wins.
ICD_CONDITIONS: Final[dict[str, tuple[str, str | None]]] = {
    "I10": ("hypertension", None),
    "I11": ("hypertension", None),
    "I12": ("hypertension", None),
    "I13": ("hypertension", None),
    "I15": ("hypertension", None),
    "I16": ("hypertension", "uncontrolled"),  # hypertensive crisis
    "I671": ("aneurysmal_vascular_disease", None),  # cerebral aneurysm, nonruptured
    "I71": ("aneurysmal_vascular_disease", None),  # aortic aneurysm and dissection
    "I72": ("aneurysmal_vascular_disease", None),  # other aneurysm
    "Q282": ("arteriovenous_malformation", None),  # AVM of cerebral vessels
    "Q283": ("arteriovenous_malformation", None),
    "I61": ("intracerebral_hemorrhage_history", None),
    "I691": ("intracerebral_hemorrhage_history", None),  # sequelae of ICH
    "I200": ("cardiac_disease", None),  # unstable angina
    "I21": ("cardiac_disease", None),  # acute myocardial infarction
    "I22": ("cardiac_disease", None),
    "I47": ("cardiac_disease", None),
    "I48": ("cardiac_disease", None),
    "I49": ("cardiac_disease", None),
    "I50": ("cardiac_disease", None),  # heart failure
    "I4581": ("long_qt", None),  # long QT syndrome
    "F20": ("psychosis_history", None),
    "F22": ("psychosis_history", None),
    "F23": ("psychosis_history", None),
    "F25": ("psychosis_history", None),
    "F28": ("psychosis_history", None),
    "F29": ("psychosis_history", None),
    "F10": ("alcohol_use_disorder", None),
    "F11": ("substance_use_disorder", None),
    "F12": ("substance_use_disorder", None),
    "F13": ("substance_use_disorder", None),
    "F14": ("substance_use_disorder", None),
    "F15": ("substance_use_disorder", None),
    "F16": ("substance_use_disorder", None),
    "F18": ("substance_use_disorder", None),
    "F19": ("substance_use_disorder", None),
    "G40": ("seizure_disorder", None),
    "Z9621": ("cochlear_implant", None),
    "Z950": ("implanted_stimulator", None),  # cardiac pacemaker
    "Z95810": ("implanted_stimulator", None),  # automatic implantable cardiac defibrillator
    "Z9682": ("implanted_stimulator", None),  # neurostimulator
    "N181": ("renal_impairment", "mild"),
    "N182": ("renal_impairment", "mild"),
    "N183": ("renal_impairment", "moderate"),
    "N184": ("renal_impairment", "severe"),
    "N185": ("renal_impairment", "severe"),
    "N186": ("renal_impairment", "severe"),
    "N18": ("renal_impairment", None),
    "K72": ("hepatic_impairment", None),
    "K74": ("hepatic_impairment", None),
    "F50": ("eating_disorder", None),
    "F431": ("ptsd", None),
    "F90": ("adhd", None),
    "G4733": ("sleep_apnea", None),
    "G470": ("insomnia", None),
    "F510": ("insomnia", None),
    "E02": ("hypothyroidism", None),
    "E03": ("hypothyroidism", None),
    "E890": ("hypothyroidism", None),
    "F40": ("anxiety_disorder", None),
    "F41": ("anxiety_disorder", None),
    "F60": ("personality_disorder", None),
    "F061": ("catatonia", None),
    "H40": ("glaucoma", None),
    "G932": ("raised_intracranial_pressure", None),
    "G892": ("chronic_pain", None),
    "G894": ("chronic_pain", None),
}
SNOMED_CONDITIONS: Final[dict[str, tuple[str, str | None]]] = {
    "38341003": ("hypertension", None),  # hypertensive disorder
    "84757009": ("seizure_disorder", None),  # epilepsy
    "197480006": ("anxiety_disorder", None),  # anxiety disorder
    "21897009": ("anxiety_disorder", None),  # generalized anxiety disorder
    "47505003": ("ptsd", None),  # posttraumatic stress disorder
    "406506008": ("adhd", None),  # attention deficit hyperactivity disorder
    "78275009": ("sleep_apnea", None),  # obstructive sleep apnea syndrome
    "40930008": ("hypothyroidism", None),  # hypothyroidism
    "84114007": ("cardiac_disease", None),  # heart failure
    "22298006": ("cardiac_disease", None),  # myocardial infarction
    "709044004": ("renal_impairment", None),  # chronic kidney disease
    "69322001": ("psychosis_history", None),  # psychotic disorder
    "58214004": ("psychosis_history", None),  # schizophrenia
    "7200002": ("alcohol_use_disorder", None),  # alcoholism
    "72366004": ("eating_disorder", None),  # eating disorder
    "56882008": ("eating_disorder", None),  # anorexia nervosa
    "78004001": ("eating_disorder", None),  # bulimia nervosa
    "33449004": ("personality_disorder", None),  # personality disorder
}
# Pregnancy (the history's patient.pregnant): ICD-10-CM Z33.1 and chapter O.
ICD_PREGNANCY: Final = ("Z331", "O")
SNOMED_PREGNANCY: Final = frozenset({"77386006"})  # pregnancy (finding)


V = TypeVar("V")


def longest_prefix(code: str, table: dict[str, V]) -> V | None:
    """The value of the longest key of ``table`` that ``code`` (dots removed) starts with."""
    key = code.replace(".", "").upper()
    for n in range(len(key), 0, -1):
        if key[:n] in table:
            return table[key[:n]]
    return None


# --- procedures ---------------------------------------------------------------------------------
# The CPT/HCPCS codes of ECT, rTMS and esketamine come from the population concept sets of the
# knowledge base (concept set id = treatment type). Besides those:
SNOMED_PROCEDURES: Final[dict[str, str]] = {
    "23835007": "ect",  # electroconvulsive therapy
    "304891004": "psychotherapy",  # cognitive behavioural therapy (modality cbt)
}
CPT_PSYCHOTHERAPY: Final = frozenset({"90832", "90834", "90837", "90845", "90853"})
ESKETAMINE_HCPCS_MG: Final[dict[str, float]] = {"G2082": 56.0, "G2083": 84.0}

# --- labs (LOINC -> the lab test ids of knowledge/data/workup/labs.yaml) ------------------------
LAB_LOINC: Final[dict[str, str]] = {
    "3016-3": "tsh",  # Thyrotropin [Units/volume] in Serum or Plasma
    "11580-8": "tsh",  # Thyrotropin [Units/volume] in Serum or Plasma by Detection limit <= 0.005
    "2132-9": "b12",  # Cobalamin (Vitamin B12) [Mass/volume] in Serum or Plasma
    "14685-2": "b12",  # Cobalamin (Vitamin B12) [Moles/volume] in Serum or Plasma
    "2284-8": "folate",  # Folate [Mass/volume] in Serum or Plasma
    "14732-2": "folate",  # Folate [Moles/volume] in Serum or Plasma
    "1989-3": "vitamin_d",  # 25-Hydroxyvitamin D3 [Mass/volume] in Serum or Plasma
    "62292-8": "vitamin_d",  # 25-Hydroxyvitamin D2+D3 [Mass/volume] in Serum or Plasma
    "2276-4": "ferritin",  # Ferritin [Mass/volume] in Serum or Plasma
    "718-7": "haemoglobin",  # Hemoglobin [Mass/volume] in Blood
    "1988-5": "crp",  # C reactive protein [Mass/volume] in Serum or Plasma
    "30522-7": "crp",  # C reactive protein [Mass/volume] in Serum or Plasma by High sensitivity
}
LITHIUM_LEVEL_LOINC: Final = "14334-7"  # Lithium [Moles/volume] in Serum or Plasma

# LOINC answer list LL358-3 (PHQ-9/PHQ-2/GAD-7 frequency answers) -> item score
LOINC_ANSWERS: Final[dict[str, int]] = {
    "LA6568-5": 0,  # Not at all
    "LA6569-3": 1,  # Several days
    "LA6570-1": 2,  # More than half the days
    "LA6571-9": 3,  # Nearly every day
    "LA32-8": 0,  # No
    "LA33-6": 1,  # Yes
}


def ucum_to_unit(unit: str) -> str:
    """A UCUM unit in the spelling the history's lab units accept: ``m[IU]/L`` -> ``mIU/L``."""
    return unit.replace("[iU]", "IU").replace("[IU]", "IU").replace("[", "").replace("]", "")
