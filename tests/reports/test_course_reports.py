"""Course reports: the per-course chart (SVG), the course summary (HTML, PDF), the esketamine REMS
monitoring data (CSV, HTML) and the clinic outcomes (HTML, JSON).

The courses are built here with the contract models; the schedule and the threshold evaluations
stand in for the course engine's (the reports only present them). Regenerate the golden HTML after
an intended change with ``TRDNAV_UPDATE_GOLDEN=1`` and review the diff.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import xml.etree.ElementTree as ET
from datetime import date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pypdf import PdfReader

from tests.builders import a_history
from trdnav.core.assessment import Assessment, assess
from trdnav.core.courses.model import (
    Acknowledgement,
    AdverseEvent,
    Course,
    CourseNote,
    Eligibility,
    Override,
    Scale,
    SessionRecord,
    Vitals,
)
from trdnav.core.courses.results import (
    CourseFinding,
    DoseCalculation,
    OutcomeRate,
    PlannedSession,
    Proportion,
    RemsRow,
    SessionEvaluation,
)
from trdnav.core.history import History
from trdnav.knowledge.load import Knowledge
from trdnav.reports.course_chart import draw_course_chart
from trdnav.reports.course_summary import render_course_summary_html, render_course_summary_pdf
from trdnav.reports.outcomes import format_rate, outcomes_json, render_outcomes_html
from trdnav.reports.rems import CSV_HEADER, rems_csv, rems_html

ROOT = Path(__file__).parents[2]
GOLDEN = ROOT / "tests" / "golden" / "courses"
GENERATED_ON = date(2024, 5, 2)
SVG = "{http://www.w3.org/2000/svg}"
CLINIC = "Riverside Mood Clinic"


def _at(d: date, h: int = 10, m: int = 0) -> datetime:
    return datetime(d.year, d.month, d.day, h, m)


def _vitals(d: date, sys_: int, dia: int, minutes: int | None = None, h: int = 10) -> Vitals:
    at = _at(d, h) + timedelta(minutes=minutes or 0)
    return Vitals(
        at=at, minutes_after_dose=minutes, systolic=sys_, diastolic=dia, heart_rate=78, spo2=98
    )


def _history(scores: list[tuple[date, Any]]) -> History:
    h = a_history().raw()
    h["measurements"] = [
        {
            "instrument": "PHQ-9",
            "date": d,
            **({"items": v} if isinstance(v, tuple) else {"total": v}),
        }
        for d, v in scores
    ]
    return History.model_validate(h)


ESK_PROTOCOL = SimpleNamespace(
    id="esketamine_trd",
    name="Esketamine nasal spray for TRD (label)",
    label_status="on_label",
    off_label=False,
    verified=True,
    source=("fda_spravato_label",),
    phases=(
        SimpleNamespace(id="induction", name="Induction (weeks 1–4)"),
        SimpleNamespace(id="maintenance", name="Maintenance (weeks 5–8)"),
    ),
)
KET_PROTOCOL = SimpleNamespace(
    id="ketamine_iv_acute",
    name="IV ketamine 0.5 mg/kg over 40 min, 6 infusions",
    label_status="off_label",
    off_label=True,
    verified=False,
    source=("anand_2023_elektd",),
    phases=(SimpleNamespace(id="acute", name="Acute course"),),
)
ESK_LABELS = {ph.id: ph.name for ph in ESK_PROTOCOL.phases}
KET_LABELS = {ph.id: ph.name for ph in KET_PROTOCOL.phases}


def _esk_planned() -> list[PlannedSession]:
    start = date(2024, 3, 4)  # a Monday; twice weekly for 4 weeks, then weekly
    days = [start + timedelta(days=7 * w + o) for w in range(4) for o in (0, 3)]
    days += [start + timedelta(weeks=w) for w in range(4, 8)]
    return [
        PlannedSession(
            number=i + 1,
            on=d,
            phase="induction" if i < 8 else "maintenance",
            dose_options_mg=(56.0,) if i == 0 else (56.0, 84.0),
            review="end of induction: evaluate the benefit" if i == 7 else None,
        )
        for i, d in enumerate(days)
    ]


def _esk_given(number: int, d: date, mg: float, cadss: float = 9) -> SessionRecord:
    return SessionRecord(
        number=number,
        status="done",
        on=d,
        pre_checks={"no_food_2h": True, "no_liquids_30min": True},
        pre_vitals=_vitals(d, 128, 80),
        dose_mg=mg,
        dose_time=_at(d, 10, 10),
        route="intranasal",
        post_vitals=(_vitals(d, 146, 90, 40, 10), _vitals(d, 130, 82, 120, 10)),
        scales=(
            Scale(instrument="CADSS", minutes_after_dose=40, total=cadss),
            Scale(instrument="MOAA/S", minutes_after_dose=40, total=5),
        ),
        observed_until=_at(d, 12, 15),
        discharge_criteria_met={"alert_and_oriented": True, "bp_back_near_baseline": True},
        transport="taxi; no driving until the next day",
        recorded_by="nurse.k",
    )


def esketamine_course() -> tuple[Course, History, list[PlannedSession]]:
    planned = _esk_planned()
    recs: list[SessionRecord] = []
    for p in planned[:8]:
        if p.number == 3:
            recs.append(
                SessionRecord(
                    number=3,
                    status="deferred",
                    on=p.on,
                    pre_vitals=_vitals(p.on, 168, 104),
                    note="pre-dose BP 168/104; rebooked for tomorrow",
                    recorded_by="nurse.k",
                )
            )
            again = p.on + timedelta(days=1)
            given = _esk_given(3, again, 84, cadss=14)
            recs.append(
                given.model_copy(
                    update={
                        "adverse_events": (
                            AdverseEvent(term="nausea", severity="mild"),
                            AdverseEvent(term="dizziness <transient>", severity="mild"),
                        )
                    }
                )
            )
        elif p.number == 6:
            recs.append(SessionRecord(number=6, status="missed", on=p.on, note="did not attend"))
        else:
            recs.append(_esk_given(p.number, p.on, 56 if p.number == 1 else 84))
    course = Course(
        id="esk-1",
        patient_id="T1",
        protocol_id="esketamine_trd",
        treatment="esketamine",
        start=date(2024, 3, 4),
        status="active",
        eligibility=Eligibility(
            reviewed_by="dr.s",
            reviewed_at=datetime(2024, 3, 1, 9, 0),
            findings_reviewed=("esketamine_hypertension", "substance_use_history"),
            overrides=(
                Override(
                    code="esketamine_hypertension",
                    by="dr.s",
                    at=datetime(2024, 3, 1, 9, 5),
                    reason="BP controlled on amlodipine since January; home readings 130/80.",
                ),
            ),
            acknowledged=(
                Acknowledgement(
                    code="substance_use_history", by="dr.s", at=datetime(2024, 3, 1, 9, 6)
                ),
            ),
            consent_recorded_by="dr.s",
            consent_on=date(2024, 3, 1),
        ),
        sessions=tuple(recs),
        notes=(
            CourseNote(
                kind="integration",
                on=date(2024, 3, 15),
                by="dr.s",
                text="Talked through the dissociation at session 3.",
            ),
            CourseNote(
                kind="follow_up", on=date(2024, 4, 1), by="dr.s", text="Mood brighter at work."
            ),
        ),
        plan_after="maintenance",
        plan_note="weekly 84 mg from week 5; review at week 12",
    )
    history = _history(
        [
            (date(2024, 2, 20), 21),
            (date(2024, 3, 1), (3, 2, 2, 2, 2, 2, 2, 2, 1)),  # baseline 18, item 9 = 1
            (date(2024, 3, 7), 15),
            (date(2024, 3, 14), 12),
            (date(2024, 3, 21), 10),
            (date(2024, 3, 28), 8),
        ]
    )
    return course, history, planned


def esk_evaluate(r: SessionRecord) -> SessionEvaluation:
    if r.status == "deferred":
        finding = CourseFinding(
            code="esketamine_predose_bp_high",
            severity="block",
            message="Pre-dose blood pressure 168/104 is above the protocol's limit: defer.",
            citations=("fda_spravato_label",),
            verified=False,
        )
        return SessionEvaluation(
            findings=(finding,),
            deferred=True,
            extend_monitoring=False,
            may_discharge=False,
            observation_minutes_required=None,
        )
    return SessionEvaluation(
        findings=(),
        deferred=False,
        extend_monitoring=False,
        may_discharge=True,
        observation_minutes_required=120,
    )


def ketamine_course() -> tuple[Course, History, list[PlannedSession]]:
    start = date(2024, 4, 1)
    days = [start + timedelta(days=7 * w + o) for w in range(3) for o in (0, 3)]
    planned = [
        PlannedSession(
            number=i + 1, on=d, phase="acute", review="after the course" if i == 5 else None
        )
        for i, d in enumerate(days)
    ]
    recs = tuple(
        SessionRecord(
            number=p.number,
            status="done",
            on=p.on,
            pre_vitals=_vitals(p.on, 124, 78),
            weight_kg=82.0,
            dose_mg=41.0,
            dose_time=_at(p.on, 9, 30),
            route="IV over 40 min",
            post_vitals=(_vitals(p.on, 138, 86, 40, 9), _vitals(p.on, 126, 80, 100, 9)),
            scales=(
                Scale(instrument="CADSS", minutes_after_dose=40, total=11),
                Scale(instrument="MOAA/S", minutes_after_dose=40, total=5),
            ),
            observed_until=_at(p.on, 11, 30),
            discharge_criteria_met={"accompanied_by_adult": True, "ambulates_steadily": True},
            transport="partner drove",
            recorded_by="dr.m",
        )
        for p in planned
    )
    course = Course(
        id="ket-1",
        patient_id="T1",
        protocol_id="ketamine_iv_acute",
        treatment="ketamine",
        start=start,
        status="completed",
        weight_kg=82.0,
        eligibility=Eligibility(
            reviewed_by="dr.m",
            reviewed_at=datetime(2024, 3, 28, 14, 0),
            findings_reviewed=(),
            consent_recorded_by="dr.m",
            consent_on=date(2024, 3, 28),
            consent_note="off-label use explained",
        ),
        sessions=recs,
        plan_after="taper",
        plan_note="weekly for 2 weeks, then stop",
    )
    history = _history([(date(2024, 3, 29), 20), (date(2024, 4, 8), 12), (date(2024, 4, 19), 4)])
    return course, history, planned


def ket_evaluate(r: SessionRecord) -> SessionEvaluation:
    return SessionEvaluation(
        findings=(),
        deferred=False,
        extend_monitoring=False,
        may_discharge=True,
        observation_minutes_required=60,
        dose=DoseCalculation(
            mg=41.0,
            weight_kg=82.0,
            mg_per_kg=0.5,
            capped=False,
            formula="0.5 mg/kg × 82.0 kg = 41.0 mg",
        ),
    )


def _assessment(history: History, kb: Knowledge) -> Assessment:
    return assess(history, kb).model_copy(update={"app_version": "0.0.0-test"})


@pytest.fixture(scope="module")
def esk(kb: Knowledge) -> dict[str, Any]:
    course, history, planned = esketamine_course()
    svg = draw_course_chart(
        course, history, kb, planned, ESK_LABELS, course_label=ESK_PROTOCOL.name
    )
    html = render_course_summary_html(
        course,
        history,
        _assessment(history, kb),
        kb,
        ESK_PROTOCOL,
        svg,
        GENERATED_ON,
        CLINIC,
        planned=planned,
        evaluate=esk_evaluate,
    )
    return {"course": course, "history": history, "planned": planned, "svg": svg, "html": html}


@pytest.fixture(scope="module")
def ket(kb: Knowledge) -> dict[str, Any]:
    course, history, planned = ketamine_course()
    svg = draw_course_chart(
        course, history, kb, planned, KET_LABELS, course_label=KET_PROTOCOL.name
    )
    html = render_course_summary_html(
        course,
        history,
        _assessment(history, kb),
        kb,
        KET_PROTOCOL,
        svg,
        GENERATED_ON,
        CLINIC,
        planned=planned,
        evaluate=ket_evaluate,
    )
    return {"course": course, "history": history, "planned": planned, "svg": svg, "html": html}


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


# --- chart -----------------------------------------------------------------------------------


def _tree(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 - our own output


def _sessions(root: ET.Element, status: str) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == f"session session-{status}"]


def test_the_chart_is_csp_safe_xml_with_a_title_a_description_and_a_viewbox(esk):
    svg = esk["svg"]
    root = _tree(svg)
    assert root.get("role") == "img"
    assert root.get("viewBox", "").startswith("0 0 800 ")
    assert root.find(f"{SVG}title") is not None
    assert "style=" not in svg and "<style" not in svg
    assert all("style" not in el.attrib for el in root.iter())
    desc = root.findtext(f"{SVG}desc") or ""
    assert "Baseline PHQ-9 18 on 2024-03-01" in desc
    assert "deferred: 3 (2024-03-11)" in desc


def test_the_chart_has_one_marker_per_session_record_and_the_deferred_one_is_red_and_dashed(esk):
    root = _tree(esk["svg"])
    course = esk["course"]
    done, deferred, missed = (_sessions(root, s) for s in ("done", "deferred", "missed"))
    assert len(done) == sum(1 for r in course.sessions if r.status == "done") == 7
    assert len(missed) == 1 and missed[0].get("data-session") == "6"
    assert len(deferred) == 1
    line = deferred[0].find(f"{SVG}line")
    assert line is not None and line.get("stroke-dasharray") and line.get("stroke") == "#b91c1c"
    assert next(t.text for t in deferred[0].iter(f"{SVG}text")) == "deferred"
    # The four maintenance sessions are still to come: faint planned markers.
    assert len(_sessions(root, "planned")) == 4


def test_the_chart_draws_the_thresholds_from_the_knowledge_base_and_the_suicide_alert(esk, kb):
    svg = esk["svg"]
    phq9 = kb.instruments["phq9"].outcomes
    assert phq9 is not None and phq9.response_reduction == 0.5
    assert "response ≤ 9 (50 % below baseline 18)" in svg
    assert f"remission ≤ {phq9.remission_max_total:g}" in svg
    assert 'class="suicide-alert"' in svg and "suicide risk" in svg
    assert "Induction (weeks 1–4)" in svg and "Maintenance (weeks 5–8)" in svg


def test_the_chart_is_deterministic_and_escapes_text(kb):
    course, history, planned = esketamine_course()
    a = draw_course_chart(course, history, kb, planned, {"induction": "<b>Induction</b> & co"})
    b = draw_course_chart(course, history, kb, planned, {"induction": "<b>Induction</b> & co"})
    assert a == b
    assert "<b>" not in a and "&lt;b&gt;Induction&lt;/b&gt; &amp; co" in a
    _tree(a)


def test_a_course_without_scores_gives_a_chart_that_says_so(kb):
    course, _, planned = ketamine_course()
    svg = draw_course_chart(course, _history([]), kb, planned, KET_LABELS)
    root = _tree(svg)
    assert "No PHQ-9 scores recorded yet" in svg
    assert len(_sessions(root, "done")) == 6
    assert "polyline" not in svg and "response ≤" not in svg


def test_the_chart_can_show_another_instrument_and_refuses_an_unknown_one(kb):
    course, history, planned = ketamine_course()
    svg = draw_course_chart(course, history, kb, planned, instrument="MADRS")
    assert "No MADRS scores recorded yet" in svg
    with pytest.raises(ValueError, match="instrument"):
        draw_course_chart(course, history, kb, planned, instrument="no-such-scale")


# --- course summary ------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["esk", "ket"])
def test_the_course_summary_matches_its_golden_file(which, request):
    html = request.getfixturevalue(which)["html"]
    path = GOLDEN / f"{which}.html"
    if os.environ.get("TRDNAV_UPDATE_GOLDEN"):
        path.write_text(html, encoding="utf-8")
    assert html == path.read_text(encoding="utf-8")


def test_the_esketamine_summary_puts_the_suicide_alert_first_and_records_the_deferral(esk):
    html = esk["html"]
    assert html.index("Suicide risk") < html.index("Protocol") < html.index("Sessions")
    assert "deferred" in html and "Pre-dose blood pressure 168/104" in html
    assert "BP controlled on amlodipine since January" in html and "dr.s" in html
    assert "dizziness &lt;transient&gt;" in html  # escaped
    assert "18 on 2024-03-01 → 8 on 2024-03-28 (-56 %)" in html
    assert "Response: yes (response ≤ 9)" in html and "Remission: no (remission ≤ 4)" in html
    assert "12 sessions planned; 7 given, 1 deferred, 1 missed, 0 cancelled; 4 not yet" in html
    assert "<script" not in html


def test_the_ketamine_summary_shows_the_weight_based_dose_and_the_off_label_badge(ket):
    html = ket["html"]
    assert "0.5 mg/kg × 82.0 kg = 41.0 mg" in html
    assert "off-label" in html and "unverified" in html
    assert "20 on 2024-03-29 → 4 on 2024-04-19 (-80 %)" in html
    assert "Remission: yes" in html
    assert "Taper" in html and "weekly for 2 weeks, then stop" in html


def test_the_course_summary_pdf_carries_what_a_reviewer_must_read(esk):
    pdf = render_course_summary_pdf(esk["html"])
    text = _squash("".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages))
    for needle in (
        "Esketamine(intranasal)coursesummary",
        "Suiciderisk",
        "esk-1",
        "2024-03-11",
        "deferred",
        "168/104",
        "BPcontrolledonamlodipine",
        "Consent:recordedon2024-03-01",
        "18on2024-03-01→8on2024-03-28",
        "notamedicaldevice",
    ):
        assert needle in text, needle


def test_the_ketamine_summary_pdf_shows_the_dose_formula(ket):
    pdf = render_course_summary_pdf(ket["html"])
    text = _squash("".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages))
    assert "0.5mg/kg×82.0kg=41.0mg" in text
    assert "off-label" in text.lower()


# --- REMS --------------------------------------------------------------------------------------


ROWS = [
    RemsRow(
        session=2,
        on=date(2024, 3, 7),
        dose_mg=84,
        pre_systolic=128,
        pre_diastolic=80,
        max_post_systolic=146,
        max_post_diastolic=90,
        sedation=5,
        dissociation=9,
        adverse_events=(),
        observed_minutes=125,
        discharged_ok=True,
    ),
    RemsRow(
        session=1,
        on=date(2024, 3, 4),
        dose_mg=56,
        pre_systolic=128,
        pre_diastolic=80,
        max_post_systolic=150,
        max_post_diastolic=94,
        sedation=4,
        dissociation=14.5,
        adverse_events=("nausea", 'dizziness, "mild"'),
        observed_minutes=None,
        discharged_ok=None,
    ),
]


def test_the_rems_csv_has_a_header_and_one_row_per_session_in_order():
    rows = list(csv.reader(io.StringIO(rems_csv(ROWS))))
    assert tuple(rows[0]) == CSV_HEADER
    assert len(rows) == 3
    one, two = (dict(zip(rows[0], r, strict=True)) for r in rows[1:])
    assert one["session"] == "1" and one["date"] == "2024-03-04" and one["dose_mg"] == "56"
    assert one["adverse_events"] == 'nausea; dizziness, "mild"'  # quoted, parsed back whole
    assert one["dissociation_cadss_highest"] == "14.5"
    assert one["observed_minutes"] == "" and one["discharge_criteria_met"] == ""
    assert two["max_post_dose_systolic_mmhg"] == "146" and two["discharge_criteria_met"] == "yes"


def test_the_rems_csv_of_no_sessions_is_the_header_alone():
    assert list(csv.reader(io.StringIO(rems_csv([])))) == [list(CSV_HEADER)]


def test_the_rems_document_flags_incomplete_sessions(kb):
    course, _, _ = esketamine_course()
    html = rems_html(course, ROWS, GENERATED_ON, kb, citations=("fda_spravato_label",))
    assert "Esketamine REMS: patient monitoring data" in html
    assert "1 session with a value not recorded" in html
    assert "150/94" in html and "dizziness, &#34;mild&#34;" in html
    assert html.index("2024-03-04") < html.index("2024-03-07")


# --- outcomes ----------------------------------------------------------------------------------


def _p(count: int, n: int, lo: float | None, hi: float | None) -> Proportion:
    return Proportion(count=count, n=n, rate=count / n if n else None, ci_low=lo, ci_high=hi)


RATES = [
    OutcomeRate(
        treatment="esketamine",
        courses=24,
        response=_p(12, 24, 0.314, 0.686),
        remission=_p(7, 24, 0.149, 0.488),
        citations=("wilson_1927",),
    ),
    OutcomeRate(
        treatment="ketamine",
        courses=5,
        response=_p(3, 5, 0.231, 0.882),
        remission=_p(1, 5, 0.036, 0.624),
        citations=("wilson_1927",),
    ),
    OutcomeRate(
        treatment="ect",
        courses=0,
        response=_p(0, 0, None, None),
        remission=_p(0, 0, None, None),
        citations=(),
    ),
]


def test_rates_are_written_with_their_counts_and_confidence_intervals():
    assert format_rate(_p(12, 24, 0.314, 0.686)) == "12/24 (50 %; 95 % CI 31–69 %)"
    assert format_rate(_p(0, 0, None, None)) == "0/0 (none evaluable)"


def test_the_outcomes_table_flags_rates_over_fewer_than_ten_courses(kb):
    html = render_outcomes_html(RATES, GENERATED_ON, kb, clinic_name=CLINIC)
    rows = re.findall(r"<tr>\s*<td><strong>(.*?)</strong>.*?</tr>", html, re.DOTALL)
    assert rows == ["Esketamine (intranasal)", "Ketamine", "ECT"]
    esk_row, ket_row, ect_row = re.findall(r"<tr>\s*<td><strong>.*?</tr>", html, re.DOTALL)
    assert "12/24 (50 %; 95 % CI 31–69 %)" in esk_row and "read with care" not in esk_row
    assert "3/5 (60 %; 95 % CI 23–88 %)" in ket_row and "n &lt; 10" in ket_row
    assert "none evaluable" in ect_row and "n &lt; 10" in ect_row
    assert "Wilson" in html


def test_the_outcomes_json_round_trips_the_counts():
    doc = json.loads(outcomes_json(RATES, GENERATED_ON))
    assert doc["generated_on"] == "2024-05-02"
    ket = doc["rates"][1]
    assert ket["treatment"] == "ketamine" and ket["courses"] == 5
    assert ket["response"] == {
        "count": 3,
        "n": 5,
        "rate": 0.6,
        "ci_low": 0.231,
        "ci_high": 0.882,
        "small_n": True,
    }
    assert doc["rates"][0]["response"]["small_n"] is False
