"""``trdnav prior-auth``: the policy label first, suicide-risk alerts, each criterion with its
status, reason, evidence and what is missing, then a summary line; ``--json``; ``--list``;
``--pdf``; and every mistake named with the choices, exit 2, never a traceback.

The knowledge base is the packaged one with the test policies of
tests/reports/test_prior_auth_packet.py.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import yaml
from pypdf import PdfReader
from typer.testing import CliRunner

from tests.builders import a_history
from tests.reports.test_prior_auth_packet import with_test_policies
from trdnav import cli_prior_auth
from trdnav.cli import app
from trdnav.knowledge.load import Knowledge

runner = CliRunner()
EX10 = str(Path(__file__).parents[2] / "examples" / "10-measured-course.yaml")


@pytest.fixture(autouse=True)
def test_policies(kb: Knowledge, monkeypatch: pytest.MonkeyPatch) -> Knowledge:
    kbp = with_test_policies(kb)
    monkeypatch.setattr(cli_prior_auth, "default_knowledge", lambda: kbp)
    return kbp


def _run(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["prior-auth", *args])


def test_the_text_output_reads_label_alerts_criteria_then_summary():
    r = _run(EX10, "--payer", "test_tms", "--treatment", "rtms")
    assert r.exit_code == 0, r.output
    out = r.stdout
    lines = out.splitlines()
    assert lines[0] == (
        "Policy: Test Health Plan — Transcranial magnetic stimulation for major depression "
        "(TP-001), version 2024.1"
    )
    assert "  treatment rtms · effective from 2024-01-01" in lines
    assert any(line.startswith("  Unverified policy:") for line in lines)
    assert "Patient EX10 · request 2024-06-01 (initial)" in lines
    first_alert = out.index("SUICIDE RISK: LOW · 2023-10-27")
    assert first_alert < out.index("Criteria:")
    for status in ("MET", "NOT MET", "MISSING DATA"):
        assert f"\n  {status:<14} " in out
    assert "      + sertraline (SSRI), 2023-09-01 to 2023-12-08" in out
    assert "(treatments[1], 2023-09-01)" in out
    assert "      missing: An FDA-cleared TMS device is used" in out
    assert "(attestation: the clinician confirms)" in out
    assert "does not count" in out
    assert "Contraindication screen: rTMS in the plan:" in out
    assert "  - Course limits are not encoded in this test policy." in out
    assert lines[-2].startswith("Summary: NOT MET: ")
    assert (
        "3 met, 2 not met, 0 missing data, 1 to confirm by the clinician, 0 not applicable"
        in lines[-2]
    )
    assert lines[-1].startswith("Decision support, not a medical device")


def test_json_is_the_result_with_the_alerts():
    r = _run(EX10, "--payer", "test_spravato", "--treatment", "esketamine", "--json")
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["policy_id"] == "test_spravato" and data["verified"] is True
    assert data["overall"] in ("all_met", "gaps", "not_met")
    assert [x["id"] for x in data["results"]] == ["adult", "two_failed_trials"]
    assert {a["code"] for a in data["alerts"]} == {"suicide_risk"}


def test_date_and_renewal_are_passed_to_the_check():
    r = _run(
        EX10,
        "--payer",
        "test_tms",
        "--treatment",
        "rtms",
        "--date",
        "2023-12-15",
        "--renewal",
        "--json",
    )
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert (data["request_date"], data["kind"]) == ("2023-12-15", "renewal")
    assert {x["status"] for x in data["results"]} == {"not_applicable"}  # initial-only criteria


def test_list_shows_every_policy_with_its_treatment_version_and_verification():
    r = _run("--list")
    assert r.exit_code == 0, r.output
    assert "test_tms" in r.stdout and "test_spravato" in r.stdout and "UNVERIFIED" in r.stdout
    rows = json.loads(_run("--list", "--json").stdout)
    row = next(x for x in rows if x["id"] == "test_tms")
    assert row["treatment"] == "rtms" and row["version"] == "2024.1"
    assert row["verified"] is False and row["clinic"] is True


def test_pdf_writes_the_packet(tmp_path: Path):
    out = tmp_path / "packet.pdf"
    r = _run(EX10, "--payer", "test_tms", "--treatment", "rtms", "--pdf", str(out))
    assert r.exit_code == 0, r.output
    assert f"wrote {out}" in r.stderr
    pages = PdfReader(io.BytesIO(out.read_bytes())).pages
    assert all("version 2024.1" in p.extract_text() for p in pages)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (
            ["--payer", "test_tms", "--treatment", "esketamine"],
            ["--payer: 'test_tms' is a rtms policy, not esketamine", "test_spravato"],
        ),
        (
            ["--payer", "nope", "--treatment", "rtms"],
            ["--payer: no payer policy 'nope'", "test_tms"],
        ),
        (
            ["--payer", "test_tms", "--treatment", "tms"],
            ["--treatment: expected rtms or esketamine"],
        ),
        (["--payer", "test_tms"], ["--treatment: expected rtms or esketamine, got nothing"]),
        (["--treatment", "rtms"], ["--payer: choose a payer policy; one of:", "test_tms"]),
        (
            ["--payer", "test_tms", "--treatment", "rtms", "--date", "2024-02-30"],
            ["--date: expected YYYY-MM-DD, got '2024-02-30'"],
        ),
    ],
)
def test_a_bad_option_is_named_with_the_choices_and_exits_2(args: list[str], words: list[str]):
    r = _run(EX10, *args)
    assert r.exit_code == 2, r.output
    for w in words:
        assert w in r.stderr
    assert "Traceback" not in r.output
    assert r.stdout == ""


def test_a_missing_file_or_a_bad_history_exits_2_naming_it(tmp_path: Path):
    r = _run("--payer", "test_tms", "--treatment", "rtms")
    assert r.exit_code == 2 and "FILE: give a history file" in r.stderr
    bad = a_history().trial("sertraline", 150).raw()
    bad["treatments"][0]["drug"] = "sertralyne"
    path = tmp_path / "h.yaml"
    path.write_text(yaml.safe_dump(bad, sort_keys=False))
    r = _run(str(path), "--payer", "test_tms", "--treatment", "rtms")
    assert r.exit_code == 2
    assert "treatments[0].drug" in r.stderr and "Traceback" not in r.output
    r = _run(str(tmp_path / "none.yaml"), "--payer", "test_tms", "--treatment", "rtms")
    assert r.exit_code == 2 and "cannot read file" in r.stderr
