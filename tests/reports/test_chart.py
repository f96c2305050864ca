"""`trdnav chart`: valid, reproducible images that carry every label a clinician needs, and clear
errors for bad input."""

from __future__ import annotations

import struct
import xml.etree.ElementTree as ET
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from tests.builders import a_history
from trdnav.cli import app
from trdnav.core.alerts import suicide_alerts
from trdnav.core.measures import score_measurements
from trdnav.reports.chart import (
    ALERT_LABEL,
    FOOTER,
    date_ticks,
    default_instrument,
    render_chart,
)

ROOT = Path(__file__).parents[2]
EX10 = ROOT / "examples" / "10-measured-course.yaml"
EX03 = ROOT / "examples" / "03-trd-across-classes-augmented.yaml"  # no measurements
SVG_NS = "{http://www.w3.org/2000/svg}"
runner = CliRunner()


def _chart(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["chart", *args])


def _svg_text(data: bytes) -> list[str]:
    root = ET.fromstring(data)  # noqa: S314 - our own output
    assert root.tag == f"{SVG_NS}svg"
    return ["".join(t.itertext()) for t in root.iter(f"{SVG_NS}text")]


@pytest.fixture(scope="module")
def ex10_svg(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    out = tmp_path_factory.mktemp("chart") / "ex10.svg"
    r = _chart(str(EX10), "--out", str(out))
    assert r.exit_code == 0, r.output
    return out.read_bytes()


def test_png_is_a_valid_image_of_the_expected_size(tmp_path):
    out = tmp_path / "chart.png"
    r = _chart(str(EX10), "--out", str(out))
    assert r.exit_code == 0, r.output
    assert f"wrote {out} (PHQ-9, 14 scores)" in r.stdout
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width == 1320  # 12 in at 110 dpi
    assert 700 <= height <= 1200
    assert len(data) > 20_000


def test_svg_is_valid_and_carries_every_label(kb, ex10_svg):
    texts = _svg_text(ex10_svg)
    joined = "\n".join(texts)
    for band in kb.instruments["phq9"].bands:  # each band labelled with its range
        assert f"{band.label} ({band.min:g}–{band.max:g})" in joined.replace("\n", " "), band
    # baseline 22 on 2023-09-01; PHQ-9 response = 50 % reduction, remission ≤ 4
    assert "response ≤ 11  (50 % below baseline 22 on 2023-09-01)" in texts
    assert "remission ≤ 4" in texts
    for name in ("bupropion", "sertraline 50→100→150→50 mg", "venlafaxine", "CBT × 16"):
        assert name in joined, name
    for dose in ("150", "300", "225"):  # dose steps are written on their segments
        assert dose in texts
    assert ALERT_LABEL in texts  # legend entry
    assert "alert 2023-10-27: low risk (2 alerts)" in texts  # the marker's label
    assert "Patient EX10 · PHQ-9 (Patient Health Questionnaire-9)" in texts
    assert any("2023-09-01 to 2024-05-24" in t and "as of 2024-06-01" in t for t in texts)
    assert FOOTER in texts


def test_svg_is_byte_identical_between_runs(tmp_path, ex10_svg):
    out = tmp_path / "again.svg"
    assert _chart(str(EX10), "--out", str(out)).exit_code == 0
    assert out.read_bytes() == ex10_svg
    assert b"<dc:date>" not in ex10_svg


def test_instrument_option_picks_another_instrument(tmp_path):
    out = tmp_path / "qids.svg"
    r = _chart(str(EX10), "--out", str(out), "--instrument", "qids")
    assert r.exit_code == 0, r.output
    texts = _svg_text(out.read_bytes())
    assert "very severe (21–27)" in texts
    assert "remission ≤ 5" in texts
    assert not any("moderately severe" in t for t in texts)  # one instrument per chart


def test_a_clinician_alert_without_scores_that_day_is_still_marked(kb):
    b = a_history().trial("sertraline", 150)
    b.data["measurements"] = [
        {"instrument": "PHQ-9", "date": date(2022, 2, 1), "total": 18},
        {"instrument": "PHQ-9", "date": date(2022, 4, 1), "total": 12},
    ]
    b.data["clinician_alerts"] = [{"date": date(2022, 3, 1), "severity": "high"}]
    h = b.build()
    scored = score_measurements(h, kb)
    texts = _svg_text(render_chart(h, scored, suicide_alerts(h, scored, kb), kb, "phq9", "svg"))
    assert "alert 2022-03-01: high risk" in texts
    assert ALERT_LABEL in texts


def test_default_instrument_prefers_phq9_then_the_most_scores(kb):
    def scored(*names: str):  # type: ignore[no-untyped-def]
        rows: list[dict[str, Any]] = [
            {"instrument": n, "date": date(2022, 2, k + 1), "total": 10}
            for k, n in enumerate(names)
        ]
        b = a_history()
        b.data["measurements"] = rows
        return score_measurements(b.build(), kb)

    assert default_instrument(scored("MADRS", "MADRS", "PHQ-9")) == "phq9"
    assert default_instrument(scored("MADRS", "QIDS-SR16", "QIDS-SR16")) == "qids_sr16"
    assert default_instrument(scored()) is None


def test_date_ticks_show_the_year_on_the_first_tick_and_in_january():
    def x(d: date) -> float:  # the chart's x: days since 1970-01-01
        return float(d.toordinal() - date(1970, 1, 1).toordinal())

    ticks, labels = date_ticks(x(date(2023, 5, 20)), x(date(2023, 12, 20)))
    assert labels == ["Jun\n2023", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    assert ticks[0] == x(date(2023, 6, 1))
    _, labels = date_ticks(x(date(2023, 6, 1)), x(date(2024, 6, 5)))  # 13 months: every other
    assert labels == ["Jul\n2023", "Sep", "Nov", "Jan\n2024", "Mar", "May"]
    _, labels = date_ticks(x(date(2015, 3, 1)), x(date(2024, 6, 1)))  # years
    assert labels == [str(y) for y in range(2016, 2025)]


def test_render_chart_refuses_an_unknown_format(kb):
    h = a_history().build()
    with pytest.raises(ValueError, match="format"):
        render_chart(h, [], [], kb, "phq9", "pdf")  # type: ignore[arg-type]


# --- bad input: exit 2, one clear message, no traceback, no file ---------------------------------


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--out", "c.pdf"], ["--out", "expected a file name ending in .png or .svg"]),
        (["--out", "c.png", "--instrument", "PHQ8"], ["--instrument", "'PHQ-9'"]),
        (["--out", "c.png", "--instrument", "madrs"], [str(EX10), "no MADRS scores", "PHQ-9"]),
        (["--out", "c.png", "--instrument", "cssrs"], ["C-SSRS screener has no total"]),
        (["--out", "c.png", "--today", "2024-13-01"], ["--today", "YYYY-MM-DD"]),
        (["--out", "missing/c.png"], ["--out", "does not exist"]),
    ],
)
def test_bad_options_exit_2_with_a_clear_message(tmp_path, monkeypatch, args, words):
    monkeypatch.chdir(tmp_path)
    r = _chart(str(EX10), *args)
    assert r.exit_code == 2, r.output
    for w in words:
        assert w in r.stderr, (w, r.stderr)
    assert "Traceback" not in r.output
    assert not list(tmp_path.glob("c.*"))


def test_a_history_without_scores_exits_2(tmp_path):
    r = _chart(str(EX03), "--out", str(tmp_path / "c.png"))
    assert r.exit_code == 2
    assert f"{EX03}: measurements: no scored measurements to chart" in r.stderr
    assert not (tmp_path / "c.png").exists()


def test_an_invalid_history_reports_its_problems(tmp_path):
    data = yaml.safe_load(EX10.read_text())
    data["measurements"][0]["instrument"] = "PHQ-99"
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data, sort_keys=False))
    r = _chart(str(bad), "--out", str(tmp_path / "c.png"))
    assert r.exit_code == 2
    assert f"{bad}: measurements[0].instrument: unknown instrument 'PHQ-99'" in r.stderr
    assert "Traceback" not in r.output
