"""Hostile strings in names and notes render inert in every renderer.

Text typed by people reaches the score chart (the patient id, an unlisted drug's name), the
treatment timeline, the printable summary and its PDF (identity, notes, the clinic's name) and
the prior-authorisation packet (an edited letter). Each renderer must show such text as text:
no element or attribute it could smuggle in (script, event handlers, foreignObject, links,
external images), no TeX read out of dollar signs, no crash, and the text itself still there so
the clinician sees what was typed.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pypdf import PdfReader

from tests.builders import AS_OF, a_history
from trdnav.core.alerts import suicide_alerts
from trdnav.core.assessment import assess
from trdnav.core.history import History
from trdnav.core.measures import score_measurements
from trdnav.identity import PatientIdentity
from trdnav.knowledge.load import Knowledge
from trdnav.reports.chart import render_chart
from trdnav.reports.pdf import render_pdf
from trdnav.reports.summary import render_summary_html
from trdnav.reports.timeline import render_timeline_svg

HOSTILE = (
    "<script>alert(1)</script>",
    '"><svg onload=alert(1)>',
    "</text><foreignObject><iframe src='http://evil.example/'></iframe></foreignObject>",
    "<img src=x onerror=alert(1)>",
    '<a href="javascript:alert(1)">click</a>',
    "<!ENTITY xxe SYSTEM 'file:///etc/passwd'> ]]> &xxe;",
    "$x^{$ and $\\frac{a}{b}$",
    "url(http://evil.example/x.png) @import 'http://evil.example/s.css';",
    "\u202eevil\u202c {{7*7}} ${7*7} %s %(x)s",
)
ACTIVE_TAGS = {"script", "foreignObject", "iframe", "a", "image", "img", "object", "embed"}
SVG = "{http://www.w3.org/2000/svg}"
GENERATED_ON = date(2024, 6, 2)


def _history(patient_id: str, drug: str) -> History:
    b = a_history().trial("sertraline", 150, weeks=8).trial(drug, 10, weeks=8)
    b.data["patient"]["id"] = patient_id
    b.data["measurements"] = [
        {"instrument": "PHQ-9", "date": date(2022, 2, 1), "total": 18},
        {"instrument": "PHQ-9", "date": date(2022, 4, 1), "total": 15},
        {"instrument": "PHQ-9", "date": date(2022, 6, 1), "total": 16},
    ]
    return b.build()


def _assert_inert_svg(svg: bytes | str, *expected: str) -> None:
    data = svg.encode() if isinstance(svg, str) else svg
    assert b"<!ENTITY" not in data and b"<!DOCTYPE svg [" not in data  # no DTD made of input
    root = ET.fromstring(data)  # noqa: S314 - our own output; well-formed or this fails
    for el in root.iter():
        tag = el.tag.removeprefix(SVG)
        assert tag not in ACTIVE_TAGS, tag
        for name, value in el.attrib.items():
            assert not name.lower().startswith("on"), (tag, name)
            assert "javascript:" not in value.lower() and "evil.example" not in value, (tag, name)
            if name.endswith("href"):  # matplotlib's <use> of its own markers only
                assert value.startswith("#"), (tag, name, value)
    text = " ".join(" ".join(el.itertext()) for el in root.iter(f"{SVG}text"))
    text += " ".join(" ".join(el.itertext()) for el in root.iter(f"{SVG}title"))
    squashed = re.sub(r"\s+", "", text)
    for s in expected:
        assert re.sub(r"\s+", "", s) in squashed, s


def _chart(kb: Knowledge, h: History, fmt: str = "svg") -> bytes:
    scored = score_measurements(h, kb)
    return render_chart(h, scored, suicide_alerts(h, scored, kb), kb, "phq9", fmt)  # type: ignore[arg-type]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_the_score_chart_shows_a_hostile_patient_id_and_drug_name_as_text(
    kb: Knowledge, hostile: str
) -> None:
    h = _history(f"P1 {hostile}", f"{hostile} tablets")
    _assert_inert_svg(_chart(kb, h), f"Patient P1 {hostile}", f"{hostile} tablets")
    assert _chart(kb, h, "png")[:8] == b"\x89PNG\r\n\x1a\n"


@settings(max_examples=25, deadline=None)
@given(text=st.text(alphabet=st.sampled_from("$^{}\\_<>&'\"/ ax;%"), min_size=1, max_size=24))
def test_no_typed_text_breaks_the_chart_or_escapes_into_markup(kb: Knowledge, text: str) -> None:
    h = _history(f"P{text}", f"drug {text}")
    _assert_inert_svg(_chart(kb, h), f"drug {text}")


@pytest.mark.parametrize("hostile", HOSTILE)
def test_the_timeline_shows_a_hostile_drug_name_as_text(kb: Knowledge, hostile: str) -> None:
    h = _history("P1", f"{hostile} tablets")
    svg = render_timeline_svg(h, kb, AS_OF)
    root = ET.fromstring(svg.encode())  # noqa: S314 - our own output
    shown = " ".join(" ".join(el.itertext()) for el in root.iter())
    _assert_inert_svg(svg)
    # a long label may be shortened to fit its lane, but what is shown is the text as typed
    assert hostile[:12] in shown or hostile[:12].strip() in shown


def test_the_summary_pdf_prints_hostile_identity_notes_and_clinic_name_as_text(
    kb: Knowledge,
) -> None:
    hostile = HOSTILE[0] + " " + HOSTILE[3] + " " + HOSTILE[4]
    b = a_history().trial("sertraline", 150, weeks=8, note=hostile)
    b.trial("escitalopram", 20, weeks=8, note=HOSTILE[6])
    h = b.build()
    a = assess(h, kb)
    identity = PatientIdentity(
        given=("Ann<script>",), family='O"Brien<img src=x onerror=alert(1)>', mrn="M-1 $x^{$"
    )
    html = render_summary_html(
        h,
        a,
        kb,
        _chart(kb, _history("P1", HOSTILE[2])).decode(),
        render_timeline_svg(h, kb, AS_OF),
        GENERATED_ON,
        clinic_name=HOSTILE[7],
        identity=identity,
    )
    for tag in ("<script", "<img", "<iframe", "<foreignObject", '<a href="javascript'):
        assert tag not in html, tag
    pdf = render_pdf(html)
    for active in (b"/JavaScript", b"/JS ", b"/Launch", b"/OpenAction", b"/URI", b"/SubmitForm"):
        assert active not in pdf, active
    text = re.sub(r"\s+", "", " ".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf)).pages))
    for shown in ("<script>alert(1)</script>", "<imgsrc=xonerror=alert(1)>", "$x^{$"):
        assert shown in text, shown
    assert "Ann<script>" in text and "M-1$x^{$" in text
