"""Assess a treatment history: trial adequacy → TRD determination → staging.

``assess`` is pure: it takes a validated history (whose ``assessed_on`` is the "as of" date) and
the knowledge base, and returns an :class:`Assessment` that explains itself.
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict

from trdnav import __version__
from trdnav.core.adequacy import AdequacyRules, TrialVerdict, assess_trial
from trdnav.core.alerts import Alert, crisis_resources, order_alerts, suicide_alerts
from trdnav.core.checks import resolve_condition_statuses
from trdnav.core.current_state import CurrentState, current_state
from trdnav.core.history import History, Medication, TreatmentBase
from trdnav.core.measures import ScoredMeasurement, score_measurements
from trdnav.core.options import OptionResult, plan_options
from trdnav.core.reasons import Explanation, ReasonCode
from trdnav.core.reevaluation import Trigger, reevaluation_triggers
from trdnav.core.resistance import TrdDetermination, count_distinct_failures, determine_trd
from trdnav.core.safety import (
    Finding,
    SafetyAlert,
    patient_drugs,
    safety_alerts,
    screen_current,
    screen_option,
)
from trdnav.core.schedule import DueItem, measurement_schedule
from trdnav.core.staging.dm_trd import stage_dm_trd
from trdnav.core.staging.european import stage_european
from trdnav.core.staging.maudsley import stage_maudsley
from trdnav.core.staging.mgh_s import stage_mgh_s
from trdnav.core.staging.result import StageResult, StagingInput
from trdnav.core.staging.thase_rush import stage_thase_rush
from trdnav.core.trajectory import DerivedOutcome, Trajectory, trajectories
from trdnav.core.trial_measures import measured_trial
from trdnav.core.workup import PgxRecommendation, WorkupItem, pgx_recommendations, workup
from trdnav.knowledge.load import Knowledge
from trdnav.knowledge.schema import CrisisResource

DISCLAIMER = (
    "Decision support for qualified clinicians, not a medical device and not a diagnosis: "
    "check every conclusion against the record and your clinical judgement."
)


class SectionFacts(BaseModel):
    """How many knowledge-base facts one section of the output rests on, and how many are
    verified in their source: shown as one line per section so a badge keeps its meaning."""

    model_config = ConfigDict(frozen=True)

    verified: int
    total: int

    @property
    def unverified(self) -> int:
        return self.total - self.verified

    @property
    def line(self) -> str:
        return f"{self.unverified} of {self.total} facts in this section unverified"


class OtherTreatment(BaseModel):
    model_config = ConfigDict(frozen=True)

    index: int
    type: str
    start: date
    stop: date | None
    outcome: str
    detail: str


class Assessment(BaseModel):
    model_config = ConfigDict(frozen=True)

    alerts: tuple[Alert, ...] = ()  # first, on purpose: the safety net is never below the fold
    crisis_resources: tuple[CrisisResource, ...] = ()
    patient_id: str
    input_notes: tuple[str, ...] = ()  # how the input was read (e.g. a resolved condition)
    assessed_on: date
    trd: TrdDetermination
    trials: tuple[TrialVerdict, ...]
    other_treatments: tuple[OtherTreatment, ...]
    staging: dict[str, StageResult]
    measurements: dict[str, Trajectory] = {}
    plan_context: CurrentState | None = None  # where the patient is now: shown first in the plan
    options: tuple[OptionResult, ...] = ()  # the ranked plan, rank 1 first
    safety: tuple[Finding, ...] = ()  # findings about the current regimen
    workup: tuple[WorkupItem, ...] = ()
    pgx: tuple[PgxRecommendation, ...] = ()
    schedule: tuple[DueItem, ...] = ()
    citations: dict[str, str]
    unverified_citations_note: str | None = None
    verification: dict[str, SectionFacts] = {}  # per section: plan, workup, staging, alerts …
    kb_version: str
    app_version: str = __version__
    disclaimer: str = DISCLAIMER


def _other(index: int, t: TreatmentBase) -> OtherTreatment:
    data = t.model_dump(
        mode="json", exclude={"start", "stop", "outcome", "note", "type"}, exclude_none=True
    )
    detail = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in data.items())
    return OtherTreatment(
        index=index,
        type=str(getattr(t, "type", "other")),
        start=t.start,
        stop=t.stop,
        outcome=t.outcome.value,
        detail=detail,
    )


def _with_measured_trials(
    history: History, scored: list[ScoredMeasurement], kb: Knowledge, as_of: date
) -> tuple[History, dict[int, DerivedOutcome]]:
    """Fill unknown trial outcomes and lost responses from the scores inside each trial."""
    if not scored:
        return history, {}
    treatments = list(history.treatments)
    derived: dict[int, DerivedOutcome] = {}
    for i, t in enumerate(treatments):
        if isinstance(t, Medication) and t.augments is None:
            treatments[i], used = measured_trial(t, scored, kb, as_of)
            if used is not None:
                derived[i] = used
    return history.model_copy(update={"treatments": tuple(treatments)}), derived


def _from_measurements(v: TrialVerdict, d: DerivedOutcome) -> TrialVerdict:
    note = Explanation(
        code=ReasonCode.OUTCOME_FROM_MEASUREMENTS, message=d.explanation, citations=d.citations
    )
    reasons = tuple(r for r in v.reasons if r != ReasonCode.OUTCOME_UNKNOWN)
    return v.model_copy(
        update={
            "outcome_source": "measurements",
            "reasons": (*reasons, ReasonCode.OUTCOME_FROM_MEASUREMENTS.value),
            "explanations": (*v.explanations, note),
            "citations": tuple(dict.fromkeys((*v.citations, *d.citations))),
        }
    )


def _safety_alert(a: SafetyAlert) -> Alert:
    return Alert(
        code=a.code,
        severity=a.severity,
        message=a.message,
        date=a.date,
        route="safety",
        citation=a.citation,
        citations=a.citations,
        verified=a.verified,
    )


def _with_plan(history: History, a: Assessment, kb: Knowledge, as_of: date) -> Assessment:
    """Screen every option and the current regimen, then rank the options for this patient."""
    patient = patient_drugs(history, as_of, kb)
    findings = {
        o.id: screen_option(o.id, o.drugs, history, as_of, kb, patient)
        for o in kb.options.options.values()
    }
    options = plan_options(history, a, kb, findings=findings)
    current = screen_current(history, as_of, kb)
    keys = set(a.citations)
    for o in options:
        keys.update(o.citations)
    for f in current:
        keys.update(f.citations)
    a = a.model_copy(
        update={
            "options": tuple(options),
            "safety": tuple(current),
            "citations": kb.citations(keys),
        }
    )
    return a.model_copy(update={"verification": _verification(a)})


def _count(flags: list[bool]) -> SectionFacts:
    return SectionFacts(verified=sum(flags), total=len(flags))


def _verification(a: Assessment) -> dict[str, SectionFacts]:
    """Verified / total facts behind each section, from the per-fact flags the results carry."""
    total = sum(o.facts for o in a.options)
    plan = SectionFacts(verified=total - sum(o.facts_unverified for o in a.options), total=total)
    out = {
        "plan": plan,
        "safety": _count([f.verified for f in a.safety]),
        "workup": _count([w.verified for w in a.workup]),
        "staging": _count([s.verified for s in a.staging.values()]),
        "measurements": _count([t.verified for t in a.measurements.values()]),
        "alerts": _count([al.verified for al in a.alerts]),
    }
    return {k: v for k, v in out.items() if v.total}


def _trigger_alert(t: Trigger) -> Alert:
    return Alert(
        code=t.code,
        severity=t.severity,
        message=t.message,
        date=t.date,
        route=f"reevaluation:{t.reason}",
        citation=t.citation,
        citations=t.citations,
        verified=t.verified,
    )


def assess(
    history: History,
    kb: Knowledge,
    rules: AdequacyRules | None = None,
    today: date | None = None,
    locale: str | None = None,
) -> Assessment:
    as_of = history.assessed_on or today
    if as_of is None:
        raise ValueError("assess() needs history.assessed_on or today")
    rules = rules or AdequacyRules.from_knowledge(kb)
    history, input_notes = resolve_condition_statuses(history, kb)
    scored = score_measurements(history, kb)
    history, derived = _with_measured_trials(history, scored, kb, as_of)
    verdicts: list[TrialVerdict] = []
    others: list[OtherTreatment] = []
    for i, t in enumerate(history.treatments):
        if isinstance(t, Medication):
            drug = kb.resolve_drug(t.drug)
            if drug is None:
                raise ValueError(f"treatments[{i}].drug {t.drug!r} is not checked")
            v = assess_trial(i, t, drug, kb, rules, as_of, history.episode.onset)
            if i in derived:
                v = _from_measurements(v, derived[i])
            verdicts.append(v)
        else:
            others.append(_other(i, t))
    verdicts = count_distinct_failures(verdicts)
    trd = determine_trd(history, verdicts, kb, as_of)
    data = StagingInput(history=history, verdicts=tuple(verdicts), trd=trd, as_of=as_of)
    staging = {
        "thase_rush": stage_thase_rush(data, kb),
        "mgh_s": stage_mgh_s(data, kb),
        "maudsley": stage_maudsley(data, kb),
        "european": stage_european(data, kb),
        "dm_trd": stage_dm_trd(data, kb),
    }
    triggers = reevaluation_triggers(history, scored, verdicts, trd, as_of, kb)
    alerts = order_alerts(
        suicide_alerts(history, scored, kb),
        [_trigger_alert(t) for t in triggers]
        + [_safety_alert(x) for x in safety_alerts(history, as_of, kb)],
    )
    checklist = workup(history, scored, verdicts, as_of, kb)
    pgx = pgx_recommendations(history, kb)
    measured = trajectories(history, scored, kb)
    schedule = measurement_schedule(history, scored, kb, as_of)
    now = current_state(history, verdicts, scored, kb, as_of)
    keys: set[str] = set(trd.citations) | set(now.citations)
    for a in alerts:
        keys.update(a.citations)
    for d in schedule:
        keys.update(d.citations)
    for tr in measured.values():
        keys.update(tr.citations)
    for w in checklist:
        keys.update(w.citations)
    for p in pgx:
        keys.update(p.citations)
    for v in verdicts:
        keys.update(v.citations)
    for s in staging.values():
        keys.update(s.citations)
    suicide = any(a.code == "suicide_risk" for a in alerts)
    resources = crisis_resources(kb, locale) if suicide else ()
    for r in resources:
        keys.update(r.source)
    assessment = Assessment(
        alerts=tuple(alerts),
        crisis_resources=resources,
        patient_id=history.patient.id,
        input_notes=tuple(input_notes),
        assessed_on=as_of,
        trd=trd,
        trials=tuple(verdicts),
        other_treatments=tuple(others),
        staging=staging,
        measurements=measured,
        plan_context=now,
        workup=tuple(checklist),
        pgx=tuple(pgx),
        schedule=tuple(schedule),
        citations=kb.citations(keys),
        kb_version=kb.kb_version,
    )
    return _with_plan(history, assessment, kb, as_of)
