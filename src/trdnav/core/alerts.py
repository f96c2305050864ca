"""The suicide-risk safety net: every route that can raise a ``suicide_risk`` alert.

Routes: a suicide item answered above 0 on any instrument that has one (PHQ-9 item 9, QIDS-SR16
item 12, MADRS item 10, HAM-D17 item 3); a positive C-SSRS screener (its triage level is the
severity); a clinician entry. There is deliberately no switch, threshold or setting that turns
this off: callers get every alert on record, newest first, and must show them.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict

from trdnav.core.history import History
from trdnav.core.measures import ScoredMeasurement
from trdnav.knowledge.load import Knowledge
from trdnav.knowledge.schema import CrisisResource

Severity = Literal["low", "moderate", "high", "unassessed"]
_RANK = {"unassessed": 0, "low": 1, "moderate": 2, "high": 3}


class Alert(BaseModel):
    """A finding the clinician must see. ``suicide_risk`` alerts come first in every output."""

    model_config = ConfigDict(frozen=True)

    code: str = "suicide_risk"  # stable codes: tests/contract/stable_codes.txt
    severity: Severity
    message: str
    date: date
    route: str  # suicide_item, cssrs_screener, clinician, reevaluation, safety
    measurement_index: int | None = None
    citation: str  # full reference of the first source (JSON contract)
    citations: tuple[str, ...]
    verified: bool


def _triage_after(scored: list[ScoredMeasurement], day: date) -> ScoredMeasurement | None:
    """The first C-SSRS screener on or after ``day`` (its triage assesses that signal)."""
    for s in scored:
        if s.instrument_id == "cssrs_screener" and s.date >= day and s.score.screen is not None:
            return s
    return None


def suicide_alerts(history: History, scored: list[ScoredMeasurement], kb: Knowledge) -> list[Alert]:
    alerts: list[Alert] = []
    for s in scored:
        inst = kb.instruments[s.instrument_id]
        if s.score.suicide_signal:
            triage = _triage_after(scored, s.date)
            if triage is not None and triage.score.screen is not None:
                screen = triage.score.screen
                severity: Severity = screen.severity or "low"
                assessed = f"; C-SSRS screener on {triage.date.isoformat()}: " + (
                    f"{screen.severity} risk" if screen.positive else "no 'yes' answer"
                )
            else:
                severity = "unassessed"
                assessed = (
                    "; severity not yet assessed: needs a same-day clinician review with a "
                    "C-SSRS screener"
                )
            keys = ("posner_2011_cssrs", "simon_2013_phq9_item9")
            alerts.append(
                Alert(
                    severity=severity,
                    message=f"{inst.name} item {inst.suicide_item} (suicidal thoughts) answered "
                    f"{s.score.suicide_item_answer} on {s.date.isoformat()}{assessed}",
                    date=s.date,
                    route="suicide_item",
                    measurement_index=s.index,
                    citation=kb.citation("simon_2013_phq9_item9"),
                    citations=keys,
                    verified=inst.verified,
                )
            )
        own = s.score.screen
        if s.instrument_id == "cssrs_screener" and own is not None and own.positive:
            alerts.append(
                Alert(
                    severity=own.severity or "low",
                    message=f"C-SSRS screener on {s.date.isoformat()}: {own.detail}",
                    date=s.date,
                    route="cssrs_screener",
                    measurement_index=s.index,
                    citation=kb.citation(own.citations[0]),
                    citations=own.citations,
                    verified=own.verified,
                )
            )
    for entry in history.clinician_alerts:
        who = f" by {entry.entered_by}" if entry.entered_by else ""
        alerts.append(
            Alert(
                severity=entry.severity,
                message=f"clinician-entered suicide risk ({entry.severity}){who} on "
                f"{entry.date.isoformat()}" + (f": {entry.note}" if entry.note else ""),
                date=entry.date,
                route="clinician",
                citation=kb.citation("stanley_brown_2012"),
                citations=("stanley_brown_2012",),
                verified=True,
            )
        )
    alerts.sort(key=lambda a: (a.date, _RANK[a.severity]), reverse=True)
    return alerts


def order_alerts(suicide: list[Alert], others: list[Alert]) -> list[Alert]:
    """Suicide-risk alerts first (newest first), then the rest by severity, then newest."""
    rest = sorted(others, key=lambda a: (-_RANK[a.severity], -a.date.toordinal(), a.code))
    return [*suicide, *rest]


def crisis_resources(kb: Knowledge, locale: str | None = None) -> tuple[CrisisResource, ...]:
    """Crisis lines for ``locale`` (e.g. ``en-GB``); the default locale when unknown."""
    table = kb.measurement.crisis_resources
    return table.get(locale or "", table[kb.measurement.default_locale])
