from __future__ import annotations

from pathlib import Path

from tests.builders import a_history
from trdnav.core.assessment import assess
from trdnav.core.reasons import Flag, ReasonCode

LISTED = [
    tuple(line.split())
    for line in (Path(__file__).parent / "stable_codes.txt").read_text().splitlines()
    if line and not line.startswith("#")
]


def test_no_published_code_was_renamed_or_removed(kb):
    reasons = {c.value for c in ReasonCode}
    flags = {f.value for f in Flag}
    staging = set(assess(a_history().build(), kb).staging)
    for kind, code in LISTED:
        if kind == "reason":
            assert code in reasons, code
        elif kind == "flag":
            assert code in flags, code
        elif kind == "staging":
            assert code in staging, code


def test_every_code_in_use_is_published():
    listed = {code for _, code in LISTED}
    assert {c.value for c in ReasonCode} <= listed
    assert {f.value for f in Flag} <= listed


def test_published_option_ids_and_alert_codes_still_exist(kb):
    from typing import get_args

    from trdnav.core.reevaluation import TriggerCode
    from trdnav.core.safety import ALERT_CODES
    from trdnav.knowledge.options import REQUIRED_OPTIONS

    options = set(kb.options.options)
    assert set(REQUIRED_OPTIONS) <= options
    alerts = {"suicide_risk", *get_args(TriggerCode), *ALERT_CODES}
    for kind, code in LISTED:
        if kind == "option":
            assert code in options, code
        elif kind == "alert":
            assert code in alerts, code
    listed = {code for _, code in LISTED}
    assert options <= listed and alerts <= listed


def test_published_statuses_plan_steps_and_outcomes_still_exist(kb):
    from trdnav.core.history import Outcome
    from trdnav.core.options import STATUSES

    statuses = set(STATUSES)
    steps = set(kb.plan.pathway.states)
    outcomes = {o.value for o in Outcome}
    for kind, code in LISTED:
        if kind == "option_status":
            assert code in statuses, code
        elif kind == "plan_step":
            assert code in steps, code
        elif kind == "outcome" and code != "":
            assert code in outcomes, code
    listed = {code for _, code in LISTED}
    assert statuses <= listed and steps <= listed
