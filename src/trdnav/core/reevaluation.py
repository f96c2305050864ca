"""When to step back and re-evaluate the diagnosis and formulation, not just switch again.

Routes, each raising ``re_evaluation_due`` with its reason: several failed adequate trials (from
the TRD determination); a reliable worsening on a depression instrument during an ongoing trial
taken with adequate adherence; suicidal thoughts on any form in the recent window; a marked sleep
or appetite change (QIDS-SR16 domains, PHQ-9 items 3 and 5); features that look bipolar (positive
MDQ, family history of bipolar disorder, bipolar diagnosis; these also raise
``bipolarity_suspected``); emotional blunting when the condition vocabulary has a term for it.
``inadequate_trials`` is raised when pseudo-resistance is suspected or a trial was inadequate.
Thresholds are in ``knowledge/data/workup/reevaluation.yaml``. Pure: no clock, no file reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict

from trdnav.core.adequacy import TrialVerdict
from trdnav.core.date_range import add_days
from trdnav.core.history import History
from trdnav.core.measures import ScoredMeasurement
from trdnav.core.reasons import Flag
from trdnav.core.resistance import BIPOLAR, TrdDetermination
from trdnav.core.trajectory import TRIAL_OUTCOME_INSTRUMENTS, trajectory
from trdnav.knowledge.load import Knowledge
from trdnav.knowledge.schema import NumberFact
from trdnav.knowledge.workup import ReevaluationRules

TriggerCode = Literal["re_evaluation_due", "bipolarity_suspected", "inadequate_trials"]
Reason = Literal[
    "several_failures",
    "worsening_despite_adherence",
    "suicidal_thoughts",
    "sleep_or_appetite_change",
    "bipolar_features",
    "emotional_blunting",
    "inadequate_trials",
]
_INADEQUATE = (
    "dose_below_minimum",
    "duration_too_short",
    "poor_adherence",
    "serum_level_below_target",
)


class Trigger(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: TriggerCode
    reason: Reason
    severity: Literal["low", "moderate", "high"]
    message: str
    date: date
    citation: str  # full reference of the first source
    citations: tuple[str, ...]
    verified: bool


def _trigger(
    kb: Knowledge,
    code: TriggerCode,
    reason: Reason,
    severity: Literal["low", "moderate", "high"],
    message: str,
    day: date,
    facts: Sequence[NumberFact],
    extra: Sequence[str] = (),
    verified: bool = True,
) -> Trigger:
    keys = tuple(dict.fromkeys((*(k for f in facts for k in f.source), *extra)))
    return Trigger(
        code=code,
        reason=reason,
        severity=severity,
        message=message,
        date=day,
        citation=kb.citation(keys[0]),
        citations=keys,
        verified=verified and all(f.verified for f in facts),
    )


def _worsening(
    history: History,
    scored: Sequence[ScoredMeasurement],
    verdicts: Sequence[TrialVerdict],
    kb: Knowledge,
    rules: ReevaluationRules,
) -> list[Trigger]:
    floor = kb.adequacy.min_adherence.value
    out: list[Trigger] = []
    for v in verdicts:
        adherent = v.adherence is not None and v.adherence >= floor
        if v.stop is not None or not adherent or "poor_adherence" in v.reasons:
            continue
        for inst_id in TRIAL_OUTCOME_INSTRUMENTS:
            t = trajectory(scored, kb, inst_id, history, since=v.start)
            if t is None or t.reliable_change != "worsened" or t.latest is None:
                continue
            out.append(
                _trigger(
                    kb,
                    "re_evaluation_due",
                    "worsening_despite_adherence",
                    "high",
                    f"{t.instrument} worsened reliably on {v.drug} (ongoing since "
                    f"{v.start.isoformat()}, adherence {v.adherence:.0%}): "
                    f"{t.baseline.total if t.baseline else '?':g} -> {t.latest.total:g} on "
                    f"{t.latest.date.isoformat()}; re-evaluate diagnosis, adherence and "
                    "interacting drugs",
                    t.latest.date,
                    [rules.worsening, kb.adequacy.min_adherence],
                    t.citations,
                    t.verified,
                )
            )
            break
    return out


def _recent(
    scored: Sequence[ScoredMeasurement], as_of: date, rules: ReevaluationRules
) -> list[ScoredMeasurement]:
    since = add_days(as_of, -7 * rules.recent_weeks.value)
    return [s for s in scored if since <= s.date <= as_of]


def _sleep_appetite(
    recent: Sequence[ScoredMeasurement], kb: Knowledge, rules: ReevaluationRules
) -> Trigger | None:
    hits: list[tuple[ScoredMeasurement, str]] = []
    facts: list[NumberFact] = [rules.recent_weeks]
    for s in recent:
        if s.instrument_id == "qids_sr16":
            sleep = s.score.domains.get("sleep")
            appetite = s.score.domains.get("appetite_weight")
            if sleep is not None and sleep >= rules.qids_sleep_domain_min.value:
                hits.append((s, f"sleep domain {sleep:g}"))
                facts.append(rules.qids_sleep_domain_min)
            if appetite is not None and appetite >= rules.qids_appetite_domain_min.value:
                hits.append((s, f"appetite/weight domain {appetite:g}"))
                facts.append(rules.qids_appetite_domain_min)
        elif s.instrument_id == "phq9" and s.score.answers is not None:
            for n, label in ((3, "sleep"), (5, "appetite")):
                answer = s.score.answers[n - 1] if len(s.score.answers) >= n else None
                if answer is not None and answer >= rules.phq9_sleep_appetite_item_min.value:
                    hits.append((s, f"item {n} ({label}) {answer}"))
                    facts.append(rules.phq9_sleep_appetite_item_min)
    if not hits:
        return None
    detail = "; ".join(f"{s.instrument} {s.date.isoformat()}: {what}" for s, what in hits)
    return _trigger(
        kb,
        "re_evaluation_due",
        "sleep_or_appetite_change",
        "moderate",
        f"marked sleep or appetite change ({detail}): look for a sleep disorder, a medical "
        "cause, substance use or a drug effect",
        max(s.date for s, _ in hits),
        facts,
    )


def _bipolar(
    history: History,
    scored: Sequence[ScoredMeasurement],
    as_of: date,
    kb: Knowledge,
    rules: ReevaluationRules,
) -> list[Trigger]:
    found: list[tuple[str, date, tuple[str, ...], bool]] = []
    for s in scored:
        screen = s.score.screen
        if s.instrument_id == "mdq" and screen is not None and screen.positive:
            found.append(
                (f"positive MDQ on {s.date.isoformat()}", s.date, screen.citations, screen.verified)
            )
    for cond in history.conditions:
        if cond.name == "bipolar_family_history":
            found.append(("family history of bipolar disorder", as_of, (), True))
    if history.episode.diagnosis in BIPOLAR:
        found.append((f"diagnosis {history.episode.diagnosis.value} on record", as_of, (), True))
    if not found:
        return []
    what = "; ".join(f for f, _, _, _ in found)
    day = max(d for _, d, _, _ in found)
    keys = (*(k for _, _, c, _ in found for k in c), "mcallister_williams_2020")
    ok = all(v for _, _, _, v in found)
    return [
        _trigger(
            kb,
            "bipolarity_suspected",
            "bipolar_features",
            "moderate",
            f"features that look bipolar ({what}): reconsider the diagnosis; antidepressant "
            "failures in bipolar depression do not carry the same meaning",
            day,
            [],
            keys,
            ok,
        ),
        _trigger(
            kb,
            "re_evaluation_due",
            "bipolar_features",
            "moderate",
            f"re-evaluate the diagnosis: {what}",
            day,
            [],
            keys,
            ok,
        ),
    ]


def reevaluation_triggers(
    history: History,
    scored: Sequence[ScoredMeasurement],
    verdicts: Sequence[TrialVerdict],
    trd: TrdDetermination,
    as_of: date,
    kb: Knowledge,
) -> list[Trigger]:
    """Every re-evaluation trigger on record as of ``as_of``, highest severity first."""
    rules = kb.workup.reevaluation
    out: list[Trigger] = []
    need = rules.several_failures.value
    if trd.failed_adequate_trials >= need:
        out.append(
            _trigger(
                kb,
                "re_evaluation_due",
                "several_failures",
                "moderate",
                f"{trd.failed_adequate_trials} failed adequate trials (threshold {need:g}): "
                "re-evaluate the diagnosis, comorbidity and pseudo-resistance causes",
                as_of,
                [rules.several_failures],
            )
        )
    out.extend(_worsening(history, scored, verdicts, kb, rules))
    recent = _recent(scored, as_of, rules)
    suicidal = [s for s in recent if s.score.suicide_signal]
    if suicidal:
        last = suicidal[-1]
        out.append(
            _trigger(
                kb,
                "re_evaluation_due",
                "suicidal_thoughts",
                "high",
                f"suicidal thoughts reported on {last.instrument} on {last.date.isoformat()} "
                f"(within {rules.recent_weeks.value:g} weeks): re-evaluate risk and the "
                "treatment plan now",
                last.date,
                [rules.recent_weeks],
                ("simon_2013_phq9_item9",),
            )
        )
    sleep = _sleep_appetite(recent, kb, rules)
    if sleep is not None:
        out.append(sleep)
    out.extend(_bipolar(history, scored, as_of, kb, rules))
    blunting = rules.emotional_blunting_condition
    if blunting in kb.conditions and any(c.name == blunting for c in history.conditions):
        out.append(
            _trigger(
                kb,
                "re_evaluation_due",
                "emotional_blunting",
                "low",
                "emotional blunting recorded: consider whether it is a drug effect or residual "
                "depression",
                as_of,
                [],
                ("trdnav_conventions",),
                False,
            )
        )
    inadequate = [
        v
        for v in verdicts
        if v.adequate is False
        and "ongoing" not in v.reasons
        and "before_current_episode" not in v.reasons
        and any(r in v.reasons for r in _INADEQUATE)
    ]
    if Flag.PSEUDO_RESISTANCE_SUSPECTED in trd.flags or inadequate:
        names = ", ".join(f"{v.drug} ({v.start.isoformat()})" for v in inadequate)
        why = f"inadequate trial(s): {names}" if names else "pseudo-resistance suspected"
        out.append(
            _trigger(
                kb,
                "inadequate_trials",
                "inadequate_trials",
                "moderate",
                f"{why}: optimise dose, duration and adherence before counting failures",
                as_of,
                [kb.adequacy.pseudo_resistance_min_inadequate],
            )
        )
    rank = {"high": 0, "moderate": 1, "low": 2}
    out.sort(key=lambda t: (rank[t.severity], t.code, t.reason))
    return out
