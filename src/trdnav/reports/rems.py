"""The esketamine REMS monitoring data of a course, one row per session: what the clinic copies
into the SPRAVATO REMS Patient Monitoring Form (date, dose, blood pressure before and after the
dose, sedation, dissociation, adverse events, time observed, whether the patient was fit to leave).

The rows come from :func:`trdnav.core.courses.rems.rems_rows`; this module writes them as CSV (a
header row, then one row per session, in session order) and as a printable HTML document. A value
not recorded is left empty in the CSV and shown as "not recorded" in the document: a blank on the
form is for the clinician to fill, never guessed here.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from trdnav.core.courses.model import Course
from trdnav.core.courses.results import RemsRow
from trdnav.knowledge.load import Knowledge
from trdnav.reports.course_doc import Refs, render_document

CSV_HEADER = (
    "session",
    "date",
    "dose_mg",
    "pre_dose_systolic_mmhg",
    "pre_dose_diastolic_mmhg",
    "max_post_dose_systolic_mmhg",
    "max_post_dose_diastolic_mmhg",
    "sedation_moaas_lowest",
    "dissociation_cadss_highest",
    "adverse_events",
    "observed_minutes",
    "discharge_criteria_met",
)
MISSING = "not recorded"


def _n(x: float | int | None) -> str:
    return "" if x is None else f"{x:g}"


def _yes_no(x: bool | None) -> str:
    return "" if x is None else ("yes" if x else "no")


def rems_csv(rows: Sequence[RemsRow]) -> str:
    """The rows as CSV: :data:`CSV_HEADER`, then one line per session (``\\r\\n`` line ends, as
    the csv module writes them); adverse events joined with ``; ``, empty cells for values not
    recorded."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_HEADER)
    for r in sorted(rows, key=lambda r: r.session):
        writer.writerow(
            (
                r.session,
                r.on.isoformat(),
                _n(r.dose_mg),
                _n(r.pre_systolic),
                _n(r.pre_diastolic),
                _n(r.max_post_systolic),
                _n(r.max_post_diastolic),
                _n(r.sedation),
                _n(r.dissociation),
                "; ".join(r.adverse_events),
                _n(r.observed_minutes),
                _yes_no(r.discharged_ok),
            )
        )
    return out.getvalue()


@dataclass(frozen=True)
class _Line:
    session: int
    on: date
    dose: str
    pre_bp: str
    post_bp: str
    sedation: str
    dissociation: str
    adverse_events: str
    observed: str
    discharge: str
    incomplete: bool


def _bp(s: int | None, d: int | None) -> str:
    if s is None and d is None:
        return MISSING
    return f"{_n(s) or '?'}/{_n(d) or '?'}"


def _line(r: RemsRow) -> _Line:
    values = {
        "dose": MISSING if r.dose_mg is None else f"{r.dose_mg:g} mg",
        "pre_bp": _bp(r.pre_systolic, r.pre_diastolic),
        "post_bp": _bp(r.max_post_systolic, r.max_post_diastolic),
        "sedation": MISSING if r.sedation is None else f"{r.sedation:g}",
        "dissociation": MISSING if r.dissociation is None else f"{r.dissociation:g}",
        "observed": MISSING if r.observed_minutes is None else f"{r.observed_minutes} min",
        "discharge": {None: MISSING, True: "yes", False: "no"}[r.discharged_ok],
    }
    return _Line(
        session=r.session,
        on=r.on,
        adverse_events="; ".join(r.adverse_events) or "none",
        incomplete=any(v == MISSING for v in values.values()),
        **values,
    )


def rems_html(
    course: Course,
    rows: Sequence[RemsRow],
    generated_on: date,
    kb: Knowledge | None = None,
    citations: Sequence[str] = (),
    clinic_name: str = "TRD Navigator",
) -> str:
    """The REMS monitoring data of ``course`` as one self-contained HTML document.

    ``citations`` are the bibliography keys of the protocol (the label and its REMS), listed as
    sources; with ``kb`` they are written out in full.
    """
    lines = [_line(r) for r in sorted(rows, key=lambda r: r.session)]
    return render_document(
        "course_rems.html",
        generated_on,
        clinic_name,
        doc_title="Esketamine REMS: patient monitoring data",
        course=course,
        lines=lines,
        incomplete=sum(1 for x in lines if x.incomplete),
        cites=tuple(citations),
        refs=Refs(kb),
        kb_version=kb.kb_version if kb is not None else None,
        missing=MISSING,
    )
