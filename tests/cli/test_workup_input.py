"""Bad labs, pharmacogenomic results and current medications: one clear message each; exit 2."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from tests.builders import a_history
from trdnav.cli import app

runner = CliRunner()


def _run(tmp_path: Path, data: dict[str, Any]):  # type: ignore[no-untyped-def]
    p = tmp_path / "h.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False))
    return runner.invoke(app, ["assess", str(p)]), p


def _good() -> dict[str, Any]:
    data = a_history().trial("sertraline", 150).trial("venlafaxine", 150).raw()
    data["labs"] = [
        {"test": "vitamin B12", "value": 300, "unit": "pmol/L", "date": date(2024, 5, 1)}
    ]
    data["pgx"] = [{"gene": "CYP2C19", "phenotype": "poor metaboliser"}]
    data["current_medications"] = [{"drug": "ramipril", "mg_per_day": 5}]
    return data


def test_labs_pgx_and_current_medications_are_accepted(tmp_path):
    r, _ = _run(tmp_path, _good())
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize(
    ("field", "index", "key", "value", "loc", "words"),
    [
        ("labs", 0, "unit", "mg", "labs[0].unit", "expected: pg/mL, ng/L, pmol/L"),
        ("labs", 0, "value", -3, "labs[0].value", "not a possible vitamin B12 value"),
        ("labs", 0, "value", 10**7, "labs[0].value", "expected 0 to"),
        ("labs", 0, "test", "vitamin B21", "labs[0].test", "'vitamin B12'"),
        ("pgx", 0, "gene", "CYP2C91", "pgx[0].gene", "'CYP2C19'"),
        ("pgx", 0, "phenotype", "slow", "pgx[0].phenotype", "expected one of: ultrarapid"),
        ("current_medications", 0, "mg_per_day", -5, "current_medications[0].mg_per_day", "0"),
    ],
)
def test_bad_workup_input_names_the_field(tmp_path, field, index, key, value, loc, words):
    data = _good()
    data[field][index][key] = value
    r, p = _run(tmp_path, data)
    assert r.exit_code == 2
    assert f"{loc}:" in r.stderr
    assert words in r.stderr
    assert str(p) in r.stderr
    assert "Traceback" not in r.output
