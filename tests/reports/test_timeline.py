"""The treatment timeline: an inline SVG that a strict Content-Security-Policy allows, one lane per
treatment with its doses or sessions and its outcome, and text a screen reader can read."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import date
from pathlib import Path

import pytest

from tests.builders import AS_OF, a_history
from trdnav.core.history import History, Medication
from trdnav.history_files import load_history
from trdnav.knowledge.load import Knowledge
from trdnav.reports.timeline import EMPTY_TEXT, render_timeline_svg

ROOT = Path(__file__).parents[2]
NS = "{http://www.w3.org/2000/svg}"
EXAMPLES = ["05-chronic-trd", "08-ect-history", "10-measured-course"]


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # noqa: S314 - our own output
    assert root.tag == f"{NS}svg"
    return root


def _lanes(root: ET.Element) -> list[list[str]]:
    """The texts of each lane, name first."""
    return [
        ["".join(t.itertext()) for t in g.iter(f"{NS}text")]
        for g in root.iter(f"{NS}g")
        if g.get("class") == "lane"
    ]


def _example(kb: Knowledge, stem: str) -> History:
    return load_history(ROOT / "examples" / f"{stem}.yaml", kb, date(2024, 6, 1))


@pytest.mark.parametrize("stem", EXAMPLES)
def test_it_uses_no_style_attributes_or_elements_and_is_valid_xml(kb, stem):
    h = _example(kb, stem)
    svg = render_timeline_svg(h, kb, date(2024, 6, 1))
    assert "style=" not in svg
    assert "<style" not in svg
    root = _parse(svg)
    assert not any(el.tag == f"{NS}style" or "style" in el.attrib for el in root.iter())
    assert not any(el.tag in (f"{NS}script", f"{NS}foreignObject") for el in root.iter())


def test_it_is_accessible_and_scales_to_its_container(kb):
    h = _example(kb, "08-ect-history")
    root = _parse(render_timeline_svg(h, kb, date(2024, 6, 1)))
    assert root.get("role") == "img"
    assert root.get("width") == "100%"
    assert re.fullmatch(r"0 0 \d+ [\d.]+", root.get("viewBox", ""))
    title = root.find(f"{NS}title")
    desc = root.find(f"{NS}desc")
    assert title is not None and title.text == "Treatment timeline, patient EX08"
    assert root.get("aria-label") == title.text
    assert desc is not None and desc.text is not None
    assert desc.text.startswith("7 treatments from 2019-09-01 to 2024-06-01")
    for words in ("citalopram", "75 mg/day then 225 mg/day", "ECT (bilateral)", "12 sessions"):
        assert words in desc.text


@pytest.mark.parametrize("stem", EXAMPLES)
def test_it_draws_one_lane_per_treatment_with_every_dose_labelled(kb, stem):
    h = _example(kb, stem)
    lanes = _lanes(_parse(render_timeline_svg(h, kb, date(2024, 6, 1))))
    assert len(lanes) == len(h.treatments)
    by_start = sorted(h.treatments, key=lambda t: (t.start, t.stop or date.max))
    for t, texts in zip(by_start, lanes, strict=True):
        labels = " ".join(texts[2:])  # after the name and the outcome
        if isinstance(t, Medication):
            assert kb.resolve_drug(t.drug).name in texts[0]
            shown = re.findall(r"\d+(?:\.\d+)?", labels)
            assert shown == [f"{d.mg_per_day:g}" for d in t.doses]
            assert "mg/day" in labels
        else:
            assert labels == f"{t.sessions} sessions"


def test_dose_steps_too_close_to_label_apart_share_one_label(kb):
    h = _example(kb, "08-ect-history")  # venlafaxine 75 for three weeks, then 225
    lanes = _lanes(_parse(render_timeline_svg(h, kb, date(2024, 6, 1))))
    venlafaxine = next(texts for texts in lanes if texts[0] == "venlafaxine")
    assert venlafaxine[2:] == ["75 → 225 mg/day"]


def test_outcomes_and_ongoing_treatments_are_written_in_words(kb):
    h = (
        a_history()
        .trial("sertraline", 100, weeks=3, outcome="intolerance")
        .trial("escitalopram", 20, weeks=10, outcome="remission")
        .trial("aripiprazole", 5, weeks=8, augments="escitalopram", outcome="unknown")
        .build()
    )
    data = h.model_dump(by_alias=True)
    data["treatments"][1]["stop"] = None
    h = History.model_validate(data)
    lanes = _lanes(_parse(render_timeline_svg(h, kb, AS_OF)))
    assert [texts[:2] for texts in lanes] == [
        ["sertraline", "stopped: intolerance"],
        ["escitalopram", "remission, ongoing"],
        ["+ aripiprazole", "outcome not recorded"],
    ]


def test_text_is_escaped(kb):
    h = a_history().trial("sertraline", 100).build()
    h = h.model_copy(update={"patient": h.patient.model_copy(update={"id": 'P<1> & "Q"'})})
    svg = render_timeline_svg(h, kb, AS_OF)
    assert "P<1>" not in svg
    root = _parse(svg)
    assert root.findtext(f"{NS}title") == 'Treatment timeline, patient P<1> & "Q"'


def test_an_empty_history_says_no_treatments_recorded(kb):
    h = a_history().build()
    svg = render_timeline_svg(h, kb, AS_OF)
    root = _parse(svg)
    assert [t.text for t in root.iter(f"{NS}text")] == [EMPTY_TEXT]
    assert root.get("role") == "img" and root.findtext(f"{NS}title")
    assert float(root.get("viewBox", "").split()[3]) < 60


def test_the_output_is_deterministic(kb):
    h = _example(kb, "10-measured-course")
    assert render_timeline_svg(h, kb, AS_OF) == render_timeline_svg(h, kb, AS_OF)


def test_onset_and_as_of_are_marked(kb):
    h = _example(kb, "10-measured-course")
    texts = ["".join(t.itertext()) for t in _parse(render_timeline_svg(h, kb, AS_OF)).iter()]
    assert "episode onset 2023-06-01" in texts
    assert "as of 2024-06-01" in texts
