"""Every user mistake gets one clear message naming file, field and expectation; exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from tests.builders import a_history
from trdnav.cli import app

runner = CliRunner()


def _write(tmp_path: Path, data: Any, name: str = "h.yaml") -> Path:
    p = tmp_path / name
    p.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return p


def _run(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args))


def _good() -> dict[str, Any]:
    return a_history().trial("sertraline", 150).trial("venlafaxine", 150).raw()


def test_a_good_file_exits_0(tmp_path):
    r = _run("assess", str(_write(tmp_path, _good())))
    assert r.exit_code == 0, r.output
    assert "TREATMENT-RESISTANT DEPRESSION" in r.stdout


def test_malformed_yaml_names_the_line(tmp_path):
    p = _write(tmp_path, "patient: {id: P1\nepisode: [\n")
    r = _run("assess", str(p))
    assert r.exit_code == 2
    assert "malformed YAML at line" in r.stderr
    assert str(p) in r.stderr
    assert "Traceback" not in r.output


def test_an_unknown_drug_suggests_the_closest_names(tmp_path):
    data = _good()
    data["treatments"][1]["drug"] = "venlafoxane"
    r = _run("assess", str(_write(tmp_path, data)))
    assert r.exit_code == 2
    assert "treatments[1].drug" in r.stderr
    assert "'venlafaxine'" in r.stderr


@pytest.mark.parametrize(
    ("mutate", "loc", "words"),
    [
        (
            lambda d: d["treatments"][0]["doses"][0].update(mg_per_day=-5),
            "treatments[0].doses[0].mg_per_day",
            "greater than or equal to 0",
        ),
        (
            lambda d: d["treatments"][0].update(
                stop=d["treatments"][0]["start"].replace(year=2021)
            ),
            "treatments[0].stop",
            "before start",
        ),
        (
            lambda d: d["treatments"][0]["doses"][0].update(
                **{"from": d["treatments"][0]["start"].replace(year=2021)}
            ),
            "treatments[0].doses[0].from",
            "outside the trial",
        ),
        (
            lambda d: d["treatments"][1].update(start=d["assessed_on"].replace(year=2025)),
            "treatments[1].start",
            "after the assessment date",
        ),
        (
            lambda d: d["treatments"][0].update(adherence=1.2),
            "treatments[0].adherence",
            "less than or equal to 1",
        ),
        (
            lambda d: d["treatments"][0].update(adherence=-0.1),
            "treatments[0].adherence",
            "greater than or equal to 0",
        ),
        (
            lambda d: d["treatments"][0].update(outcome="better"),
            "treatments[0].outcome",
            "no_response",
        ),
        (lambda d: d["treatments"][0].update(type="surgery"), "treatments[0]", "medication"),
        (lambda d: d["episode"].update(diagnosis="mdd"), "episode.diagnosis", "mdd_recurrent"),
        (
            lambda d: d.update(conditions=[{"name": "hypertensoin"}]),
            "conditions[0].name",
            "hypertension",
        ),
        (
            lambda d: d.update(conditions=[{"name": "hypertension", "status": "bad"}]),
            "conditions[0].status",
            "controlled, uncontrolled",
        ),
        (lambda d: d["patient"].update(colour="blue"), "patient.colour", "unknown field"),
        (lambda d: d.pop("episode"), "episode", "required field is missing"),
        (lambda d: d["episode"].update(onset="2022-13-01"), "episode.onset", "valid date"),
    ],
)
def test_each_bad_field_is_named_with_what_was_expected(tmp_path, mutate, loc, words):
    data = _good()
    mutate(data)
    r = _run("assess", str(_write(tmp_path, data)))
    assert r.exit_code == 2, r.stdout
    line = next((ln for ln in r.stderr.splitlines() if loc + ":" in ln), None)
    assert line is not None, r.stderr
    assert words in line


def test_all_problems_of_a_file_are_reported_together(tmp_path):
    data = _good()
    data["treatments"][0]["adherence"] = 2
    data["treatments"][1]["doses"][0]["mg_per_day"] = -1
    r = _run("assess", str(_write(tmp_path, data)))
    assert "treatments[0].adherence" in r.stderr
    assert "treatments[1].doses[0].mg_per_day" in r.stderr


def test_a_missing_file_is_a_clear_error(tmp_path):
    r = _run("assess", str(tmp_path / "nope.yaml"))
    assert r.exit_code == 2
    assert "cannot read file" in r.stderr


def test_good_files_are_still_reported_when_another_is_bad(tmp_path):
    good = _write(tmp_path, _good(), "good.yaml")
    bad = _write(tmp_path, "[", "bad.yaml")
    r = _run("assess", str(good), str(bad))
    assert r.exit_code == 2
    assert "TREATMENT-RESISTANT" in r.stdout
    assert "bad.yaml" in r.stderr


def test_the_installed_command_never_prints_a_traceback(tmp_path):
    p = _write(tmp_path, "patient: [1, 2\n")
    r = subprocess.run(
        [sys.executable, "-m", "trdnav", "assess", str(p)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert "malformed YAML" in r.stderr


@pytest.mark.parametrize(
    ("measurement", "loc", "words"),
    [
        (
            {"instrument": "PHQ-9", "items": [1, 2, 3]},
            "measurements[0].items",
            "PHQ-9 has 9 items; 3 answers given",
        ),
        (
            {"instrument": "PHQ-9", "items": [1, 2, 3, 4, 1, 1, 1, 1, 1]},
            "measurements[0].items[3]",
            "item 4 of PHQ-9 must be a whole number from 0 to 3; got 4",
        ),
        (
            {"instrument": "PHQ-9", "items": [1, 2, None, None, 1, 1, 1, 1, 1]},
            "measurements[0].items",
            "at most 1 item(s) may be missing",
        ),
        (
            {"instrument": "PHQ-9", "items": [1, 2, 1, 1, 1, 1, 1, 1, None]},
            "measurements[0].items",
            "item 9 may never be missing",
        ),
        ({"instrument": "PHQ9x", "items": [1]}, "measurements[0].instrument", "'PHQ-9'"),
        ({"instrument": "MADRS", "total": 75}, "measurements[0].total", "from 0 to 60"),
    ],
)
def test_each_bad_measurement_is_named_with_what_was_expected(tmp_path, measurement, loc, words):
    data = _good()
    data["measurements"] = [{"date": data["assessed_on"], **measurement}]
    r = _run("assess", str(_write(tmp_path, data)))
    assert r.exit_code == 2, r.stdout
    line = next((ln for ln in r.stderr.splitlines() if loc + ":" in ln), None)
    assert line is not None, r.stderr
    assert words in line
    assert "Traceback" not in r.output


def test_a_measurement_dated_before_birth_is_refused(tmp_path):
    data = _good()
    birth = data["patient"]["birth_date"]
    data["measurements"] = [
        {"instrument": "PHQ-9", "date": birth.replace(year=birth.year - 1), "items": [0] * 9}
    ]
    r = _run("assess", str(_write(tmp_path, data)))
    assert r.exit_code == 2
    assert "measurements[0].date" in r.stderr and "before the birth date" in r.stderr


def _example_with(tmp_path: Path, old: str, new: str) -> Path:
    """examples/01 with one line changed, written as a copy."""
    text = (Path(__file__).parents[2] / "examples" / "01-not-trd-first-trial.yaml").read_text()
    assert old in text
    return _write(tmp_path, text.replace(old, new))


def test_a_dose_step_dated_9999_12_31_is_refused_naming_the_field_without_a_traceback(tmp_path):
    p = _example_with(
        tmp_path, "{from: 2024-05-20, mg_per_day: 60}", "{from: 9999-12-31, mg_per_day: 60}"
    )
    r = subprocess.run(
        [sys.executable, "-m", "trdnav", "assess", str(p)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 2, r.stdout
    assert "Traceback" not in r.stderr
    assert (
        "treatments[1].doses[1].from: 9999-12-31 is not a plausible date "
        "(expected 1900-01-01 to 2199-12-31)"
    ) in r.stderr


@pytest.mark.parametrize(
    ("old", "new", "loc"),
    [
        ("assessed_on: 2024-06-01", "assessed_on: 9999-12-31", "assessed_on"),
        ("birth_date: 1992-03-14", "birth_date: 0001-01-01", "patient.birth_date"),
        ("onset: 2023-09-01", "onset: 1066-10-14", "episode.onset"),
        ("date: 2024-01-15", "date: 1899-12-31", "measurements[1].date"),
    ],
)
def test_a_date_outside_1900_to_2199_is_refused_naming_the_field(tmp_path, old, new, loc):
    r = _run("assess", str(_example_with(tmp_path, old, new)))
    assert r.exit_code == 2, r.stdout
    line = next((ln for ln in r.stderr.splitlines() if f"{loc}:" in ln), None)
    assert line is not None, r.stderr
    assert "is not a plausible date" in line


def test_an_implausible_today_is_refused_when_the_file_has_no_assessment_date(tmp_path):
    p = _example_with(tmp_path, "assessed_on: 2024-06-01", "")
    r = _run("assess", "--today", "9999-12-31", str(p))
    assert r.exit_code == 2, r.stdout
    assert "assessed_on: 9999-12-31 is not a plausible date" in r.stderr
    assert "the date given as today" in r.stderr


@pytest.mark.parametrize("value", [".inf", ".nan", "-.inf"])
def test_a_dose_that_is_not_a_finite_number_is_refused(tmp_path, value):
    p = _example_with(tmp_path, "mg_per_day: 50}", f"mg_per_day: {value}}}")
    r = _run("assess", str(p))
    assert r.exit_code == 2, r.stdout
    assert "treatments[0].doses[0].mg_per_day: Input should be a finite number" in r.stderr
