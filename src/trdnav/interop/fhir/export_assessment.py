"""The assessment as FHIR: Observations coded in our assessment code system (TRD status, failed
adequate trials, one per staging method), the ranked plan as a CarePlan, and the Device and
Provenance that name the software and knowledge-base version."""

from __future__ import annotations

from datetime import datetime

from trdnav import __version__
from trdnav.core.assessment import Assessment
from trdnav.core.staging.result import StageResult
from trdnav.interop.fhir.export_codes import (
    CS_ASSESSMENT,
    CS_OPTION,
    CS_OPTION_STATUS,
    CS_RECORD_KIND,
    CS_STAGING_ITEM,
    CS_TRD_STATUS,
    DATA_ABSENT,
    EXT_KB_VERSION,
    EXT_OPTION_RANK,
    EXT_OPTION_STATUS,
    PROVENANCE_PARTICIPANT,
    RXNORM,
    Json,
    coding,
    concept,
    ext,
    iso,
    number,
    ref,
    resource_id,
    slug,
)
from trdnav.knowledge.load import Knowledge

TRD_STATUS_TEXT = {
    "trd": "treatment-resistant depression",
    "not_trd": "not treatment-resistant",
    "indeterminate": "indeterminate (information missing)",
}
# Option status -> CarePlan.activity.detail.status (a required FHIR code); ours is kept in an
# extension and in the status reason.
ACTIVITY_STATUS = {
    "recommended": "not-started",
    "consider": "not-started",
    "caution": "not-started",
    "not_indicated_now": "on-hold",
    "already_tried": "completed",
    "contraindicated": "cancelled",
}


def _assessment_obs(
    pid: str, key: str, code: str, display: str, a: Assessment, patient: Json
) -> Json:
    return {
        "resourceType": "Observation",
        "id": resource_id(pid, f"assessment/{key}"),
        "status": "final",
        "category": [concept(coding(CS_RECORD_KIND, "assessment", "TRD Navigator assessment"))],
        "code": concept(coding(CS_ASSESSMENT, code, display), text=display),
        "subject": patient,
        "effectiveDateTime": iso(a.assessed_on),
        "method": concept(text=f"TRD Navigator {a.app_version}, knowledge base {a.kb_version}"),
    }


def assessment_observations(
    a: Assessment,
    pid: str,
    patient: Json,
    trial_refs: dict[int, list[Json]],
    episode_ref: Json,
) -> list[Json]:
    """TRD status, failed adequate trials (``derivedFrom`` the trials counted) and each staging
    method's result; ``effectiveDateTime`` is the assessment's as-of date."""
    trd = a.trd
    status = _assessment_obs(pid, "trd-status", "trd-status", "TRD status", a, patient)
    status["valueCodeableConcept"] = concept(
        coding(CS_TRD_STATUS, trd.status, TRD_STATUS_TEXT.get(trd.status, trd.status)),
        text=TRD_STATUS_TEXT.get(trd.status, trd.status),
    )
    status["focus"] = [episode_ref]
    notes = [e.message for e in trd.explanations]
    notes += [f"flag: {f.replace('_', ' ')}" for f in trd.flags]
    notes += [f"missing: {m}" for m in trd.missing]
    if notes:
        status["note"] = [{"text": n} for n in notes]
    counted = [v for v in a.trials if v.counts_as_failure]
    failed = _assessment_obs(
        pid,
        "failed-adequate-trials",
        "failed-adequate-trials",
        "Failed adequate trials",
        a,
        patient,
    )
    failed["valueInteger"] = trd.failed_adequate_trials
    failed["focus"] = [episode_ref]
    derived = [r for v in counted for r in trial_refs.get(v.index, [])[:1]]
    if derived:
        failed["derivedFrom"] = derived
    failed["component"] = [
        {
            "code": concept(
                coding(CS_ASSESSMENT, "failed-drug", "Failed drug"), text="failed drug"
            ),
            "valueString": drug,
        }
        for drug in trd.failed_drugs
    ] + [
        {
            "code": concept(
                coding(CS_ASSESSMENT, "failed-class", "Failed class"), text="failed class"
            ),
            "valueString": cls,
        }
        for cls in trd.failed_classes
    ]
    if not failed["component"]:
        del failed["component"]
    out = [status, failed]
    for method, result in a.staging.items():
        out.append(_stage_obs(pid, method, result, a, patient, episode_ref, status["id"]))
    return out


def _component(code: str, display: str, value: Json) -> Json:
    return {"code": concept(coding(CS_STAGING_ITEM, code, display), text=display), **value}


def _stage_obs(
    pid: str,
    method: str,
    r: StageResult,
    a: Assessment,
    patient: Json,
    episode_ref: Json,
    status_id: str,
) -> Json:
    obs = _assessment_obs(pid, f"staging/{method}", f"staging-{method}", r.name, a, patient)
    obs["focus"] = [episode_ref]
    obs["derivedFrom"] = [ref(status_id)]
    if r.score is not None:
        obs["valueQuantity"] = {"value": number(r.score), "unit": "{score}"}
    elif r.stage is not None:
        obs["valueInteger"] = r.stage
    elif r.label is not None:
        obs["valueString"] = r.label
    else:
        obs["dataAbsentReason"] = concept(coding(DATA_ABSENT, "unknown", "Unknown"))
    if r.band:
        obs["interpretation"] = [
            concept(coding(CS_STAGING_ITEM, slug(r.band), r.band), text=r.band)
        ]
    comps: list[Json] = []
    if r.stage is not None:
        comps.append(_component("stage", "stage", {"valueInteger": r.stage}))
    if r.label is not None:
        comps.append(_component("label", "label", {"valueString": r.label}))
    if r.band is not None:
        comps.append(_component("band", "band", {"valueString": r.band}))
    for item in r.items:
        shown = (
            item.value if item.points is None else f"{item.value} ({number(item.points)} points)"
        )
        comps.append(
            _component(f"item-{item.item}", item.item.replace("_", " "), {"valueString": shown})
        )
    if comps:
        obs["component"] = comps
    notes = [*r.notes, *(f"missing: {m}" for m in r.missing)]
    if not r.verified:
        notes.append("this method's rules are not yet verified in their source")
    if notes:
        obs["note"] = [{"text": n} for n in notes]
    return obs


def care_plan(
    a: Assessment, kb: Knowledge, pid: str, patient: Json, episode_ref: Json, info: list[Json]
) -> Json:
    """The ranked plan: one activity per option, rank 1 first, with status and reasons."""
    activities: list[Json] = []
    for o in a.options:
        detail: Json = {
            "extension": [
                ext(EXT_OPTION_RANK, "Integer", o.rank),
                ext(EXT_OPTION_STATUS, "Code", o.status),
            ],
            "code": concept(coding(CS_OPTION, o.id, o.name), text=o.name),
            "status": ACTIVITY_STATUS[o.status],
            "statusReason": concept(
                coding(CS_OPTION_STATUS, o.status, o.status.replace("_", " ")),
                text=o.status.replace("_", " "),
            ),
            "doNotPerform": o.status == "contraindicated",
            "description": f"{o.line}. {o.summary_plain}".strip(),
        }
        if o.reasons:
            detail["reasonCode"] = [concept(text=r) for r in o.reasons]
        drugs = [kb.drugs[d] for d in o.drugs if d in kb.drugs]
        if len(drugs) == 1 and drugs[0].rxnorm:
            detail["productCodeableConcept"] = concept(
                coding(RXNORM, drugs[0].rxnorm, drugs[0].name), text=drugs[0].name
            )
        elif drugs:
            detail["productCodeableConcept"] = concept(text=", ".join(d.name for d in drugs))
        activities.append({"detail": detail})
    plan: Json = {
        "resourceType": "CarePlan",
        "id": resource_id(pid, "plan"),
        "extension": [ext(EXT_KB_VERSION, "String", a.kb_version)],
        "status": "active",
        "intent": "proposal",
        "title": "TRD Navigator: ranked next-step options",
        "description": a.disclaimer,
        "subject": patient,
        "created": iso(a.assessed_on),
        "addresses": [episode_ref],
        "supportingInfo": info,
    }
    if activities:
        plan["activity"] = activities
    return plan


def device(pid: str, kb_version: str) -> Json:
    return {
        "resourceType": "Device",
        "id": resource_id(pid, "device"),
        "deviceName": [{"name": "TRD Navigator", "type": "manufacturer-name"}],
        "type": concept(text="clinical decision support software (not a medical device)"),
        "version": [
            {"type": concept(text="software"), "value": __version__},
            {"type": concept(text="knowledge base"), "value": kb_version},
        ],
    }


def provenance(
    pid: str, targets: list[Json], a: Assessment, device_id: str, recorded: datetime
) -> Json:
    return {
        "resourceType": "Provenance",
        "id": resource_id(pid, "provenance"),
        "extension": [ext(EXT_KB_VERSION, "String", a.kb_version)],
        "target": targets,
        "occurredDateTime": iso(a.assessed_on),
        "recorded": recorded.isoformat(),
        "agent": [
            {
                "type": concept(coding(PROVENANCE_PARTICIPANT, "assembler", "Assembler")),
                "who": {
                    **ref(device_id),
                    "display": f"TRD Navigator {__version__} (knowledge base {a.kb_version})",
                },
            }
        ],
        "entity": [
            {
                "role": "source",
                "what": {"display": f"TRD Navigator knowledge base {a.kb_version}"},
            }
        ],
    }
