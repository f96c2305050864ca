"""Prior authorisation where it shows: the payer policies to choose from, one policy checked
against a patient's record, the trial table with its scores, the draft letter of medical
necessity and the request packet (one self-contained HTML document, printed by WeasyPrint).

The CLI (``trdnav prior-auth``), the web panel, the API and the packet all go through
:func:`choose_policy` (the same errors, naming the field) and :func:`check_policy` (the core's
:func:`~trdnav.core.prior_auth.evaluate.evaluate_policy`, with the patient's suicide-risk alerts
and the contraindication screen of the requested treatment, which are shown with every result).

Pure: everything here takes the history, its assessment and the knowledge base and returns
values or text; ``generated_on`` is printed, never read from a clock. Jinja2 autoescapes the
packet; only the score chart (our own SVG) is passed through as markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources

from markupsafe import Markup

from trdnav.core.alerts import Alert
from trdnav.core.assessment import Assessment
from trdnav.core.history import History, Medication, Psychotherapy
from trdnav.core.measures import ScoredMeasurement, score_measurements
from trdnav.core.options import OptionResult
from trdnav.core.prior_auth.evaluate import evaluate_policy
from trdnav.core.prior_auth.model import CriterionResult, PriorAuthResult
from trdnav.core.safety import Finding, patient_drugs, screen_option
from trdnav.core.trajectory import derive_trial_outcome
from trdnav.errors import InputError, Problem
from trdnav.identity import PatientIdentity
from trdnav.knowledge.load import Knowledge
from trdnav.knowledge.payers import CourseLimit, PayerPolicy, PolicyTreatment, RequestKind
from trdnav.reports.summary import (
    DIAGNOSES,
    SEVERITIES,
    TREATMENT_NAMES,
    _age,
    _class_name,
    _environment,
    _inline_svg,
)

TREATMENTS: tuple[PolicyTreatment, ...] = ("rtms", "esketamine")
KINDS: tuple[RequestKind, ...] = ("initial", "renewal")
TREATMENT_LABELS = {
    "rtms": "repetitive transcranial magnetic stimulation (rTMS)",
    "esketamine": "esketamine nasal spray (Spravato)",
}
STATUS_LABELS = {
    "met": "MET",
    "not_met": "NOT MET",
    "missing": "MISSING DATA",
    "not_applicable": "N/A",
}
OVERALL_TEXT = {
    "all_met": "every criterion the record can decide is met (confirm the attestations)",
    "gaps": "no criterion is unmet, but some lack data: add them before filing",
    "not_met": "at least one criterion is not met: the request would likely be denied as it is",
}
MODALITIES = {"cbt": "CBT", "cbasp": "CBASP", "ipt": "IPT", "dbt": "DBT", "mbct": "MBCT"}
DISCLAIMER = "Decision support, not a medical device: check every line against the record."
UNVERIFIED = (
    "Unverified policy: its criteria were not re-read in the payer's original; check them "
    "against the payer's current policy before filing."
)


# --- choosing a policy ------------------------------------------------------------------------


def policy_list(kb: Knowledge, treatment: str | None = None) -> list[PayerPolicy]:
    """The loaded policies (of ``treatment`` when given), by treatment, payer and id."""
    rows = [p for p in kb.payers.values() if treatment is None or p.treatment == treatment]
    return sorted(rows, key=lambda p: (p.treatment, p.typical, p.payer.lower(), p.id))


def _choices(kb: Knowledge, treatment: str | None) -> str:
    ids = [p.id for p in policy_list(kb, treatment if treatment in TREATMENTS else None)]
    return ", ".join(ids) if ids else "none (no payer policy is loaded)"


def choose_policy(
    kb: Knowledge,
    payer: str | None,
    treatment: str | None,
    *,
    payer_field: str = "payer",
    treatment_field: str = "treatment",
) -> PayerPolicy:
    """The policy ``payer`` for ``treatment``; else :class:`InputError` naming the field and
    listing the choices (an unknown id, a policy of the other treatment, a missing value)."""
    problems: list[Problem] = []
    if treatment not in TREATMENTS:
        got = "nothing" if not treatment else repr(treatment)
        problems.append(
            Problem(treatment_field, "unknown_treatment", f"expected rtms or esketamine, got {got}")
        )
    policy = kb.payers.get(payer) if payer else None
    if policy is None:
        what = f"no payer policy {payer!r}" if payer else "choose a payer policy"
        problems.append(
            Problem(payer_field, "unknown_payer", f"{what}; one of: {_choices(kb, treatment)}")
        )
    elif treatment in TREATMENTS and policy.treatment != treatment:
        problems.append(
            Problem(
                payer_field,
                "wrong_treatment",
                f"{policy.id!r} is a {policy.treatment} policy, not {treatment}; "
                f"{treatment} policies: {_choices(kb, treatment)}",
            )
        )
    if problems or policy is None:
        raise InputError(problems)
    return policy


# --- checking one policy ----------------------------------------------------------------------


class PriorAuthOut(PriorAuthResult):
    """The result as the CLI (``--json``) and the API give it: the policy's result, with the
    patient's suicide-risk alerts (``alerts``), which are shown wherever the patient's data is."""


@dataclass(frozen=True)
class PriorAuthCheck:
    """A policy's result, with what is always shown beside it."""

    policy: PayerPolicy
    result: PriorAuthResult
    suicide_alerts: tuple[Alert, ...]
    option: OptionResult | None  # the requested treatment in the plan: its status and reasons
    findings: tuple[Finding, ...]  # the safety screen of starting the requested treatment

    def out(self) -> PriorAuthOut:
        return PriorAuthOut(**{**dict(self.result), "alerts": self.suicide_alerts})


def check_policy(
    policy: PayerPolicy,
    history: History,
    assessment: Assessment,
    kb: Knowledge,
    request_date: date,
    kind: RequestKind = "initial",
) -> PriorAuthCheck:
    result = evaluate_policy(policy, history, assessment, kb, request_date, kind)
    option = next((o for o in assessment.options if o.id == policy.treatment), None)
    as_of = assessment.assessed_on
    drugs = option.drugs if option is not None else ()
    findings = screen_option(
        policy.treatment, drugs, history, as_of, kb, patient_drugs(history, as_of, kb)
    )
    suicide = tuple(a for a in assessment.alerts if a.code == "suicide_risk")
    return PriorAuthCheck(policy, result, suicide, option, tuple(findings))


def effective_line(p: PayerPolicy | PriorAuthResult) -> str:
    start, end = p.effective_from, p.effective_to
    if start is None and end is None:
        return "effective dates not stated"
    if end is None:
        return f"effective from {start}"
    return f"effective {start or '(start not stated)'} to {end}"


def summary_line(result: PriorAuthResult) -> str:
    c = result.counts()
    confirm = sum(1 for r in result.results if r.attestation and r.status == "missing")
    return (
        f"{result.overall.replace('_', ' ').upper()}: {OVERALL_TEXT[result.overall]} — "
        f"{c['met']} met, {c['not_met']} not met, {c['missing'] - confirm} missing data, "
        f"{confirm} to confirm by the clinician, {c['not_applicable']} not applicable"
    )


# --- the trials and their scores --------------------------------------------------------------


@dataclass(frozen=True)
class TrialScores:
    instrument: str
    before: float
    before_on: date
    after: float
    after_on: date
    percent_change: float | None

    def text(self) -> str:
        change = "" if self.percent_change is None else f", {self.percent_change:+.0f} %"
        return (
            f"{self.instrument} {self.before:g} ({self.before_on}) → {self.after:g} "
            f"({self.after_on}){change}"
        )


@dataclass(frozen=True)
class TrialRow:
    index: int
    drug: str
    drug_class: str
    role: str
    augments: str | None
    start: date
    stop: date | None
    max_dose: str
    weeks: str
    adherence: str
    scores: TrialScores | None
    outcome: str
    failed: bool

    def text(self) -> str:
        role = f", augmenting {self.augments}" if self.augments else ""
        stop = self.stop.isoformat() if self.stop else "ongoing"
        scores = f"; {self.scores.text()}" if self.scores else "; no scores before and after"
        failed = " (failed adequate trial)" if self.failed else ""
        return (
            f"{self.drug} ({self.drug_class}{role}), {self.start} to {stop}: maximum "
            f"{self.max_dose}; {self.weeks} weeks at an adequate dose; adherence "
            f"{self.adherence}{scores}; outcome: {self.outcome}{failed}."
        )


@dataclass(frozen=True)
class OtherRow:
    name: str
    start: date
    stop: date | None
    sessions: str
    outcome: str

    def text(self) -> str:
        stop = self.stop.isoformat() if self.stop else "ongoing"
        return f"{self.name}, {self.start} to {stop}, {self.sessions}; outcome: {self.outcome}."


def _words(code: str) -> str:
    return code.replace("_", " ")


def trial_scores(
    t: Medication, scored: list[ScoredMeasurement], kb: Knowledge, as_of: date
) -> TrialScores | None:
    """The scores before and after a trial, as the assessment reads them (the trial's window)."""
    d = derive_trial_outcome(scored, kb, t.start, t.stop, as_of)
    if d is None:
        return None
    b, e = d.baseline, d.end_point
    return TrialScores(d.instrument, b.total, b.date, e.total, e.date, d.percent_change)


def trial_rows(history: History, a: Assessment, kb: Knowledge) -> list[TrialRow]:
    scored = score_measurements(history, kb)
    rows = []
    for v in a.trials:
        t = history.treatments[v.index] if v.index < len(history.treatments) else None
        med = t if isinstance(t, Medication) else None
        drug = kb.drugs.get(v.drug)
        unit = drug.dose_unit if drug is not None else "mg/day"
        rows.append(
            TrialRow(
                index=v.index,
                drug=drug.name if drug is not None else v.drug,
                drug_class=_class_name(kb, v.drug_class),
                role=v.role,
                augments=v.augments,
                start=v.start,
                stop=v.stop,
                max_dose="not recorded"
                if v.max_mg_per_day is None
                else f"{v.max_mg_per_day:g} {unit}",
                weeks="not known"
                if v.weeks_at_adequate_dose is None
                else f"{v.weeks_at_adequate_dose:.1f}",
                adherence="not recorded" if v.adherence is None else f"{v.adherence:.0%}",
                scores=trial_scores(med, scored, kb, a.assessed_on) if med else None,
                outcome=_words(v.outcome.value),
                failed=v.counts_as_failure,
            )
        )
    return rows


def other_rows(history: History) -> list[OtherRow]:
    rows = []
    for t in history.treatments:
        if isinstance(t, Medication):
            continue
        name = TREATMENT_NAMES.get(t.type, t.type)
        if isinstance(t, Psychotherapy):
            name = f"{name} ({MODALITIES.get(t.modality, _words(t.modality))})"
        sessions = getattr(t, "sessions", None)
        rows.append(
            OtherRow(
                name=name,
                start=t.start,
                stop=t.stop,
                sessions="sessions not recorded" if sessions is None else f"{sessions} sessions",
                outcome=_words(t.outcome.value),
            )
        )
    return rows


def latest_scores(history: History, kb: Knowledge) -> list[ScoredMeasurement]:
    """The most recent total of each depression rating scale, most recent first."""
    latest: dict[str, ScoredMeasurement] = {}
    for s in score_measurements(history, kb):
        inst = kb.instruments.get(s.instrument_id)
        if s.score.total is None or inst is None or inst.outcomes is None:
            continue
        if s.instrument_id not in latest or s.date >= latest[s.instrument_id].date:
            latest[s.instrument_id] = s
    return sorted(latest.values(), key=lambda s: (s.date, s.instrument), reverse=True)


# --- the draft letter of medical necessity ----------------------------------------------------


def _clause(text: str) -> str:
    return text.strip().rstrip(".")


def _criterion_line(r: CriterionResult) -> str | None:
    if r.status == "not_applicable":
        return None
    text, reason = _clause(r.text), _clause(r.reason)
    if r.attestation:
        return f"- {text} — [TO CONFIRM before sending: {_clause('; '.join(r.missing) or reason)}]"
    if r.status == "met":
        return f"- {text} — met: {reason}."
    if r.status == "not_met":
        return f"- {text} — [NOT MET in the record: {reason}; review before sending]"
    return f"- {text} — [TO COMPLETE before sending: {_clause('; '.join(r.missing) or reason)}]"


def _patient_line(history: History, identity: PatientIdentity | None) -> str:
    parts = []
    if identity is not None:
        parts.append(identity.display_name or "name not recorded")
        if identity.birth_date:
            parts.append(f"DOB {identity.birth_date}")
        if identity.mrn:
            parts.append(f"MRN {identity.mrn}")
    elif history.patient.birth_date:
        parts.append(f"born {history.patient.birth_date}")
    parts.append(f"clinic id {history.patient.id}")
    return " · ".join(parts)


def draft_letter(
    check: PriorAuthCheck,
    history: History,
    a: Assessment,
    kb: Knowledge,
    generated_on: date,
    clinic_name: str = "TRD Navigator",
    identity: PatientIdentity | None = None,
) -> str:
    """A letter of medical necessity filled from the record, for the clinician to edit: what the
    record cannot show is left in [brackets], never asserted."""
    p, r = check.policy, check.result
    treatment = TREATMENT_LABELS[p.treatment]
    ep = history.episode
    age = _age(history.patient.birth_date, r.request_date)
    aged = f", aged {age}," if age is not None else ""
    severity = SEVERITIES.get(ep.severity.value, _words(ep.severity.value))
    lines = [
        clinic_name,
        generated_on.isoformat(),
        "",
        f"To: {p.payer} — utilisation review",
        f"Re: request for prior authorisation of {treatment}"
        + (" (renewal)" if r.kind == "renewal" else ""),
        f"Policy: {p.label()}; {effective_line(p)}",
        f"Patient: {_patient_line(history, identity)}",
        "",
        "Dear reviewer,",
        "",
        f"I am requesting authorisation of {treatment} for the patient above{aged} who has "
        f"{DIAGNOSES.get(ep.diagnosis.value, 'a depressive disorder')}. The current episode "
        f"began on {ep.onset}; its severity at baseline was {severity}.",
        "",
    ]
    scores = latest_scores(history, kb)
    if scores:
        shown = "; ".join(
            f"{s.instrument} {s.score.total:g} on {s.date}"
            + (f" ({s.score.band})" if s.score.band else "")
            for s in scores
        )
        lines.append(f"Current severity: {shown}.")
    else:
        lines.append("Current severity: [TO COMPLETE: no rating-scale score is recorded].")
    trials = trial_rows(history, a, kb)
    for title, antidepressant in (("Antidepressant trials", True), ("Augmentation", False)):
        chosen = [t for t in trials if (t.role == "antidepressant") is antidepressant]
        if not chosen:
            continue
        lines += ["", f"{title}:"]
        lines += [f"{n}. {t.text()}" for n, t in enumerate(chosen, start=1)]
    others = other_rows(history)
    therapy = [o for o in others if o.name.startswith("Psychotherapy")]
    lines += ["", "Psychotherapy:"]
    lines += [f"- {o.text()}" for o in therapy] or ["- [TO COMPLETE: no psychotherapy recorded]"]
    rest = [o for o in others if not o.name.startswith("Psychotherapy")]
    if rest:
        lines += ["", "Other treatments:"] + [f"- {o.text()}" for o in rest]
    lines += ["", f"Exclusions and contraindications screened for {TREATMENT_NAMES[p.treatment]}:"]
    lines += [
        f"- {_clause(x.text)} — {STATUS_LABELS[x.status].lower()}: {_clause(x.reason)}."
        for x in r.results
        if x.type == "exclusions"
    ]
    lines.append(f"- {screen_line(check)}")
    lines += ["", "The policy's criteria, as the record documents them:"]
    lines += [line for x in r.results if (line := _criterion_line(x)) is not None]
    if check.suicide_alerts:
        lines.append("")
    lines += [
        f"Suicide risk ({al.severity}, {al.date}): {al.message}" for al in check.suicide_alerts
    ]
    limit = next((c for c in p.criteria if isinstance(c, CourseLimit) and c.max_sessions), None)
    course = f"a course of up to {limit.max_sessions} sessions" if limit else "a treatment course"
    lines += [
        "",
        f"Given the treatments above and their outcomes, {TREATMENT_NAMES[p.treatment]} is "
        f"medically necessary for this patient. I request approval of {course}.",
        "",
        "Sincerely,",
        "",
        "",
        "____________________________",
        "[Prescriber's name, credentials and NPI]",
        clinic_name,
    ]
    return "\n".join(lines) + "\n"


def screen_line(check: PriorAuthCheck) -> str:
    """The requested treatment in the assessment's plan: its status and reasons."""
    name = TREATMENT_NAMES[check.policy.treatment]
    o = check.option
    if o is None:
        return f"{name}: not screened (no such option in the plan)"
    reasons = f": {'; '.join(o.reasons)}" if o.reasons else ""
    return f"{name} in the plan: {_words(o.status)}{reasons}"


# --- the packet -------------------------------------------------------------------------------


@cache
def _stylesheet() -> str:
    return (resources.files("trdnav.reports") / "templates" / "prior_auth.css").read_text("utf-8")


def _sources(policy: PayerPolicy, kb: Knowledge) -> list[tuple[str, str]]:
    out = []
    for key in policy.source:
        entry = kb.bibliography.get(key)
        out.append((key, entry.citation if entry is not None else key))
    return out


def render_packet_html(
    check: PriorAuthCheck,
    history: History,
    a: Assessment,
    kb: Knowledge,
    chart_svg: str | None,
    generated_on: date,
    clinic_name: str = "TRD Navigator",
    identity: PatientIdentity | None = None,
    letter: str | None = None,
) -> str:
    """The request packet as one HTML document: the policy's label, version and effective
    dates on every page; suicide-risk alerts first; the criteria with their evidence; the trial
    table; the score chart; the contraindication screen; the letter (``letter`` when the
    clinician edited it, else the generated draft); identity when known; the disclaimer."""
    p, r = check.policy, check.result
    if letter is None or not letter.strip():
        letter = draft_letter(check, history, a, kb, generated_on, clinic_name, identity)
    context = {
        "p": p,
        "r": r,
        "a": a,
        "check": check,
        "clinic_name": clinic_name,
        "generated_on": generated_on,
        "identity": identity,
        "patient": history.patient,
        "age": _age(history.patient.birth_date, r.request_date),
        "episode": history.episode,
        "diagnosis": DIAGNOSES.get(history.episode.diagnosis.value, "other diagnosis"),
        "severity": SEVERITIES.get(
            history.episode.severity.value, _words(history.episode.severity.value)
        ),
        "treatment": TREATMENT_LABELS[p.treatment],
        "running": f"{p.label()} · {effective_line(p)}"
        + ("" if p.verified else " · UNVERIFIED POLICY"),
        "effective": effective_line(p),
        "status_labels": STATUS_LABELS,
        "summary": summary_line(r),
        "trials": trial_rows(history, a, kb),
        "others": other_rows(history),
        "chart_svg": _inline_svg(chart_svg),
        "screen": screen_line(check),
        "letter": letter,
        "sources": _sources(p, kb),
        "disclaimer": DISCLAIMER,
        "unverified": UNVERIFIED,
        "words": _words,
        "css": Markup(_stylesheet()),  # noqa: S704 - our own stylesheet, read from the package
    }
    return _environment().get_template("prior_auth.html").render(context)


__all__ = [
    "KINDS",
    "STATUS_LABELS",
    "TREATMENTS",
    "PriorAuthCheck",
    "PriorAuthOut",
    "check_policy",
    "choose_policy",
    "draft_letter",
    "policy_list",
    "render_packet_html",
]
