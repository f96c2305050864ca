"""Export a treatment history and its assessment as a FHIR R4 Bundle (type ``collection``).

``export_fhir(history, assessment, kb, identity=None)`` returns the Bundle as JSON-ready data:

- ``Patient`` (the clinic's id as an identifier; name, MRN and other identifiers when an identity
  is given), pregnancy and breastfeeding status Observations;
- ``Condition``: the current episode (diagnosis, severity, onset; ICD-10-CM and SNOMED CT codes
  from the knowledge base's code tables and population concept sets) and every condition of the
  history (our vocabulary);
- ``MedicationStatement`` per dose step of each trial (RxNorm ingredient, daily dose as a rate,
  ``effectivePeriod``; outcome, adherence and the other trial facts in extensions) and per
  current medication; ``Procedure`` per ECT, rTMS, esketamine, ketamine or psychotherapy course;
- ``Observation`` per measurement (LOINC total code, ``interpretation`` = score band, items as
  components) with a ``QuestionnaireResponse`` for item-level forms; labs, pharmacogenomic
  phenotypes and staging inputs as Observations; clinician suicide-risk alerts as RiskAssessment;
- the assessment (TRD status, failed adequate trials, each staging method) as Observations in
  ``https://trdnav.org/fhir/CodeSystem/assessment``; the plan as a ``CarePlan``;
- a ``Device`` and a ``Provenance`` naming the software and knowledge-base versions.

Every resource validates with ``fhir.resources`` R4B models (tests/interop/test_fhir_export.py);
ids are stable (uuid5 of patient id and history path), so exporting again gives the same ids.
The mapping, our code systems and extensions are documented in docs/fhir.md ("Export"); the
constants are in :mod:`trdnav.interop.fhir.export_codes`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from trdnav.core.assessment import Assessment
from trdnav.core.history import Condition, History, Medication
from trdnav.core.measures import score_measurements
from trdnav.identity import PatientIdentity
from trdnav.interop.fhir.codes import tables
from trdnav.interop.fhir.export_assessment import (
    assessment_observations,
    care_plan,
    device,
    provenance,
)
from trdnav.interop.fhir.export_codes import (
    CONDITION_CATEGORY,
    CONDITION_CLINICAL,
    CONDITION_VERIFICATION,
    CS_CONDITION,
    CS_DIAGNOSIS,
    CS_RECORD_KIND,
    CS_SEVERITY,
    EXT_CONDITION_STATUS,
    ICD10CM,
    IDENTIFIER_TYPE,
    NS_PATIENT,
    SNOMED,
    Json,
    coding,
    concept,
    ext,
    iso,
    item_identifier,
    item_keys,
    ref,
    resource_id,
)
from trdnav.interop.fhir.export_observations import (
    clinician_alert,
    lab_observation,
    measurement_observation,
    pgx_observation,
    pregnancy_observations,
    questionnaire_response,
    staging_input_observations,
)
from trdnav.interop.fhir.export_treatments import (
    current_medication_statement,
    medication_statements,
    procedure,
)
from trdnav.knowledge.load import Knowledge

__all__ = ["ExportError", "export_fhir"]

# The concept set whose SNOMED CT root names the diagnosis.
SNOMED_SET = {
    "mdd_single": "mdd",
    "mdd_recurrent": "mdd",
    "bipolar_i_depression": "bipolar",
    "bipolar_ii_depression": "bipolar",
}
DIAGNOSIS_TEXT = {
    "mdd_single": "major depressive disorder, single episode",
    "mdd_recurrent": "major depressive disorder, recurrent",
    "persistent_depressive_disorder": "persistent depressive disorder",
    "bipolar_i_depression": "bipolar I disorder, current episode depressed",
    "bipolar_ii_depression": "bipolar II disorder, current episode depressed",
    "other": "other depressive disorder",
}
FHIR_CLINICAL = ("active", "recurrence", "relapse", "inactive", "remission", "resolved")


class ExportError(ValueError):
    """The assessment given is not the assessment of this history."""


def _in_concept_set(kb: Knowledge, set_id: str, vocabulary: str, code: str) -> bool:
    cs = kb.population.concept_sets.get(set_id)
    if cs is None:
        return False

    def covers(c_vocab: str, c_code: str) -> bool:
        if c_vocab != vocabulary:
            return False
        return code == c_code or (vocabulary == "ICD10CM" and code.startswith(c_code))

    return any(covers(c.vocabulary, c.code) for c in cs.include) and not any(
        covers(c.vocabulary, c.code) for c in cs.exclude
    )


def _diagnosis_concept(history: History, kb: Knowledge) -> Json:
    dx, sev = history.episode.diagnosis.value, history.episode.severity.value
    codings: list[Json] = []
    # ICD-10-CM code of (diagnosis, severity) from kb.codes; written only when a concept set
    # includes it
    icd = tables(kb).export_icd_diagnosis.get((dx, sev))
    sets = ("mdd", "mdd_psychotic")
    if icd is not None and any(_in_concept_set(kb, s, "ICD10CM", icd[0]) for s in sets):
        codings.append(coding(ICD10CM, *icd))
    set_id = SNOMED_SET.get(dx)
    cs = kb.population.concept_sets.get(set_id) if set_id else None
    root = next((c for c in cs.include if c.vocabulary == "SNOMED"), None) if cs else None
    if root is not None:
        codings.append(coding(SNOMED, root.code, root.name))
    codings.append(coding(CS_DIAGNOSIS, dx, DIAGNOSIS_TEXT[dx]))
    return concept(*codings, text=DIAGNOSIS_TEXT[dx])


def _episode(history: History, kb: Knowledge, patient: Json) -> Json:
    pid = history.patient.id
    sev = history.episode.severity.value
    severity_codes = tables(kb).export_severity  # HL7 condition-severity value set (SNOMED CT)
    sev_codings = [coding(SNOMED, *severity_codes[sev])] if sev in severity_codes else []
    sev_codings.append(coding(CS_SEVERITY, sev, sev.replace("_", " ")))
    return {
        "resourceType": "Condition",
        "id": resource_id(pid, "episode"),
        "identifier": [item_identifier(pid, "episode")],
        "clinicalStatus": concept(coding(CONDITION_CLINICAL, "active", "Active")),
        "verificationStatus": concept(coding(CONDITION_VERIFICATION, "confirmed", "Confirmed")),
        "category": [
            concept(
                coding(CONDITION_CATEGORY, "encounter-diagnosis", "Encounter Diagnosis"),
                coding(CS_RECORD_KIND, "episode", "the current depressive episode"),
            )
        ],
        "severity": concept(*sev_codings, text=sev.replace("_", " ")),
        "code": _diagnosis_concept(history, kb),
        "subject": patient,
        "onsetDateTime": iso(history.episode.onset),
    }


def _clinical_status(c: Condition, kb: Knowledge) -> str:
    if c.status is None:
        return "active"
    if c.status in FHIR_CLINICAL:
        return c.status
    statuses = kb.conditions_source.clinical_statuses
    if statuses is not None and c.status in statuses.absent:
        return "inactive"
    return "active"


def _condition(index: int, c: Condition, history: History, kb: Knowledge, patient: Json) -> Json:
    pid = history.patient.id
    path = f"conditions/{index}"
    term = kb.conditions.get(c.name)
    code = (
        concept(coding(CS_CONDITION, term.id, term.label), text=c.name)
        if term
        else concept(text=c.name)
    )
    res: Json = {
        "resourceType": "Condition",
        **item_keys(pid, path),
        "clinicalStatus": concept(coding(CONDITION_CLINICAL, _clinical_status(c, kb))),
        "category": [
            concept(
                coding(CONDITION_CATEGORY, "problem-list-item", "Problem List Item"),
                coding(CS_RECORD_KIND, "condition", "a condition of the treatment history"),
            )
        ],
        "code": code,
        "subject": patient,
    }
    if c.status is not None:
        res["extension"] = [ext(EXT_CONDITION_STATUS, "String", c.status)]
    return res


def _patient(history: History, identity: PatientIdentity | None) -> Json:
    p = history.patient
    identifiers: list[Json] = [{"system": NS_PATIENT, "value": p.id}]
    res: Json = {
        "resourceType": "Patient",
        "id": resource_id(p.id, "patient"),
        "gender": p.sex.value,
    }
    birth = p.birth_date or (identity.birth_date if identity else None)
    if birth is not None:
        res["birthDate"] = iso(birth)
    if identity is not None:
        if identity.mrn:
            identifiers.append(
                {
                    "type": concept(coding(IDENTIFIER_TYPE, "MR", "Medical record number")),
                    "value": identity.mrn,
                }
            )
        for i in identity.identifiers:
            row: Json = {"value": i.value}
            if i.system:
                row["system"] = i.system
            if i.type:
                row["type"] = concept(coding(IDENTIFIER_TYPE, i.type), text=i.type)
            identifiers.append(row)
        if identity.family or identity.given:
            name: Json = {"use": "official"}
            if identity.family:
                name["family"] = identity.family
            if identity.given:
                name["given"] = list(identity.given)
            res["name"] = [name]
    res["identifier"] = identifiers
    return res


def export_fhir(
    history: History,
    assessment: Assessment,
    kb: Knowledge,
    identity: PatientIdentity | None = None,
    *,
    timestamp: datetime | None = None,
) -> Json:
    """The history and its assessment as a FHIR R4 Bundle of type ``collection`` (JSON data).

    ``timestamp`` (default now, UTC) is the Bundle's ``timestamp`` and ``Provenance.recorded``.
    Raises :class:`ExportError` when the assessment is of another patient.
    """
    pid = history.patient.id
    if assessment.patient_id != pid:
        raise ExportError(
            f"the assessment is of patient {assessment.patient_id!r}, the history of {pid!r}"
        )
    when = (timestamp or datetime.now(UTC)).replace(microsecond=0)
    if history.assessed_on != assessment.assessed_on:  # statuses are read as of the assessment
        history = history.model_copy(update={"assessed_on": assessment.assessed_on})
    patient_res = _patient(history, identity)
    patient = ref(patient_res["id"])
    episode = _episode(history, kb, patient)
    episode_ref = ref(episode["id"])
    resources: list[Json] = [patient_res, episode]
    resources += [_condition(i, c, history, kb, patient) for i, c in enumerate(history.conditions)]
    trial_refs: dict[int, list[Json]] = {}
    for i, t in enumerate(history.treatments):
        if isinstance(t, Medication):
            steps = medication_statements(i, t, history, kb, episode_ref, patient)
            trial_refs[i] = [ref(s["id"]) for s in steps]
            resources += steps
        else:
            resources.append(procedure(i, t, history, kb, episode_ref, patient))
    resources += [
        current_medication_statement(i, c, history, kb, patient)
        for i, c in enumerate(history.current_medications)
    ]
    scored = {s.index: s for s in score_measurements(history, kb)}
    for i, m in enumerate(history.measurements):
        form_id = None
        if m.items is not None:
            form = questionnaire_response(i, m, history, kb, patient)
            form_id = form["id"]
            resources.append(form)
        resources.append(
            measurement_observation(i, m, scored.get(i), history, kb, patient, form_id)
        )
    resources += [lab_observation(i, x, history, kb, patient) for i, x in enumerate(history.labs)]
    resources += [pgx_observation(i, x, history, patient) for i, x in enumerate(history.pgx)]
    resources += pregnancy_observations(history, kb, patient)
    if history.staging_inputs is not None:
        resources += staging_input_observations(history.staging_inputs, history, patient)
    resources += [
        clinician_alert(i, a, history, patient) for i, a in enumerate(history.clinician_alerts)
    ]
    found = assessment_observations(assessment, pid, patient, trial_refs, episode_ref)
    resources += found
    resources.append(
        care_plan(assessment, kb, pid, patient, episode_ref, [ref(o["id"]) for o in found])
    )
    software = device(pid, assessment.kb_version)
    resources.append(software)
    targets = [ref(r["id"]) for r in resources]
    resources.append(provenance(pid, targets, assessment, software["id"], when))
    return {
        "resourceType": "Bundle",
        "id": resource_id(pid, "bundle"),
        "meta": {"lastUpdated": when.isoformat()},
        "type": "collection",
        "timestamp": when.isoformat(),
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources],
    }
