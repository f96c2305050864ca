"""The JSON API of courses under ``/api``: the same operations as the course pages.

Bodies are the course record's own models (:mod:`trdnav.core.courses.model`), validated by
:mod:`trdnav.web.course_ops` exactly as the forms are; errors have the API's one shape, a
course's ``version`` is its ETag. Replacing (``PUT``) needs ``If-Match: "<version>"`` (428
without it); the other changes send the ``version`` read in their body, as the forms do; a stale
version is refused with 412 and nothing stored.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from trdnav.core.courses import rems
from trdnav.core.courses.model import Course, SessionRecord
from trdnav.core.courses.results import (
    EligibilityDecision,
    OutcomeRate,
    RemsRow,
    SessionEvaluation,
)
from trdnav.core.safety import Finding
from trdnav.errors import InputError, Problem
from trdnav.storage import courses as store
from trdnav.storage import repository
from trdnav.web import course_ops, course_reports
from trdnav.web.api_http import (
    REF,
    ApiProblem,
    ApiRoute,
    IfMatch,
    JsonBody,
    PatientId,
    bearer_token,
    etag,
    expected_version,
    session_cookie,
)
from trdnav.web.api_models import error_responses
from trdnav.web.course_ops import Opened
from trdnav.web.deps import CurrentUser, KnowledgeDep, Reader, SessionDep, TodayDep, Writer
from trdnav.web.deps import client_ip as ip_of

router = APIRouter(
    prefix="/api",
    route_class=ApiRoute,
    dependencies=[Depends(bearer_token), Depends(session_cookie)],
    tags=["courses"],
)

CourseId = Annotated[str, Path(max_length=64, description="the course id (C-…)")]
M = TypeVar("M", bound=BaseModel)
READ = error_responses(401, 403, 404, 422)
WRITE = error_responses(401, 403, 404, 412, 415, 422)
REPLACE = error_responses(401, 403, 404, 412, 415, 422, 428)


class ApiOut(BaseModel):
    model_config = ConfigDict(frozen=True)


class CourseOut(ApiOut):
    version: int = Field(description="the course version, also its ETag")
    course: Course


class CourseListOut(ApiOut):
    patient_id: str
    items: list[CourseOut]


class EligibilityOut(ApiOut):
    version: int
    findings: list[Finding] = Field(description="the planner's safety screening for the option")
    decision: EligibilityDecision


class SessionOut(ApiOut):
    version: int
    record: SessionRecord
    evaluation: SessionEvaluation


class OutcomesOut(ApiOut):
    rates: list[OutcomeRate]


class CourseIn(ApiOut):
    model_config = ConfigDict(extra="forbid", frozen=True)
    protocol_id: str
    start: str = Field(description="YYYY-MM-DD")
    weight_kg: float | None = None


class ReviewIn(ApiOut):
    model_config = ConfigDict(extra="forbid", frozen=True)
    version: int = Field(description="the course version read (412 when someone saved since)")
    acknowledged: list[str] = Field(default=[], description="caution codes acknowledged")
    consent_on: str | None = None
    consent_note: str | None = None


class OverrideIn(ApiOut):
    model_config = ConfigDict(extra="forbid", frozen=True)
    version: int = Field(description="the course version read (412 when someone saved since)")
    code: str = Field(description="the contraindication's finding code")
    reason: str = Field(description="the written reason (at least 10 characters)")


class SessionIn(ApiOut):
    model_config = ConfigDict(extra="forbid", frozen=True)
    version: int = Field(description="the course version read (412 when someone saved since)")
    record: dict[str, Any] = Field(description="a SessionRecord without status and recorded_by")
    override_reason: str = Field(default="", description="overrides every block, with this reason")


class NoteIn(ApiOut):
    model_config = ConfigDict(extra="forbid", frozen=True)
    version: int = Field(description="the course version read (412 when someone saved since)")
    kind: str = Field(description="integration, health_coaching, follow_up, review or other")
    on: str = Field(description="YYYY-MM-DD")
    text: str


class RemsOut(ApiOut):
    course_id: str
    rows: list[RemsRow]


class CoursePutIn(ApiOut):
    model_config = ConfigDict(extra="forbid", frozen=True)
    plan_after: str | None = None
    plan_note: str | None = None
    status: str | None = Field(default=None, description="completed or stopped, to end it")
    rescheduled: dict[int, str] | None = Field(
        default=None, description="session number -> new date (YYYY-MM-DD), merged"
    )


def _doc(model: Any, what: str) -> dict[str, Any]:
    """The body's JSON Schema, inline (these small input models are not components)."""
    schema = TypeAdapter(model).json_schema(ref_template=REF)
    defs = schema.pop("$defs", None)
    if defs:  # pragma: no cover - a defect of this module, caught by test_openapi
        raise TypeError(f"{model.__name__}: an input model must not nest models")
    return {
        "requestBody": {
            "required": True,
            "description": what,
            "content": {"application/json": {"schema": schema}},
        }
    }


def _body(model: type[M], body: Any) -> M:
    return course_ops.validated(model, body)


def _open(request: Request, db: Any, kb: Any, course_id: str, user: CurrentUser) -> Opened:
    try:
        return course_ops.open_course(db, kb, course_id, user.who, ip_of(request))
    except store.CourseNotFoundError:
        raise ApiProblem(404, "course_not_found", f"no course {course_id!r}") from None


def _at(o: Opened, if_match: str | None) -> None:
    expected = expected_version(if_match, required=True)
    if expected is not None and expected != o.version:
        raise repository.StaleRecordError(o.course.id, expected, o.version)


def _at_version(o: Opened, version: int) -> None:
    if version != o.version:
        raise repository.StaleRecordError(o.course.id, version, o.version)


def _out(response: Response, course: Course, version: int) -> CourseOut:
    response.headers["ETag"] = etag(version)
    return CourseOut(version=version, course=course)


@router.get(
    "/patients/{patient_id}/courses",
    summary="A patient's courses",
    description="Newest start first, each with its version (its ETag).",
    response_model=CourseListOut,
    response_description="the patient's courses, with their versions",
    responses=READ,
)
def list_patient_courses(
    request: Request, patient_id: PatientId, db: SessionDep, user: Reader
) -> CourseListOut:
    if repository.patient_version(db, patient_id) is None:
        raise repository.PatientNotFoundError(patient_id)
    rows = store.list_courses(db, patient_id, user.who, ip_of(request))
    return CourseListOut(
        patient_id=patient_id, items=[CourseOut(version=v, course=c) for c, v in rows]
    )


@router.post(
    "/patients/{patient_id}/courses",
    summary="Plan a course",
    description="A planned course of the protocol; the id is made by the server (`Location`).",
    status_code=201,
    response_model=CourseOut,
    response_description="the course and its version (also the ETag)",
    responses=error_responses(401, 403, 404, 415, 422),
    openapi_extra=_doc(CourseIn, "the protocol, the start date and (ketamine) the weight"),
)
def create_course(
    request: Request,
    response: Response,
    patient_id: PatientId,
    db: SessionDep,
    kb: KnowledgeDep,
    user: Writer,
    body: JsonBody,
) -> CourseOut:
    data = _body(CourseIn, body)
    course, version = course_ops.create(
        db, kb, patient_id, data.model_dump(), user.who, ip_of(request)
    )
    response.headers["Location"] = f"/api/courses/{quote(course.id, safe='')}"
    return _out(response, course, version)


@router.get(
    "/courses/outcomes",
    summary="Clinic-level outcomes by treatment",
    description="Response and remission rates with counts and Wilson 95 % CIs.",
    response_model=OutcomesOut,
    response_description="the rates by treatment",
    responses=error_responses(401, 403),
)
def read_outcomes(
    request: Request, db: SessionDep, kb: KnowledgeDep, user: Reader, today: TodayDep
) -> OutcomesOut:
    return OutcomesOut(
        rates=list(course_reports.clinic_rates(db, kb, today, user.who, ip_of(request)))
    )


@router.get(
    "/courses/{course_id}",
    summary="Read a course and its version",
    description="The whole course record; `version` is also the `ETag`.",
    response_model=CourseOut,
    response_description="the course and its version (also the ETag)",
    responses=READ,
)
def read_course(
    request: Request,
    response: Response,
    course_id: CourseId,
    db: SessionDep,
    kb: KnowledgeDep,
    user: Reader,
) -> CourseOut:
    o = _open(request, db, kb, course_id, user)
    return _out(response, o.course, o.version)


@router.put(
    "/courses/{course_id}",
    summary="Change a course's plan, status or schedule",
    description='Requires `If-Match: "<version>"`. Sessions, eligibility and notes have their '
    "own operations.",
    response_model=CourseOut,
    response_description="the course and its version (also the ETag)",
    responses=REPLACE,
    openapi_extra=_doc(CoursePutIn, "the plan after the course, its end, rescheduled sessions"),
)
def change_course(
    request: Request,
    response: Response,
    course_id: CourseId,
    db: SessionDep,
    kb: KnowledgeDep,
    user: Writer,
    body: JsonBody,
    if_match: IfMatch = None,
) -> CourseOut:
    o = _open(request, db, kb, course_id, user)
    _at(o, if_match)
    data = _body(CoursePutIn, body)
    ip = ip_of(request)
    course, version = o.course, o.version
    if data.rescheduled:
        moved = course_ops.validated(
            Course,
            {**course.model_dump(), "rescheduled": {**course.rescheduled, **data.rescheduled}},
            "",
        ).rescheduled
        course = course.model_copy(update={"rescheduled": moved})
    plan = {"plan_after": data.plan_after, "plan_note": data.plan_note, "status": data.status}
    course, version = course_ops.set_plan(
        db, Opened(course, version, o.protocol), plan, user.who, ip
    )
    return _out(response, course, version)


@router.get(
    "/courses/{course_id}/eligibility",
    summary="The eligibility decision",
    description="The planner's safety findings for the protocol's option, and the engine's "
    "decision.",
    response_model=EligibilityOut,
    response_description="the findings shown and the engine's decision",
    responses=READ,
)
def read_eligibility(
    request: Request,
    course_id: CourseId,
    db: SessionDep,
    kb: KnowledgeDep,
    user: Reader,
    today: TodayDep,
) -> EligibilityOut:
    o = _open(request, db, kb, course_id, user)
    findings = course_ops.findings_for(db, kb, o, today, user.who, ip_of(request))
    return EligibilityOut(
        version=o.version, findings=findings, decision=course_ops.decide(o, findings)
    )


@router.post(
    "/courses/{course_id}/eligibility",
    summary="Record the eligibility review (cautions, consent); optionally start",
    description="Send the course `version` read. With `?start=true` the course becomes "
    "active when the engine says it can start (422 with the reasons otherwise).",
    response_model=EligibilityOut,
    response_description="the findings shown and the engine's decision",
    responses=WRITE,
    openapi_extra=_doc(ReviewIn, "the caution codes acknowledged and the consent"),
)
def post_eligibility(
    request: Request,
    response: Response,
    course_id: CourseId,
    db: SessionDep,
    kb: KnowledgeDep,
    user: Writer,
    today: TodayDep,
    body: JsonBody,
    start: bool = False,
) -> EligibilityOut:
    o = _open(request, db, kb, course_id, user)
    data = _body(ReviewIn, body)
    _at_version(o, data.version)
    ip = ip_of(request)
    findings = course_ops.findings_for(db, kb, o, today, user.who, ip)
    consent = {"consent_on": data.consent_on, "consent_note": data.consent_note}
    now = datetime.now(UTC)
    course, version = course_ops.review(
        db, o, findings, data.acknowledged, consent, user.who, now, ip
    )
    o = Opened(course, version, o.protocol)
    if start:
        course, version = course_ops.start(db, o, findings, user.who, ip)
        o = Opened(course, version, o.protocol)
    response.headers["ETag"] = etag(o.version)
    return EligibilityOut(
        version=o.version, findings=findings, decision=course_ops.decide(o, findings)
    )


@router.post(
    "/courses/{course_id}/overrides",
    summary="Override a contraindication with a written reason (audited)",
    description="The reason needs at least 10 characters; audited as `course_override`.",
    response_model=CourseOut,
    response_description="the course and its version (also the ETag)",
    responses=WRITE,
    openapi_extra=_doc(OverrideIn, "the finding code and the reason"),
)
def post_override(
    request: Request,
    response: Response,
    course_id: CourseId,
    db: SessionDep,
    kb: KnowledgeDep,
    user: Writer,
    today: TodayDep,
    body: JsonBody,
) -> CourseOut:
    o = _open(request, db, kb, course_id, user)
    data = _body(OverrideIn, body)
    _at_version(o, data.version)
    ip = ip_of(request)
    findings = course_ops.findings_for(db, kb, o, today, user.who, ip)
    course, version = course_ops.override(
        db, o, findings, data.code, data.reason, user.who, datetime.now(UTC), ip
    )
    return _out(response, course, version)


@router.post(
    "/courses/{course_id}/sessions",
    summary="Record a session",
    description="The protocol's thresholds are applied: a block that is not overridden stores "
    "the session as `deferred`. A session number recorded already as done is refused (422).",
    status_code=201,
    response_model=SessionOut,
    response_description="the record as stored (done or deferred) and the threshold evaluation",
    responses=WRITE,
    openapi_extra=_doc(SessionIn, "the session record and an optional override reason"),
)
def post_session(
    request: Request,
    response: Response,
    course_id: CourseId,
    db: SessionDep,
    kb: KnowledgeDep,
    user: Writer,
    body: JsonBody,
) -> SessionOut:
    o = _open(request, db, kb, course_id, user)
    data = _body(SessionIn, body)
    _at_version(o, data.version)
    for key in ("status", "recorded_by"):
        if key in data.record:
            raise InputError([Problem(f"record.{key}", "not_allowed", "set by the server")])
    try:
        result = course_ops.record_session(
            db, o, data.record, user.who, datetime.now(UTC), data.override_reason, ip_of(request)
        )
    except InputError as exc:
        raise InputError(
            [Problem(f"record.{p.loc}", p.code, p.message) for p in exc.problems]
        ) from None
    response.headers["ETag"] = etag(result.version)
    return SessionOut(version=result.version, record=result.record, evaluation=result.evaluation)


@router.post(
    "/courses/{course_id}/notes",
    summary="Add an integration, health-coaching or follow-up note",
    description="The note is linked to the course; `by` is the signed-in user.",
    status_code=201,
    response_model=CourseOut,
    response_description="the course and its version (also the ETag)",
    responses=WRITE,
    openapi_extra=_doc(NoteIn, "the note and the course version read (`by` is the user)"),
)
def post_note(
    request: Request,
    response: Response,
    course_id: CourseId,
    db: SessionDep,
    kb: KnowledgeDep,
    user: Writer,
    body: JsonBody,
) -> CourseOut:
    o = _open(request, db, kb, course_id, user)
    data = _body(NoteIn, body)
    _at_version(o, data.version)
    note = data.model_dump(exclude={"version"})
    course, version = course_ops.add_note(db, o, note, user.who, ip_of(request))
    return _out(response, course, version)


@router.get(
    "/courses/{course_id}/rems",
    summary="The esketamine REMS monitoring data",
    description="One row per session: dose, blood pressure before and highest after, sedation "
    "(MOAA/S, lowest), dissociation (CADSS, highest), adverse events, observation, discharge. "
    "The page `/courses/{course_id}/rems.csv` gives the same rows as CSV.",
    response_model=RemsOut,
    response_description="the REMS rows, one per session",
    responses=READ,
)
def read_rems(
    request: Request, course_id: CourseId, db: SessionDep, kb: KnowledgeDep, user: Reader
) -> RemsOut:
    o = _open(request, db, kb, course_id, user)
    if o.course.treatment != "esketamine":
        raise ApiProblem(404, "not_esketamine", "REMS data exist for esketamine courses only")
    return RemsOut(course_id=o.course.id, rows=list(rems.rems_rows(o.protocol, o.course)))
