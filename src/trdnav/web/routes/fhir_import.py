"""``POST /api/fhir/import`` and the page ``/fhir/import``: one patient's FHIR R4 Bundle (or
NDJSON) into the clinic database.

Same conventions as the other API writes (:mod:`trdnav.web.routes.api`): a bearer token, or the
browser session with its CSRF header; a writer's role; the API's one error shape. The body is
refused with 413 above :data:`~trdnav.interop.fhir.bundle.MAX_BYTES` before it is read whole;
unusable input is 422 with its problems; a usable one is stored (history and identity) and the
answer is the stored patient id, whether the record was created, updated or left unchanged (a
re-import of the same data), and the mapping report. The page uploads a file (multipart form,
with the form's CSRF token) and shows the same report, or the problems.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from trdnav.errors import InputError, Problem
from trdnav.interop.fhir.bundle import MAX_BYTES, decode_fhir
from trdnav.interop.fhir.import_ import import_fhir
from trdnav.interop.fhir.report import ImportReport
from trdnav.interop.fhir.store import Action, store_import
from trdnav.web.api_http import ApiProblem, ApiRoute, bearer_token, session_cookie
from trdnav.web.api_models import ErrorOut, error_responses
from trdnav.web.deps import KnowledgeDep, SessionDep, TodayDep, Writer, client_ip
from trdnav.web.pages import render

api = APIRouter(
    prefix="/api",
    route_class=ApiRoute,
    dependencies=[Depends(bearer_token), Depends(session_cookie)],
)
MEDIA_TYPES = (
    "application/json",
    "application/fhir+json",
    "application/x-ndjson",
    "application/fhir+ndjson",
    "application/ndjson",
)


class FhirImportOut(BaseModel):
    model_config = ConfigDict(frozen=True)

    patient_id: str = Field(description="the stored patient's clinic id (MRN, else the FHIR id)")
    version: int = Field(description="the record's version (its ETag)")
    action: Action = Field(description="created, updated, or unchanged (same data again)")
    identity_version: int = Field(description="version of the stored identity (0: none)")
    matched_by_mrn: bool = Field(
        description="true when the clinic already had this MRN under another patient id"
    )
    report: ImportReport


def _too_large(size: int | None = None) -> ApiProblem:
    shown = f" ({size / 1_048_576:.1f} MiB)" if size is not None else ""
    return ApiProblem(
        413,
        "too_large",
        f"the body{shown} is above the import's limit of {MAX_BYTES // 1_048_576} MiB: "
        "send one patient at a time",
    )


async def fhir_body(request: Request) -> Any:
    """The decoded body, refused (413) above the size limit before it is read whole."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media and media not in MEDIA_TYPES:
        raise ApiProblem(415, "unsupported_media_type", "send application/fhir+json (or NDJSON)")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BYTES:
        raise _too_large(int(declared))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BYTES:
            raise _too_large()
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        raise InputError([Problem("", "body_missing", "send a FHIR Bundle as the body")])
    return decode_fhir(raw)


FhirBody = Annotated[Any, Depends(fhir_body)]
_TOO_LARGE: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorOut, "description": "the body is above the size limit"}
}


@api.post(
    "/fhir/import",
    tags=["fhir"],
    summary="Import a patient from a FHIR R4 Bundle",
    description="A Bundle (collection, transaction, batch, searchset), one resource or NDJSON "
    "of one patient: Patient, Condition, MedicationRequest/Statement/Dispense, Procedure, "
    "Observation, QuestionnaireResponse. The history is stored whole (replacing the record) "
    "with the patient's identity; the report lists every resource mapped or not, and each "
    "assumption. Importing the same data again changes nothing (`action: unchanged`). "
    "docs/fhir.md describes the mapping.",
    response_model=FhirImportOut,
    response_description="the stored patient, its version and the mapping report",
    responses={**error_responses(401, 403, 415, 422), **_TOO_LARGE},
)
def import_bundle(
    request: Request,
    db: SessionDep,
    kb: KnowledgeDep,
    user: Writer,
    today: TodayDep,
    body: FhirBody,
) -> FhirImportOut:
    result = import_fhir(body, kb, today)
    stored = store_import(db, result, kb, today, user.who, ip=client_ip(request))
    return FhirImportOut(
        patient_id=stored.patient_id,
        version=stored.version,
        action=stored.action,
        identity_version=stored.identity_version,
        matched_by_mrn=stored.matched_by_mrn,
        report=result.report,
    )


# --- the upload page ----------------------------------------------------------------------------

router = APIRouter()
PAGE = "fhir/import.html"


def _page(request: Request, status: int = 200, **context: Any) -> Response:
    context.setdefault("limit_mib", MAX_BYTES // 1_048_576)
    return render(request, PAGE, context, status_code=status)


def declared_size(request: Request) -> int | None:
    """Refuse (413) an upload declared above the limit before its form is parsed (this runs
    before the role and CSRF check, which reads the form)."""
    declared = request.headers.get("content-length", "")
    size = int(declared) if declared.isdigit() else None
    if size is not None and size > MAX_BYTES:
        raise HTTPException(413, _too_large(size).message)
    return size


DeclaredSize = Annotated[int | None, Depends(declared_size)]


@router.get("/fhir/import", include_in_schema=False)
def import_page(request: Request, user: Writer) -> Response:
    return _page(request)


@router.post("/fhir/import", include_in_schema=False)
async def import_upload(
    request: Request,
    size: DeclaredSize,
    db: SessionDep,
    kb: KnowledgeDep,
    user: Writer,
    today: TodayDep,
) -> Response:
    form = await request.form()
    try:
        return await _imported(request, form.get("bundle"), db, kb, user.who, today)
    finally:
        await form.close()  # the upload's temporary file


def _import_and_store(
    raw: bytes, filename: str | None, db: Any, kb: Any, who: str, today: Any, ip: str | None
) -> tuple[Any, Any]:
    result = import_fhir(decode_fhir(raw, filename), kb, today)
    return result, store_import(db, result, kb, today, who, ip=ip)


async def _imported(
    request: Request, upload: Any, db: Any, kb: Any, who: str, today: Any
) -> Response:
    try:
        if not isinstance(upload, UploadFile):
            raise InputError([Problem("bundle", "file_missing", "choose a FHIR file to import")])
        raw = await upload.read(MAX_BYTES + 1)
        if len(raw) > MAX_BYTES:
            raise InputError([Problem("", "too_large", _too_large().message)])
        # parsing, mapping and the database write run in the thread pool, never on the event loop
        result, stored = await run_in_threadpool(
            _import_and_store, raw, upload.filename, db, kb, who, today, client_ip(request)
        )
    except InputError as exc:
        status = 413 if any(p.code == "too_large" for p in exc.problems) else 422
        return _page(request, status, problems=list(exc.problems))
    return _page(
        request,
        stored=stored,
        identity=result.identity,
        report=result.report,
        mapped_count=len({m.resource for m in result.report.mapped}),
    )


router.include_router(api)
