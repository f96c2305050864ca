"""Rank the next-step options for one patient: recommend, consider, use with caution or avoid.

``plan_options`` is pure: it reads the validated history, its :class:`Assessment` and the knowledge
base, and returns one :class:`OptionResult` per option in ``knowledge/data/options/`` (options
written only for bipolar depression are left out of a unipolar plan), ranked 1..n. The rules are
listed in ``docs/options.md``; each rule that fires adds a patient-specific reason.

The plan follows where the patient is now (:mod:`trdnav.core.current_state`): the rules of
``knowledge/data/plan/pathway.yaml`` for the patient's plan step, and for a bipolar depression the
rules of ``plan/bipolar.yaml``, change the statuses the failure count gave.

Statuses say what they mean: ``not_indicated_now`` (the current state makes the option premature
or unnecessary now) and ``already_tried`` (every candidate drug failed an adequate trial, or the
treatment failed in this episode) are kept apart from ``contraindicated``, which only a safety
finding gives. Safety findings come in through ``findings`` (option id → findings) so that this
module does not depend on the safety screen: a contraindicated finding makes the option
contraindicated, a caution finding caps it at caution.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Literal, Protocol

from pydantic import BaseModel, ConfigDict

from trdnav.core.adequacy import TrialVerdict
from trdnav.core.current_state import CurrentState
from trdnav.core.history import FAILED_OUTCOMES, History, Outcome, Severity
from trdnav.core.measures import score_measurements
from trdnav.knowledge.load import Knowledge
from trdnav.knowledge.options import TreatmentOption
from trdnav.knowledge.plan import StepRule

if TYPE_CHECKING:  # assessment.py calls this module: import for types only
    from trdnav.core.assessment import Assessment

Status = Literal[
    "recommended", "consider", "caution", "not_indicated_now", "already_tried", "contraindicated"
]
STATUS_ORDER: dict[str, int] = {
    "recommended": 0,
    "consider": 1,
    "caution": 2,
    "not_indicated_now": 3,
    "already_tried": 4,
    "contraindicated": 5,
}
STATUSES: tuple[str, ...] = tuple(STATUS_ORDER)
URGENT_BOOST = 100  # urgent ECT comes first whatever the state (CANMAT: 1st line when urgent)
INDICATION_BOOST = 3
TRIED_PENALTY = -2
AT_MAX_PENALTY = -2
# Non-drug treatments of the history (Assessment.other_treatments.type) and the option they repeat.
TRIED_AS: dict[str, str] = {
    "ect": "ect",
    "rtms": "rtms",
    "esketamine": "esketamine",
    "ketamine": "ketamine_iv",
}


class SafetyLike(Protocol):
    """What this module reads of a safety finding (trdnav.core.safety.Finding)."""

    @property
    def code(self) -> str: ...
    @property
    def severity(self) -> str: ...  # "contraindicated" | "caution" | "info"
    @property
    def message(self) -> str: ...
    @property
    def citations(self) -> Sequence[str]: ...
    @property
    def verified(self) -> bool: ...


class Evidence(BaseModel):
    model_config = ConfigDict(frozen=True)

    figure: str
    study: str
    citation: str  # full reference text
    citation_key: str
    verified: bool


class OptionResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    rank: int
    status: Status
    category: str
    name: str
    line: str
    drugs: tuple[str, ...]  # the candidate drugs left for this patient
    reasons: tuple[str, ...]
    evidence: tuple[Evidence, ...]
    summary_plain: str
    investigational: bool
    specialist: bool
    verified: bool
    citations: dict[str, str]
    evidence_grade: str | None = None
    facts: int = 0  # the knowledge-base facts this row rests on (placements, figures, rules)
    facts_unverified: int = 0  # of those, the ones not yet verified in their source


@dataclass(frozen=True)
class _Facts:
    """What the rules need to know about the patient, derived once."""

    failures: int
    failed_drugs: frozenset[str]
    failed_by_class: Mapping[str, int]
    last: TrialVerdict | None
    trd: str
    bipolar: bool
    chronic: bool
    urgent_ect: tuple[str, ...]
    trauma: str | None
    sleep: str | None
    tried: Mapping[str, str]  # option id -> the failed course, described
    intolerances: int
    pgx_genes: tuple[str, ...]
    state: CurrentState | None
    diagnosis: str
    failed_trials: Mapping[str, str]  # drug id -> its failed adequate trial, described


@dataclass
class _Draft:
    option: TreatmentOption
    status: Status
    boost: int = 0
    drugs: tuple[str, ...] = ()
    reasons: list[str] = field(default_factory=list)
    extra_citations: list[str] = field(default_factory=list)
    findings_unverified: int = 0
    findings: int = 0
    at_max: bool = False  # optimise: the dose already reached the usual maximum
    rules_applied: int = 0  # plan rules that changed or explained this option
    rules_unverified: int = 0  # of those, the ones not yet verified

    def cap(self, worst_allowed: Status) -> None:
        """Lower the status to ``worst_allowed`` unless it is already worse."""
        if STATUS_ORDER[self.status] < STATUS_ORDER[worst_allowed]:
            self.status = worst_allowed


def _last_trial(trials: Sequence[TrialVerdict]) -> TrialVerdict | None:
    """The latest antidepressant trial (not an add-on), by date then drug: order-independent."""
    own = [v for v in trials if v.augments is None and v.role == "antidepressant"]
    return max(own, key=lambda v: (v.start, v.stop or date.max, v.drug), default=None)


def _trauma_signal(history: History, kb: Knowledge) -> str | None:
    if any(c.name == "ptsd" for c in history.conditions):
        return "post-traumatic stress disorder is on the record"
    pcl = [s for s in score_measurements(history, kb) if s.instrument_id == "pcl5"]
    latest = max(pcl, key=lambda s: (s.date, s.index), default=None)
    if latest is not None and latest.score.screen is not None and latest.score.screen.positive:
        return f"the PCL-5 of {latest.date.isoformat()} screens positive for PTSD"
    return None


def _sleep_signal(history: History) -> str | None:
    names = {c.name: c.status for c in history.conditions}
    if "insomnia" in names:
        return "chronic insomnia is on the record"
    if "sleep_apnea" in names and names["sleep_apnea"] != "treated":
        return "obstructive sleep apnoea is on the record and not marked as treated"
    return None


def _facts(history: History, assessment: Assessment, kb: Knowledge) -> _Facts:
    failed = [v for v in assessment.trials if v.adequate is True and v.outcome in FAILED_OUTCOMES]
    failed_drugs = frozenset(v.drug for v in failed)
    # The TRD count can be zero (bipolar depression); count distinct failed drugs as well.
    own_failures = {v.drug for v in failed if v.augments is None and v.role == "antidepressant"}
    by_class = Counter(
        kb.drugs[d].drug_class
        for d in failed_drugs
        if d in kb.drugs and kb.is_antidepressant(kb.drugs[d])
    )
    urgent: list[str] = []
    if history.episode.severity == Severity.SEVERE_PSYCHOTIC:
        urgent.append("severe depression with psychotic features")
    if any(a.code == "suicide_risk" and a.severity == "high" for a in assessment.alerts):
        urgent.append("a high suicide-risk alert")
    if any(c.name == "catatonia" for c in history.conditions):
        urgent.append("catatonia")
    if any(c.name == "poor_oral_intake" for c in history.conditions):
        urgent.append("poor food or fluid intake")
    tried = {
        TRIED_AS[t.type]: _course(t.type, t.start, t.stop, t.outcome)
        for t in sorted(assessment.other_treatments, key=lambda t: (t.start, t.type))
        if t.type in TRIED_AS and t.outcome in {o.value for o in FAILED_OUTCOMES}
    }
    failed_trials = {
        v.drug: _course(v.drug, v.start, v.stop, v.outcome.value)
        for v in sorted(failed, key=lambda v: (v.start, v.index))
    }
    return _Facts(
        failures=max(assessment.trd.failed_adequate_trials, len(own_failures)),
        failed_drugs=failed_drugs,
        failed_by_class=dict(by_class),
        last=_last_trial(assessment.trials),
        trd=assessment.trd.status,
        bipolar=assessment.plan_context is not None and assessment.plan_context.bipolar,
        chronic="chronic" in assessment.trd.flags,
        urgent_ect=tuple(urgent),
        trauma=_trauma_signal(history, kb),
        sleep=_sleep_signal(history),
        tried=tried,
        intolerances=sum(1 for v in assessment.trials if v.outcome == Outcome.INTOLERANCE),
        # getattr: the pgx field of the history format is new (workup, issue 4).
        pgx_genes=tuple(sorted({r.gene for r in getattr(history, "pgx", ())})),
        state=assessment.plan_context,
        diagnosis=history.episode.diagnosis.value,
        failed_trials=failed_trials,
    )


def _course(what: str, start: date, stop: date | None, outcome: str) -> str:
    until = stop.isoformat() if stop is not None else "ongoing"
    return f"{what.replace('_', ' ')} {start.isoformat()} to {until}, {outcome.replace('_', ' ')}"


def _base(option: TreatmentOption, f: _Facts) -> _Draft:
    """Rule 1: the status from the option's own thresholds (failures, partial response, TRD)."""
    if option.investigational:
        return _Draft(
            option, "consider", reasons=["investigational: available only within a clinical trial"]
        )
    after = option.recommend_after_failures
    if after is None:
        return _Draft(option, "consider")
    if option.requires_trd and f.trd != "trd":
        return _Draft(
            option,
            "consider",
            reasons=[f"reserved for TRD; TRD status is {f.trd.replace('_', ' ')}"],
        )
    if f.failures < after:
        return _Draft(
            option,
            "consider",
            reasons=[f"{f.failures} failed adequate trial(s); recommended after {after} or more"],
        )
    if option.requires_partial_response and (
        f.last is None or f.last.outcome != Outcome.PARTIAL_RESPONSE
    ):
        outcome = f.last.outcome.value.replace("_", " ") if f.last else "none"
        return _Draft(
            option,
            "consider",
            reasons=[f"an add-on is favoured after a partial response; latest outcome: {outcome}"],
        )
    why = f"{f.failures} failed adequate trial(s) on record"
    if option.requires_trd:
        why = f"TRD: {why}"
    if option.requires_partial_response and f.last is not None:
        why = f"{why}; {f.last.drug} gave a partial response"
    return _Draft(option, "recommended", reasons=[why])


def _optimise(d: _Draft, f: _Facts, kb: Knowledge) -> None:
    """Rule 2: optimise the dose of the current/last antidepressant while it is below usual max."""
    last = f.last
    if last is None:
        d.reasons.append("no antidepressant trial on record")
        return
    d.drugs = (last.drug,)
    drug = kb.drugs.get(last.drug)
    dose = drug.antidepressant_dose if drug else None
    # an ongoing trial is judged on today's dose (it may have been lowered), a stopped one on its
    # highest dose
    now = f.state
    current = None
    if now is not None and now.trial_index == last.index:
        current = next((o.mg_per_day for o in now.ongoing if o.index == last.index), None)
    mg = current if current is not None else last.max_mg_per_day
    if dose is None or mg is None:
        d.reasons.append(f"the dose of {last.drug} is not recorded")
        return
    usual_max = dose.usual_max_mg_per_day
    if mg >= usual_max:
        d.at_max = True
        d.boost += AT_MAX_PENALTY
        d.reasons.append(f"{last.drug} already reached the usual maximum ({usual_max:g} mg/day)")
        return
    below = f"{last.drug} {mg:g} mg/day is below the usual maximum {usual_max:g}"
    if last.adequate is not True:
        d.status = "recommended"
        d.reasons.append(f"{below}, and the trial has not yet been adequate")
    elif last.outcome == Outcome.PARTIAL_RESPONSE:
        d.status = "recommended"
        d.reasons.append(f"{below}, with a partial response")
    else:
        d.reasons.append(
            f"{below}, but the adequate trial gave {last.outcome.value.replace('_', ' ')}"
        )


def _continue(d: _Draft, f: _Facts) -> None:
    """Rule 2b: continuing names what is running now (the antidepressant and its add-ons)."""
    if f.state is not None:
        d.drugs = tuple(o.name for o in f.state.ongoing if o.kind in ("antidepressant", "add-on"))


def _candidates(d: _Draft, f: _Facts, kb: Knowledge) -> None:
    """Rule 3: never re-propose a drug that failed an adequate trial (nor the current drug).

    With no candidate left the option is ``already_tried`` (every drug failed an adequate trial,
    each listed with its trial) or ``not_indicated_now`` (its only drug is the current one):
    history, never a safety ``contraindicated``.
    """
    option = d.option
    failed = [x for x in option.drugs if x in f.failed_drugs]
    current = f.state.drug if f.state is not None else None
    left = tuple(x for x in option.drugs if x not in f.failed_drugs and x != current)
    d.drugs = left
    if current is not None and current in option.drugs:
        d.reasons.append(f"{current} is the current antidepressant")
    if not left:
        if failed:
            d.cap("already_tried")
            d.reasons.append(
                "already tried: " + "; ".join(f.failed_trials.get(x, x) for x in failed)
            )
        else:
            d.cap("not_indicated_now")
        return
    if failed:
        d.reasons.append(f"leaves out {', '.join(failed)} (already failed an adequate trial)")
    if option.category != "switch":
        return
    for cls in sorted({kb.drugs[x].drug_class for x in left}):
        if f.failed_by_class.get(cls, 0) >= 2:
            d.cap("consider")
            d.reasons.append(
                f"two or more adequate trials of the {cls} class failed; prefer another"
            )


def _reason_fields(f: _Facts, kb: Knowledge) -> dict[str, str]:
    """The values a plan rule's reason may use ({drug} {state} {detail} {months})."""
    cont = kb.plan.pathway.continuation
    s = f.state
    return {
        "drug": (s.drug if s is not None else None) or "the current treatment",
        "state": s.label if s is not None else "",
        "detail": (s.response_detail or s.adequacy_detail) if s is not None else "",
        "months": f"{cont.months_min.value:g}–{cont.months_max.value:g}",
    }


def _apply_rule(d: _Draft, rule: StepRule, fields: Mapping[str, str]) -> None:
    """One plan rule: its effect on the status, its boost, its reason and its sources."""
    if rule.effect == "recommend":
        if d.at_max:
            return  # a dose already at the usual maximum cannot be raised: the rule does not fit
        if d.status == "consider":
            d.status = "recommended"
    elif rule.effect == "consider":
        d.cap("consider")
    elif rule.effect == "not_indicated_now":
        d.cap("not_indicated_now")
    d.boost += rule.boost
    d.reasons.append(rule.reason.format(**fields))
    d.extra_citations.extend(rule.source)
    d.rules_applied += 1
    d.rules_unverified += 0 if rule.verified else 1


def _plan_rules(d: _Draft, f: _Facts, kb: Knowledge) -> None:
    """Rules 11-12: the stepped plan for where the patient is now, then the bipolar ladder."""
    option = d.option
    fields = _reason_fields(f, kb)
    if f.state is not None:
        for rule in kb.plan.pathway.rules:
            if f.state.step in rule.steps and rule.matches(option.id, option.category):
                _apply_rule(d, rule, fields)
    if f.bipolar:
        for rule in kb.plan.bipolar.rules:
            if rule.matches(option.id, option.category, f.diagnosis):
                _apply_rule(d, rule, fields)


def _patient_rules(d: _Draft, f: _Facts, kb: Knowledge) -> None:
    """Rules 4-8: urgent ECT, chronic depression, trauma, sleep, bipolar, already tried."""
    option = d.option
    if option.id == "ect" and f.urgent_ect:
        if d.status in ("consider", "not_indicated_now"):
            d.status = "recommended"
        d.boost += URGENT_BOOST
        d.reasons.append(f"moved up for {', '.join(f.urgent_ect)} (CANMAT: 1st line when urgent)")
    if option.id == "psychotherapy_cbasp" and f.chronic:
        d.status = "recommended" if d.status == "consider" else d.status
        d.boost += INDICATION_BOOST
        d.reasons.append("the episode is chronic (2 years or more); CBASP was built for this")
    if option.id == "trauma_focused_therapy":
        if f.trauma is not None:
            d.status = "recommended" if d.status == "consider" else d.status
            d.boost += INDICATION_BOOST
            d.reasons.append(f"trauma-focused care: {f.trauma}")
        else:
            d.reasons.append("no PTSD diagnosis or positive PCL-5 on record")
    if option.id == "sleep_intervention":
        if f.sleep is not None:
            d.status = "recommended" if d.status == "consider" else d.status
            d.boost += INDICATION_BOOST
            d.reasons.append(f.sleep)
        else:
            d.reasons.append("no insomnia or untreated sleep apnoea on record")
    if option.id == "pgx_testing":
        _pgx(d, f)
    antidepressant = option.category in ("switch", "optimise") or (
        option.category in ("augment", "combination")
        and bool(option.drugs)
        and all(x in kb.drugs and kb.is_antidepressant(kb.drugs[x]) for x in option.drugs)
    )
    if f.bipolar and antidepressant and option.applies_to != "bipolar":
        d.cap("caution")
        d.reasons.append("bipolar depression: an antidepressant may trigger (hypo)mania or cycling")
    if option.id in f.tried:
        d.cap("already_tried")
        d.boost += TRIED_PENALTY
        d.reasons.append(f"already tried in this episode: {f.tried[option.id]}")


def _pgx(d: _Draft, f: _Facts) -> None:
    """Rule 9: results already on record lower testing; repeated failure or intolerance raise it.

    CPIC says how to use a known genotype, not whom to test, so testing is never recommended.
    """
    if f.pgx_genes:
        d.boost += TRIED_PENALTY
        d.reasons.append(f"pharmacogenomic results already on record ({', '.join(f.pgx_genes)})")
    elif f.failures >= 2 or f.intolerances >= 1:
        d.boost += 1
        d.reasons.append(
            f"{f.failures} failed adequate trial(s) and {f.intolerances} stopped for "
            "intolerance: a genotype may inform dosing"
        )


def _safety(d: _Draft, found: Sequence[SafetyLike]) -> None:
    """Rule 10: safety findings; contraindicated wins, caution caps, info is only a reason."""
    for item in sorted(found, key=lambda x: (x.severity, x.code, x.message)):
        if item.severity == "contraindicated":
            d.status = "contraindicated"
        elif item.severity == "caution":
            d.cap("caution")
        d.reasons.append(f"safety ({item.severity}): {item.message}")
        d.extra_citations.extend(item.citations)
        d.findings += 1
        d.findings_unverified += 0 if item.verified else 1


def _line(option: TreatmentOption) -> str:
    placements = sorted(option.guidelines, key=lambda g: g.guideline != "CANMAT 2023")
    if not placements:
        return "no guideline placement stored"
    return f"{placements[0].guideline}: {placements[0].line}"


def _sort_key(d: _Draft) -> tuple[int, int, int, str]:
    """Status, then patient-specific boosts, then the option's base priority, then id."""
    return (STATUS_ORDER[d.status], -d.boost, -d.option.base_priority, d.option.id)


def _result(rank: int, d: _Draft, kb: Knowledge) -> OptionResult:
    o = d.option
    keys = [*o.source, *(k for g in o.guidelines for k in g.source)]
    keys += [k for fig in o.outcomes for k in fig.source] + d.extra_citations
    evidence = tuple(
        Evidence(
            figure=fig.figure,
            study=fig.study,
            citation=kb.citation(fig.source[0]),
            citation_key=fig.source[0],
            verified=fig.verified,
        )
        for fig in o.outcomes
    )
    return OptionResult(
        id=o.id,
        rank=rank,
        status=d.status,
        category=o.category,
        name=o.name,
        line=_line(o),
        drugs=d.drugs,
        reasons=tuple(d.reasons),
        evidence=evidence,
        summary_plain=o.summary_plain,
        investigational=o.investigational,
        specialist=o.specialist,
        verified=o.verified,
        citations=kb.citations(k for k in keys if k in kb.bibliography),
        evidence_grade=o.evidence_grade,
        facts=len(o.guidelines) + len(o.outcomes) + d.rules_applied + d.findings,
        facts_unverified=sum(not g.verified for g in o.guidelines)
        + sum(not f.verified for f in o.outcomes)
        + d.rules_unverified
        + d.findings_unverified,
    )


def plan_options(
    history: History,
    assessment: Assessment,
    kb: Knowledge,
    *,
    findings: Mapping[str, Sequence[SafetyLike]] | None = None,
) -> list[OptionResult]:
    """Every option of the knowledge base, with a status, reasons and a rank (1 = first)."""
    facts = _facts(history, assessment, kb)
    drafts: list[_Draft] = []
    for option in kb.options.options.values():
        if option.applies_to == "bipolar" and not facts.bipolar:
            continue  # a bipolar-depression option has no place in a unipolar plan
        d = _base(option, facts)
        if option.category == "optimise":
            _optimise(d, facts, kb)
        elif option.category == "continue":
            _continue(d, facts)
        elif option.drugs:
            _candidates(d, facts, kb)
        _plan_rules(d, facts, kb)
        _patient_rules(d, facts, kb)
        _safety(d, (findings or {}).get(option.id, ()))
        if not d.reasons:
            d.reasons.append("not tied to a number of failed trials: consider on clinical grounds")
        drafts.append(d)
    drafts.sort(key=_sort_key)
    return [_result(i, d, kb) for i, d in enumerate(drafts, start=1)]
