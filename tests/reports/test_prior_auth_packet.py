"""The prior-authorisation request packet: the policy's name, version and effective date on every
page, suicide-risk alerts first, the criteria with their evidence, the trial table with scores
before and after, the contraindication screen, the letter (as edited), identity when known, the
disclaimers — and the golden text of one example's packet.

The policies here are test policies (``TEST_POLICIES``, also used by the CLI and web tests), so
the golden file changes only when the packet does, not when a payer file is re-read. Regenerate
it after an intended change with ``TRDNAV_UPDATE_GOLDEN=1`` and review the diff.
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
from datetime import date
from pathlib import Path
from types import MappingProxyType

import pytest
import yaml
from pypdf import PdfReader

from trdnav.core.assessment import Assessment, assess
from trdnav.core.history import History
from trdnav.errors import InputError
from trdnav.history_files import load_history
from trdnav.identity import PatientIdentity
from trdnav.knowledge.load import Knowledge
from trdnav.knowledge.payers import PayerPolicy
from trdnav.reports.pdf import render_pdf
from trdnav.reports.prior_auth import (
    PriorAuthCheck,
    check_policy,
    choose_policy,
    draft_letter,
    render_packet_html,
)

ROOT = Path(__file__).parents[2]
GOLDEN = ROOT / "tests" / "golden" / "prior_auth"
ON = date(2024, 6, 1)

TEST_TMS = """
id: test_tms
payer: Test Health Plan
policy_number: TP-001
name: Transcranial magnetic stimulation for major depression
treatment: rtms
version: "2024.1"
effective_from: 2024-01-01
source: [trdnav_conventions]
verified: false
criteria:
  - id: adult
    type: age
    text: The member is 18 years of age or older.
    section: "1"
    min_years: 18
  - id: two_failed_trials
    type: failed_trials
    text: >-
      Failure of two antidepressants from two classes, each at least 6 weeks at an adequate
      dose.
    section: "2"
    min_count: 2
    min_classes: 2
    min_weeks: 6
  - id: psychotherapy
    type: psychotherapy_trial
    text: Failure of an evidence-based psychotherapy.
    section: "3"
  - id: recent_phq9
    type: baseline_severity
    text: A PHQ-9 of 15 or more within 30 days before the request.
    section: "4"
    thresholds: [{instrument: phq9, min_total: 15}]
    within_days: 30
  - id: no_bipolar
    type: exclusions
    text: No bipolar disorder.
    section: "5"
    diagnoses: [bipolar_i_depression, bipolar_ii_depression]
  - id: device
    type: attestation
    text: An FDA-cleared device is used.
    section: "6"
    item: An FDA-cleared TMS device is used
left_out:
  - Course limits are not encoded in this test policy.
"""

TEST_SPRAVATO = """
id: test_spravato
payer: Test Health Plan
name: Esketamine nasal spray for treatment-resistant depression
treatment: esketamine
version: "2024.2"
source: [trdnav_conventions]
verified: true
checked_against: a test policy, checked against itself
criteria:
  - id: adult
    type: age
    text: The member is 18 years of age or older.
    min_years: 18
  - id: two_failed_trials
    type: failed_trials
    text: Nonresponse (25 % improvement or less) to two antidepressants from two classes.
    min_count: 2
    min_classes: 2
    min_weeks: 6
    failure: {max_improvement_pct: 25}
"""
TEST_POLICIES = (TEST_TMS, TEST_SPRAVATO)


def with_test_policies(kb: Knowledge) -> Knowledge:
    """``kb`` with the test policies added (as a clinic's, through the policy model)."""
    payers = dict(kb.payers)
    for text in TEST_POLICIES:
        policy = PayerPolicy.model_validate({**yaml.safe_load(text), "clinic": True})
        payers[policy.id] = policy
    return dataclasses.replace(kb, payers=MappingProxyType(payers))


@pytest.fixture(scope="module")
def kbp(kb: Knowledge) -> Knowledge:
    return with_test_policies(kb)


def _load(kb: Knowledge, stem: str) -> tuple[History, Assessment]:
    h = load_history(ROOT / "examples" / f"{stem}.yaml", kb, ON)
    a = assess(h, kb).model_copy(update={"app_version": "0.0.0-test"})  # stable goldens
    return h, a


def _check(kb: Knowledge, stem: str, policy: str) -> tuple[History, Assessment, PriorAuthCheck]:
    h, a = _load(kb, stem)
    return h, a, check_policy(kb.payers[policy], h, a, kb, ON)


CHART = (
    '<?xml version="1.0" encoding="utf-8" standalone="no"?>\n'
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 20" width="100pt">'
    '<text x="2" y="14">PHQ-9 chart</text></svg>\n'
)
JANE = PatientIdentity(given=("Jane",), family="Sampleton", birth_date=date(1981, 4, 12), mrn="M-1")


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _pages(html: str) -> list[str]:
    return [p.extract_text() for p in PdfReader(io.BytesIO(render_pdf(html))).pages]


@pytest.fixture(scope="module")
def ex10(kbp: Knowledge) -> tuple[History, Assessment, PriorAuthCheck, list[str]]:
    h, a, check = _check(kbp, "10-measured-course", "test_tms")
    html = render_packet_html(check, h, a, kbp, CHART, ON, "Riverside Mood Clinic", JANE)
    return h, a, check, _pages(html)


def test_every_page_carries_the_policy_name_version_and_effective_date(ex10):
    _, _, check, pages = ex10
    assert len(pages) >= 2
    label = _squash(check.policy.label())
    for n, page in enumerate(pages, start=1):
        text = _squash(page)
        assert label in text, f"page {n}"
        assert "effectivefrom2024-01-01" in text, f"page {n}"
        assert "Decisionsupport,notamedicaldevice" in text, f"page {n}"
        assert "UNVERIFIEDPOLICY" in text, f"page {n}"
        assert f"Page{n}of{len(pages)}" in text


def test_the_suicide_risk_alerts_come_before_the_criteria(ex10):
    _, a, _, pages = ex10
    first = _squash(pages[0])
    assert "Suiciderisk:2alerts" in first
    assert first.index("Suiciderisk") < first.index("Thepolicy'scriteria")
    for al in a.alerts:
        if al.code == "suicide_risk":
            assert _squash(al.message) in _squash(" ".join(pages))


def test_the_packet_holds_criteria_trials_scores_screen_identity_and_letter(ex10, kbp):
    _, a, check, pages = ex10
    text = _squash(" ".join(pages))
    for r in check.result.results:
        assert _squash(r.text) in text
    assert "NOTMET" in text and "MISSINGDATA" in text and "MET" in text
    for v in a.trials:
        assert _squash(kbp.drugs[v.drug].name) in text
    assert _squash("PHQ-9 22 (2023-09-01) → 20 (2023-11-24), -9 %") in text  # sertraline
    assert "Contraindicationscreen" in text and "rTMSintheplan" in text
    assert "Sampleton,Jane" in text.replace("SAMPLETON", "Sampleton") and "M-1" in text
    assert "Letterofmedicalnecessity" in text
    assert _squash("[TO CONFIRM before sending") in text
    assert _squash(check.policy.left_out[0]) in text


def test_an_edited_letter_replaces_the_draft(kbp):
    h, a, check = _check(kbp, "03-trd-across-classes-augmented", "test_spravato")
    letter = "Dear reviewer,\nThis letter was EDITED-BY-HAND <b>with care</b>.\n"
    html = render_packet_html(check, h, a, kbp, None, ON, letter=letter)
    assert "&lt;b&gt;with care&lt;/b&gt;" in html  # escaped, never markup
    text = _squash(" ".join(_pages(html)))
    assert "EDITED-BY-HAND<b>withcare</b>" in text
    assert "Unverifiedpolicy" not in text  # test_spravato is verified


def test_the_draft_letter_is_filled_from_the_record_and_asserts_nothing_it_lacks(kbp):
    h, a, check = _check(kbp, "10-measured-course", "test_tms")
    letter = draft_letter(check, h, a, kbp, ON, "Riverside Mood Clinic", JANE)
    assert "Sampleton, Jane · DOB 1981-04-12 · MRN M-1 · clinic id EX10" in letter.replace(
        "SAMPLETON", "Sampleton"
    )
    assert "major depressive disorder, recurrent" in letter
    assert "sertraline (SSRI), 2023-09-01 to 2023-12-08: maximum 150 mg/day" in letter
    assert "PHQ-9 22 (2023-09-01) → 20 (2023-11-24), -9 %" in letter
    therapy = "Psychotherapy (CBT), 2024-01-08 to 2024-04-29, 16 sessions; outcome: response."
    assert therapy in letter
    assert "Current severity: QIDS-SR16 4 on 2024-05-24 (none); PHQ-9 3 on 2024-05-24" in letter
    assert "rTMS in the plan:" in letter
    results = {r.id: r for r in check.result.results}
    assert results["psychotherapy"].status != "met"
    assert "- Failure of an evidence-based psychotherapy — [NOT MET in the record: " in letter
    assert "- The member is 18 years of age or older — met: " in letter
    assert (
        "- An FDA-cleared device is used — [TO CONFIRM before sending: "
        "An FDA-cleared TMS device is used]"
    ) in letter
    assert "- No bipolar disorder — met: " in letter
    assert "Suicide risk (low, 2023-10-27)" in letter


def test_a_policy_of_the_other_treatment_or_an_unknown_id_is_refused_naming_the_field(kbp):
    with pytest.raises(InputError) as exc:
        choose_policy(kbp, "test_tms", "esketamine")
    (p,) = exc.value.problems
    assert (p.loc, p.code) == ("payer", "wrong_treatment")
    assert "test_spravato" in p.message and "test_tms" not in p.message.split(":")[-1]
    with pytest.raises(InputError) as exc:
        choose_policy(kbp, "nope", "tms")
    assert {(p.loc, p.code) for p in exc.value.problems} == {
        ("treatment", "unknown_treatment"),
        ("payer", "unknown_payer"),
    }


def test_the_packet_text_matches_its_golden_file(ex10):
    got = "\n".join(f"--- page {n} ---\n{p.rstrip()}" for n, p in enumerate(ex10[3], 1)) + "\n"
    golden = GOLDEN / "10-measured-course-test_tms.txt"
    if os.environ.get("TRDNAV_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(got, encoding="utf-8")
    assert golden.exists(), f"missing golden file {golden}; run with TRDNAV_UPDATE_GOLDEN=1"
    assert got == golden.read_text(encoding="utf-8")
