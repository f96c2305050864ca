"""The suicide-risk safety net fires on every route, in the core and in every output."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.builders import a_history
from trdnav.cli import app
from trdnav.core.alerts import crisis_resources, suicide_alerts
from trdnav.core.assessment import assess
from trdnav.core.measures import score_measurements

PHQ9_ITEM9 = [2, 2, 2, 1, 1, 2, 1, 1]  # items 1-8; item 9 appended per test
runner = CliRunner()


def _with(*measurements: dict[str, object], **extra: object):  # type: ignore[no-untyped-def]
    b = a_history().trial("sertraline", 150)
    b.data["measurements"].extend(measurements)
    b.data.update(extra)
    return b


def _alerts(kb, b):  # type: ignore[no-untyped-def]
    h = b.build()
    return suicide_alerts(h, score_measurements(h, kb), kb)


def _phq9(day: date, item9: int) -> dict[str, object]:
    return {"instrument": "PHQ-9", "date": day, "items": [*PHQ9_ITEM9, item9]}


@pytest.mark.parametrize("item9", [1, 2, 3])
def test_any_phq9_item9_above_zero_raises_an_alert(kb, item9):
    alerts = _alerts(kb, _with(_phq9(date(2024, 5, 1), item9)))
    assert [a.code for a in alerts] == ["suicide_risk"]
    assert alerts[0].route == "suicide_item"
    assert alerts[0].severity == "unassessed"
    assert "item 9" in alerts[0].message
    assert alerts[0].citation  # a full reference, not a key


def test_phq9_item9_zero_raises_nothing(kb):
    assert _alerts(kb, _with(_phq9(date(2024, 5, 1), 0))) == []


def test_a_prorated_phq9_never_hides_item9(kb):
    m = {"instrument": "phq9", "date": date(2024, 5, 1), "items": [2, None, 2, 1, 1, 2, 1, 1, 1]}
    alerts = _alerts(kb, _with(m))
    assert len(alerts) == 1


@pytest.mark.parametrize(
    ("instrument", "items"),
    [
        ("QIDS-SR16", [1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 2, 1, 1, 1, 0]),
        ("MADRS", [3, 3, 2, 2, 2, 2, 2, 2, 2, 1]),
        ("HAM-D17", [2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]),
    ],
)
def test_suicide_items_of_other_depression_scales_raise_alerts(kb, instrument, items):
    alerts = _alerts(
        kb, _with({"instrument": instrument, "date": date(2024, 5, 1), "items": items})
    )
    assert len(alerts) == 1 and alerts[0].route == "suicide_item"


@pytest.mark.parametrize(
    ("answers", "severity"),
    [
        ([1, 0, None, None, None, 0, None], "low"),
        ([1, 1, 1, 0, 0, 0, None], "moderate"),
        ([1, 1, 0, 0, 0, 1, 0], "moderate"),
        ([1, 1, 1, 1, 0, 0, None], "high"),
        ([1, 1, 1, 1, 1, 0, None], "high"),
        ([0, 0, None, None, None, 1, 1], "high"),
    ],
)
def test_a_positive_cssrs_screener_raises_an_alert_at_its_triage_level(kb, answers, severity):
    m = {"instrument": "C-SSRS", "date": date(2024, 5, 1), "items": answers}
    alerts = _alerts(kb, _with(m))
    assert [(a.route, a.severity) for a in alerts] == [("cssrs_screener", severity)]


def test_a_negative_cssrs_screener_raises_nothing(kb):
    m = {
        "instrument": "C-SSRS",
        "date": date(2024, 5, 1),
        "items": [0, 0, None, None, None, 0, None],
    }
    assert _alerts(kb, _with(m)) == []


def test_a_cssrs_after_item9_gives_that_alert_its_severity(kb):
    c = {"instrument": "cssrs", "date": date(2024, 5, 1), "items": [1, 1, 1, 1, 0, 0, None]}
    alerts = _alerts(kb, _with(_phq9(date(2024, 5, 1), 2), c))
    item9 = next(a for a in alerts if a.route == "suicide_item")
    assert item9.severity == "high"


def test_a_clinician_entry_raises_an_alert(kb):
    entry = {"date": date(2024, 5, 2), "severity": "moderate", "note": "disclosed a plan"}
    alerts = _alerts(kb, _with(clinician_alerts=[entry]))
    assert [(a.route, a.severity) for a in alerts] == [("clinician", "moderate")]
    assert "disclosed a plan" in alerts[0].message


def test_alerts_are_newest_first_and_none_is_dropped(kb):
    alerts = _alerts(
        kb,
        _with(
            _phq9(date(2024, 1, 1), 1),
            _phq9(date(2024, 3, 1), 0),
            _phq9(date(2024, 5, 1), 3),
            clinician_alerts=[{"date": date(2024, 2, 1), "severity": "low"}],
        ),
    )
    assert [a.date for a in alerts] == [date(2024, 5, 1), date(2024, 2, 1), date(2024, 1, 1)]


def test_crisis_resources_follow_the_locale_and_default_to_us(kb):
    assert "988" in crisis_resources(kb)[0].contact
    assert "116 123" in crisis_resources(kb, "en-GB")[0].contact
    assert crisis_resources(kb, "xx-XX") == crisis_resources(kb)


def test_the_assessment_carries_alerts_and_crisis_resources(kb):
    a = assess(_with(_phq9(date(2024, 5, 1), 1)).build(), kb)
    assert a.alerts and a.crisis_resources
    assert next(iter(a.model_dump())) == "alerts"


def _file(tmp_path: Path, b) -> Path:  # type: ignore[no-untyped-def]
    p = tmp_path / "h.yaml"
    p.write_text(yaml.safe_dump(b.raw(), sort_keys=False))
    return p


def test_the_cli_report_opens_with_the_alert(tmp_path):
    p = _file(tmp_path, _with(_phq9(date(2024, 5, 1), 1)))
    r = runner.invoke(app, ["assess", str(p)])
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[0].startswith("⚠ SUICIDE RISK")
    assert "988" in r.stdout


def test_the_cli_json_has_alerts(tmp_path):
    p = _file(tmp_path, _with(_phq9(date(2024, 5, 1), 1)))
    r = runner.invoke(app, ["assess", "--json", str(p)])
    out = json.loads(r.stdout)
    assert out["alerts"][0]["code"] == "suicide_risk"
    assert {"code", "severity", "message", "date", "citation"} <= set(out["alerts"][0])


def test_the_locale_option_changes_the_crisis_lines_and_rejects_unknown_ones(tmp_path):
    p = _file(tmp_path, _with(_phq9(date(2024, 5, 1), 1)))
    r = runner.invoke(app, ["assess", "--locale", "en-GB", str(p)])
    assert "116 123" in r.stdout
    r = runner.invoke(app, ["assess", "--locale", "fr-XX", str(p)])
    assert r.exit_code == 2 and "--locale" in r.stderr


def test_there_is_no_option_to_silence_alerts():
    r = runner.invoke(app, ["assess", "--help"])
    for word in ("silence", "no-alert", "quiet", "suppress"):
        assert word not in r.stdout.lower()
