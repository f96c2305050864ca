"""The printable treatment summary (HTML and PDF): alerts first, every trial with its verdict in
words, escaped text, numbered sources, and a PDF whose text carries what a reviewer must read.

Regenerate the golden HTML after an intended change with ``TRDNAV_UPDATE_GOLDEN=1`` and review
the diff (the convention of tests/cli/test_examples_golden.py).
"""

from __future__ import annotations

import base64
import io
import os
import re
import struct
import zlib
from datetime import date
from pathlib import Path

import pytest
from pypdf import PdfReader

from tests.builders import AS_OF, a_history
from trdnav.core.assessment import Assessment, assess
from trdnav.core.history import History
from trdnav.history_files import load_history
from trdnav.knowledge.load import Knowledge
from trdnav.reports.pdf import render_pdf
from trdnav.reports.summary import render_summary_html
from trdnav.reports.text import STATUS_TEXT
from trdnav.reports.timeline import render_timeline_svg

ROOT = Path(__file__).parents[2]
GOLDEN = ROOT / "tests" / "golden" / "summary"
GENERATED_ON = date(2024, 6, 2)
# A stand-in for the matplotlib chart (whose bytes follow the matplotlib version), with the XML
# prolog and doctype a real one has.
CHART = (
    '<?xml version="1.0" encoding="utf-8" standalone="no"?>\n'
    '<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN"\n'
    '  "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n'
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 20" width="100pt">'
    '<text x="2" y="14">PHQ-9 chart</text></svg>\n'
)


def _load(kb: Knowledge, stem: str) -> tuple[History, Assessment]:
    h = load_history(ROOT / "examples" / f"{stem}.yaml", kb, date(2024, 6, 1))
    a = assess(h, kb).model_copy(update={"app_version": "0.0.0-test"})  # stable goldens
    return h, a


def _html(kb: Knowledge, h: History, a: Assessment, chart: str | None = CHART) -> str:
    timeline = render_timeline_svg(h, kb, a.assessed_on)
    return render_summary_html(
        h, a, kb, chart, timeline, GENERATED_ON, clinic_name="Riverside Mood Clinic"
    )


@pytest.fixture(scope="module")
def ex15(kb: Knowledge) -> tuple[History, Assessment, str]:
    """Severe psychotic depression, TRD, with moderate suicide-risk alerts (C-SSRS, MADRS)."""
    h, a = _load(kb, "15-plan-psychotic-depression")
    return h, a, _html(kb, h, a)


@pytest.fixture(scope="module")
def ex15_pdf_text(ex15: tuple[History, Assessment, str]) -> tuple[bytes, list[str]]:
    pdf = render_pdf(ex15[2])
    return pdf, [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


def _squash(text: str) -> str:
    """Without whitespace, so that line and page breaks in the PDF do not matter."""
    return re.sub(r"\s+", "", text)


@pytest.mark.parametrize("stem", ["08-ect-history", "15-plan-psychotic-depression"])
def test_summary_html_matches_its_golden_file(kb, stem):
    h, a = _load(kb, stem)
    got = _html(kb, h, a)
    golden = GOLDEN / f"{stem}.html"
    if os.environ.get("TRDNAV_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(got, encoding="utf-8")
    assert golden.exists(), f"missing golden file {golden}; run with TRDNAV_UPDATE_GOLDEN=1"
    assert got == golden.read_text(encoding="utf-8")


def test_the_pdf_text_carries_the_patient_trials_status_alerts_and_disclaimer(
    kb, ex15, ex15_pdf_text
):
    _, a, _ = ex15
    pdf, pages = ex15_pdf_text
    assert pdf.startswith(b"%PDF")
    text = _squash(" ".join(pages))
    assert _squash(f"Patient {a.patient_id}") in text
    for v in a.trials:
        assert _squash(kb.drugs[v.drug].name) in text
    assert _squash(STATUS_TEXT[a.trd.status]) in text
    assert _squash(a.disclaimer) in text
    suicide = [al for al in a.alerts if al.code == "suicide_risk"]
    assert suicide
    for al in suicide:
        assert _squash(al.message) in text
    for r in a.crisis_resources:
        assert _squash(f"{r.name}: {r.contact}") in text


def test_the_suicide_risk_alerts_are_on_the_first_page_before_anything_clinical(ex15_pdf_text):
    _, pages = ex15_pdf_text
    first = _squash(pages[0])
    assert "Suiciderisk:2alerts,highestmoderate" in first
    assert first.index("Suiciderisk") < first.index("TRDdetermination")


def test_every_pdf_page_is_numbered_page_x_of_y(ex15_pdf_text):
    _, pages = ex15_pdf_text
    for n, page in enumerate(pages, start=1):
        assert f"Page{n}of{len(pages)}" in _squash(page)


def test_alerts_come_first_in_the_html(ex15):
    _, a, html = ex15
    suicide = html.index('class="alert alert-suicide"')
    assert suicide < html.index('class="alert alert-safety"') < html.index('id="h-trd"')
    for al in a.alerts:
        assert al.message in html.replace("&#39;", "'")


def test_a_patient_without_alerts_gets_no_alert_box(kb):
    h, a = _load(kb, "01-not-trd-first-trial")
    assert not a.alerts
    html = _html(kb, h, a)
    assert 'class="alert ' not in html
    assert "Suicide risk" not in html


def test_the_trial_table_explains_every_verdict_in_words(kb):
    h, a = _load(kb, "04-pseudo-resistance")
    html = _html(kb, h, a)
    table = html[
        html.index('<table class="trials">') : html.index(
            "</table>", html.index('<table class="trials">')
        )
    ]
    assert table.count('<tbody class="trial') == len(a.trials) == 4
    for v in a.trials:
        assert v.explanations
        for e in v.explanations:
            assert e.message in table
            assert f'<span class="code">{e.code}</span>' in table
    assert "<strong>No</strong>" in table  # no trial was adequate
    assert "stopped after 4 weeks" in table  # the trial's note


def test_staging_marks_unverified_methods_and_their_items(ex15):
    _, a, html = ex15
    staging = html[html.index('id="h-staging"') : html.index('id="h-scores"')]
    for s in a.staging.values():
        start = staging.index(f"<h3>{s.name}")
        head = staging[start : staging.index("</h3>", start)]
        assert ('class="unverified"' in head) is (not s.verified)
    assert not a.staging["maudsley"].verified
    assert staging.count("†</span>") == sum(
        len(s.items) for s in a.staging.values() if not s.verified
    )


def test_every_cited_number_is_in_the_sources_list_and_only_those(ex15):
    _, a, html = ex15
    body, sources = html.split('id="h-sources"')
    cited = {int(n) for group in re.findall(r"\[([\d, ]+)\]", body) for n in group.split(", ")}
    listed = [int(n) for n in re.findall(r'<li value="(\d+)">', sources)]
    assert listed == list(range(1, len(listed) + 1))
    assert cited == set(listed)
    assert a.citations["posner_2011_cssrs"] in sources  # text from the assessment


def test_the_plan_shows_the_top_options_and_the_ones_a_request_is_for(ex15):
    _, a, html = ex15
    plan = html[html.index('id="h-plan"') : html.index('id="h-sources"')]
    top = [o for o in a.options if o.status != "contraindicated"][:6]
    for o in top:
        assert f'<span class="rank">{o.rank}.</span> {o.name}' in plan.replace("&amp;", "&")
    assert "rTMS" in plan and "Esketamine" in plan
    assert plan.count('class="unverified"') >= sum(1 for o in top if not o.verified)


def test_the_document_is_self_contained(ex15):
    _, _, html = ex15
    assert "<script" not in html
    assert not re.search(r"<link\b", html)
    assert not re.search(r'\s(?:src|href)="(?!data:)', html)
    assert "<?xml" not in html and "<!DOCTYPE svg" not in html  # the chart's prolog is dropped
    assert "PHQ-9 chart" in html and "@page" in html and "counter(pages)" in html


def test_text_from_the_history_is_escaped(kb):
    h = (
        a_history()
        .trial("sertraline", 150, weeks=8, note="<script>alert('x')</script> & more")
        .trial("escitalopram", 20, weeks=8)
        .build()
    )
    h = h.model_copy(update={"patient": h.patient.model_copy(update={"id": "<b>P1</b>"})})
    a = assess(h, kb)
    html = render_summary_html(
        h, a, kb, None, render_timeline_svg(h, kb, AS_OF), GENERATED_ON, clinic_name="A & <B>"
    )
    assert "<script>" not in html and "<b>P1</b>" not in html and "<B>" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more" in html
    assert "&lt;b&gt;P1&lt;/b&gt;" in html
    assert "A &amp; &lt;B&gt;" in html


def _png() -> bytes:
    """A 1 × 1 grey PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    head = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", head)
        + chunk(b"IDAT", zlib.compress(b"\x00\x80"))
        + chunk(b"IEND", b"")
    )


def test_the_pdf_renderer_fetches_data_urls_only(tmp_path):
    image = tmp_path / "x.png"
    image.write_bytes(_png())
    data_url = "data:image/png;base64," + base64.b64encode(_png()).decode()

    def images(src: str) -> int:
        html = f'<!DOCTYPE html><html><body><p>x</p><img src="{src}" width="20"></body></html>'
        return len(PdfReader(io.BytesIO(render_pdf(html))).pages[0].images)

    assert images(data_url) == 1
    assert images(image.as_uri()) == 0  # a local file is refused
    assert images("http://127.0.0.1:9/x.png") == 0  # and so is the network
