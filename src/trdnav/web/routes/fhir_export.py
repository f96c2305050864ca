"""``GET /api/patients/{patient_id}/$everything``: the patient as a FHIR R4 Bundle (collection).

The same authentication, roles and error shape as the JSON API (:mod:`trdnav.web.routes.api`):
a bearer token or a session, any role that may read records, 404 ``patient_not_found`` for an
unknown patient. An export is a read of the record: the read is audited (``read``, and ``read``
of the identity), and so is the export itself (``export_fhir``). The Bundle is the one
``trdnav fhir export --patient`` writes: the history, its assessment as of today and the plan,
with the patient's name and identifiers when they are recorded (docs/fhir.md, "Export").
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from trdnav.interop.fhir.export import export_fhir
from trdnav.storage import records
from trdnav.storage.identity import load_identity
from trdnav.storage.repository import record_audit
from trdnav.web.api_http import ApiRoute, PatientId, bearer_token, session_cookie
from trdnav.web.api_models import error_responses
from trdnav.web.deps import KnowledgeDep, Reader, SessionDep, TodayDep, client_ip

FHIR_JSON = "application/fhir+json"
EXPORT_ACTION = "export_fhir"


class FhirEntryOut(BaseModel):
    """One entry of the Bundle: a FHIR R4 resource and its ``urn:uuid`` full URL."""

    model_config = ConfigDict(extra="allow")

    fullUrl: str = Field(description="urn:uuid:<resource id>")
    resource: dict[str, Any] = Field(description="a FHIR R4 resource (resourceType, id, …)")


class FhirBundleOut(BaseModel):
    """A FHIR R4 Bundle of type collection (the shape only: the resources are FHIR's own)."""

    model_config = ConfigDict(extra="allow")

    resourceType: Literal["Bundle"]
    id: str
    type: Literal["collection"]
    timestamp: str
    entry: list[FhirEntryOut]


router = APIRouter(
    prefix="/api",
    route_class=ApiRoute,
    dependencies=[Depends(bearer_token), Depends(session_cookie)],
)


@router.get(
    "/patients/{patient_id}/$everything",
    tags=["fhir"],
    summary="Export a patient as a FHIR R4 Bundle",
    description="A Bundle of type `collection`: Patient, Condition, MedicationStatement, "
    "Procedure, Observation (scores with LOINC codes and bands, labs, the assessment), "
    "QuestionnaireResponse, RiskAssessment, CarePlan (the ranked plan), Device and Provenance. "
    "Assessed as of today; audited as a read and as an export.",
    response_class=JSONResponse,
    response_model=FhirBundleOut,
    response_description=f"the FHIR Bundle (sent as {FHIR_JSON})",
    responses={
        200: {"content": {FHIR_JSON: {"schema": {"$ref": "#/components/schemas/FhirBundleOut"}}}},
        **error_responses(401, 403, 404, 422),
    },
)
def everything(
    request: Request,
    patient_id: PatientId,
    db: SessionDep,
    kb: KnowledgeDep,
    user: Reader,
    today: TodayDep,
) -> JSONResponse:
    ip = client_ip(request)
    record = records.load(db, patient_id, kb, today, user.who, ip)
    identity = load_identity(db, patient_id, user=user.who, ip=ip)
    history = record.history.model_copy(update={"assessed_on": record.assessment.assessed_on})
    bundle = export_fhir(history, record.assessment, kb, identity)
    record_audit(db, user.who, EXPORT_ACTION, "patient", patient_id, ip)
    db.commit()
    return JSONResponse(bundle, media_type=FHIR_JSON)
