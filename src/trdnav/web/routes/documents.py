"""The printable treatment summary (HTML) and its PDF: what a clinic sends with a prior
authorisation request for rTMS or esketamine.

The document is self-contained (its stylesheet and the SVG charts are inline), so it is served
with a content security policy of its own that allows no script at all and inline styles only.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from trdnav.core.measures import score_measurements
from trdnav.identity import PatientIdentity
from trdnav.knowledge.load import Knowledge
from trdnav.reports.chart import default_instrument, render_chart
from trdnav.reports.summary import render_summary_html
from trdnav.reports.timeline import render_timeline_svg
from trdnav.storage import identity as identities
from trdnav.storage import records
from trdnav.storage.repository import record_audit
from trdnav.web.deps import KnowledgeDep, Reader, SessionDep, SettingsDep, TodayDep, client_ip
from trdnav.web.pdf_processes import render_pdf_in_child

router = APIRouter(include_in_schema=False)

DOCUMENT_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
)


def summary_document(
    record: records.Record,
    kb: Knowledge,
    clinic_name: str,
    identity: PatientIdentity | None = None,
) -> str:
    a = record.assessment
    history = record.history.model_copy(update={"assessed_on": a.assessed_on})
    scored = score_measurements(history, kb)
    instrument = default_instrument(scored)
    chart = None
    if instrument is not None:
        suicide = [x for x in a.alerts if x.code == "suicide_risk"]
        try:
            chart = render_chart(history, scored, suicide, kb, instrument, "svg").decode()
        except ValueError:
            chart = None
    timeline = render_timeline_svg(history, kb, a.assessed_on)
    return render_summary_html(
        history,
        a,
        kb,
        chart,
        timeline,
        generated_on=a.assessed_on,
        clinic_name=clinic_name,
        identity=identity,
    )


@router.get("/patients/{patient_id}/summary")
def summary_page(
    request: Request,
    patient_id: str,
    db: SessionDep,
    kb: KnowledgeDep,
    settings: SettingsDep,
    user: Reader,
    today: TodayDep,
) -> Response:
    record = records.load(db, patient_id, kb, today, user.who, client_ip(request))
    identity = identities.load_identity(db, patient_id, user=user.who, ip=client_ip(request))
    html = summary_document(record, kb, settings.clinic_name, identity)
    return HTMLResponse(html, headers={"Content-Security-Policy": DOCUMENT_CSP})


@router.get("/patients/{patient_id}/summary.pdf")
def summary_pdf(
    request: Request,
    patient_id: str,
    db: SessionDep,
    kb: KnowledgeDep,
    settings: SettingsDep,
    user: Reader,
    today: TodayDep,
) -> Response:
    record = records.load(db, patient_id, kb, today, user.who, client_ip(request))
    identity = identities.load_identity(db, patient_id, user=user.who, ip=client_ip(request))
    pdf = render_pdf_in_child(summary_document(record, kb, settings.clinic_name, identity))
    record_audit(db, user.who, "export_pdf", "patient", patient_id, client_ip(request))
    db.commit()
    safe_id = re.sub(r"[^A-Za-z0-9_-]", "_", patient_id)[:60]
    name = f"trd-summary-{safe_id}-{today.isoformat()}.pdf"
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
