"""Response models of the JSON API (``/api``), so the OpenAPI document describes every answer.

Request bodies are *not* defined here: they are the history format's own models
(:mod:`trdnav.core.history` — ``History``, the ``Treatment`` union, ``Measurement``, ``Lab``,
``PgxResult``, ``CurrentMedication``), validated by the code that validates history files. The
models below only wrap what the core and the store already compute (``History``, ``Alert``,
``Assessment``, the knowledge base's ``Instrument`` and ``Drug``); none re-defines a clinical
concept.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from trdnav.core.alerts import Alert
from trdnav.core.history import History
from trdnav.identity import PatientIdentity
from trdnav.knowledge.schema import CrisisResource, Drug, Instrument


class Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class ProblemOut(Out):
    loc: str = Field(description="field path in the history format, e.g. treatments[0].doses[0]")
    code: str = Field(description="stable machine-readable code of the problem")
    message: str


class ErrorDetail(Out):
    code: str = Field(description="stable code, e.g. invalid_input, stale_record, forbidden")
    message: str
    problems: list[ProblemOut] = Field(default=[], description="one per invalid field")


class ErrorOut(Out):
    """The one error shape of the API."""

    error: ErrorDetail


class DueItemOut(Out):
    label: str
    status: str
    due_on: date | None


class PatientRowOut(Out):
    """One row of the patient list: the summary the core computed when the record was saved."""

    id: str
    as_of: date | None = Field(description="the day the summary was computed as of")
    trd_status: str | None = Field(description="trd, not_trd or indeterminate")
    failed_trials: int | None = Field(description="failed adequate antidepressant trials")
    stage_label: str | None
    last_phq9: int | None
    last_phq9_date: date | None
    phq9_trend: list[int] = Field(description="the last PHQ-9 totals, oldest first")
    open_alerts: int = Field(description="alerts not yet acknowledged")
    suicide_risk: bool = Field(description="the assessment has a suicide-risk alert")
    suicide_risk_open: bool = Field(description="a suicide-risk alert is not yet acknowledged")
    overdue: list[DueItemOut] = Field(description="measures past their due date")


class PatientListOut(Out):
    items: list[PatientRowOut] = Field(description="suicide-risk first, then by next due date")
    total: int = Field(description="patients matching the search and filter")
    limit: int
    offset: int


class PatientRecordOut(Out):
    """A stored history in the history format, with the version to send back in ``If-Match``."""

    id: str
    version: int = Field(description="bumped by every save; also sent as the ETag")
    history: History
    identity: PatientIdentity | None = Field(
        default=None,
        description="name, date of birth, MRN and identifiers: only with `with_identity=true` "
        "(and when recorded); an audited read",
    )


class AcknowledgementOut(Out):
    by: str = Field(description="username of who acknowledged the alert")
    at: datetime


class AlertOut(Out):
    key: str = Field(description="stable key of the alert (for acknowledging it)")
    alert: Alert
    acknowledgement: AcknowledgementOut | None = None


class AlertsOut(Out):
    patient_id: str
    alerts: list[AlertOut] = Field(description="suicide-risk alerts first")
    crisis_resources: list[CrisisResource]


class SummaryOut(Out):
    """The essentials of the assessment after a change, as of today."""

    as_of: date
    trd_status: str
    failed_trials: int
    stage_label: str | None
    last_phq9: int | None
    last_phq9_date: date | None
    suicide_risk: bool
    alerts: list[AlertOut]
    next_due: date | None
    due_items: list[DueItemOut]


class ChangeOut(Out):
    """The result of a change: the record's new version and its assessment summary."""

    patient_id: str
    version: int = Field(description="the new version (also sent as the ETag)")
    item: str | None = Field(
        default=None, description="history path of the item added, replaced or removed"
    )
    summary: SummaryOut


class InstrumentsOut(Out):
    kb_version: str
    instruments: list[Instrument]


class DrugsOut(Out):
    kb_version: str
    drugs: list[Drug]


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route: each error status it can return, with the error model."""
    return {status: {"model": ErrorOut, "description": ERRORS[status]} for status in statuses}


ERRORS = {
    401: "no credentials, an unknown or revoked token, or an expired session",
    403: "the role cannot do this (read-only), or a session write without X-CSRF-Token",
    404: "no such patient (or item)",
    409: "a patient with this id exists already",
    412: "If-Match names an older version: someone saved the record since (nothing stored)",
    415: "the body is not JSON",
    422: "invalid input: each problem names its field path (nothing stored)",
    428: "If-Match is required for this change",
}
