"""The printable treatment summary: one self-contained HTML document (for print or PDF).

This is what a clinic sends with a prior-authorisation request for rTMS or esketamine: who the
patient is, the suicide-risk and safety alerts first, the TRD determination with its reasons,
every antidepressant trial with its adequacy verdict in words, the other treatments, staging, the
scores chart and treatment timeline, the top of the ranked plan, the numbered sources and the
disclaimer. Anything not confirmed in its original source is marked unverified.

Pure: :func:`render_summary_html` takes the history, its assessment and the knowledge base and
returns a string. Jinja2 autoescapes everything; only the two SVG images, which come from our own
renderers (:mod:`trdnav.reports.chart`, :mod:`trdnav.reports.timeline`), are passed through as
markup. The print stylesheet ``templates/summary.css`` is inlined, so the document needs nothing
else (no fonts, images or scripts are fetched).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib import resources

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from trdnav.core.adequacy import TrialVerdict
from trdnav.core.alerts import Alert
from trdnav.core.assessment import Assessment, OtherTreatment
from trdnav.core.history import History, Medication, TreatmentBase
from trdnav.core.options import OptionResult
from trdnav.core.reasons import Explanation
from trdnav.core.staging.result import StageResult
from trdnav.identity import PatientIdentity
from trdnav.knowledge.load import Knowledge
from trdnav.reports.text import SEVERITY_ORDER, STATUS_TEXT, stage_line

PLAN_LIMIT = 6  # options shown from the top of the ranked plan
PRIOR_AUTH_OPTIONS = ("rtms", "esketamine")  # always shown: what the request is usually for
TREATMENT_NAMES = {
    "ect": "ECT",
    "rtms": "rTMS",
    "esketamine": "Esketamine (intranasal)",
    "ketamine": "Ketamine",
    "psychotherapy": "Psychotherapy",
}
DIAGNOSES = {
    "mdd_single": "major depressive disorder, single episode",
    "mdd_recurrent": "major depressive disorder, recurrent",
    "persistent_depressive_disorder": "persistent depressive disorder",
    "bipolar_i_depression": "bipolar I disorder, current episode depressed",
    "bipolar_ii_depression": "bipolar II disorder, current episode depressed",
}
_VALUES = {"true": "yes", "false": "no"}
SEVERITIES = {"severe_psychotic": "severe with psychotic features"}
_PROLOG = re.compile(r"\A.*?(?=<svg[\s>])", re.DOTALL)


@dataclass(frozen=True)
class Reason:
    """A sentence a clinician reads, its stable code and the numbers of its sources."""

    message: str
    code: str
    cites: tuple[str, ...]  # citation keys (numbered when the document is rendered)


@dataclass(frozen=True)
class TrialRow:
    index: int
    drug: str
    drug_input: str | None  # the name as written, when it differs (a brand name)
    drug_class: str
    role: str
    augments: str | None
    doses: str
    start: date
    stop: date | None
    weeks_total: str
    weeks_adequate: str
    max_dose: str
    min_dose: str
    dose_met: bool | None
    adherence: str
    outcome: str
    adequate: str  # yes / no / unknown
    adequate_note: str
    counted: bool
    reasons: tuple[Reason, ...]
    note: str | None


@dataclass(frozen=True)
class OtherRow:
    index: int
    name: str
    start: date
    stop: date | None
    sessions: str
    detail: str
    outcome: str
    note: str | None


@dataclass(frozen=True)
class StageItemRow:
    item: str
    value: str
    score: str
    explanation: str


@dataclass(frozen=True)
class StageBlock:
    name: str
    result: str
    verified: bool
    items: tuple[StageItemRow, ...]
    missing: tuple[str, ...]
    notes: tuple[str, ...]
    cites: tuple[str, ...]


@dataclass(frozen=True)
class EvidenceRow:
    figure: str
    study: str
    cites: tuple[str, ...]
    verified: bool


@dataclass(frozen=True)
class OptionRow:
    rank: int
    name: str
    status: str
    line: str
    reasons: tuple[str, ...]
    drugs: tuple[str, ...]
    evidence: tuple[EvidenceRow, ...]
    verified: bool
    investigational: bool
    specialist: bool
    beyond_top: bool  # shown because the request concerns it, not because of its rank


def _words(code: str) -> str:
    return code.replace("_", " ")


def _num(x: float | None) -> str:
    return "–" if x is None else f"{x:g}"


def _age(birth: date | None, on: date) -> int | None:
    if birth is None:
        return None
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


class _Refs:
    """Numbered citations, Vancouver style: a source gets its number where the document first
    cites it, and the sources list holds exactly the sources cited. The template calls it while
    rendering, top to bottom, so the numbers follow the reading order."""

    def __init__(self, citations: Mapping[str, str], kb: Knowledge) -> None:
        self.citations = citations
        self.kb = kb
        self.number: dict[str, int] = {}

    def __call__(self, keys: Iterable[str]) -> str:
        for key in keys:
            self.number.setdefault(key, len(self.number) + 1)
        shown = sorted({self.number[k] for k in keys})
        return f"[{', '.join(str(n) for n in shown)}]" if shown else ""

    def sources(self) -> list[tuple[int, str, str]]:
        """(number, key, full reference) of every source cited so far."""
        out = []
        for key, n in self.number.items():
            text = self.citations.get(key)
            if text is None:
                entry = self.kb.bibliography.get(key)
                text = entry.citation if entry is not None else key
            out.append((n, key, text))
        return out


def _reason(e: Explanation) -> Reason:
    return Reason(message=e.message, code=e.code, cites=e.citations)


def _adequate_note(v: TrialVerdict) -> str:
    if v.role != "antidepressant":
        return "add-on: not counted as a separate trial"
    if v.counts_as_failure:
        return "failed: counts towards TRD"
    return ""


def _class_name(kb: Knowledge, class_id: str) -> str:
    """``SSRI``, ``TCA``; else the class label without its parenthesis (``lithium``)."""
    c = kb.classes.get(class_id)
    if c is None:
        return _words(class_id)
    m = re.fullmatch(r"(.*?)\s*\(([^)]*)\)", c.label)
    if m is None:
        return c.label
    return m[2] if m[2].isupper() else m[1]


def _trial_row(v: TrialVerdict, t: Medication | None, kb: Knowledge, as_of: date) -> TrialRow:
    steps = sorted(t.doses, key=lambda s: s.from_) if t is not None else []
    doses = "\u00a0→ ".join(f"{s.mg_per_day:g}" for s in steps) or "not recorded"
    end = min(v.stop or as_of, as_of)
    reasons = tuple(_reason(e) for e in v.explanations)
    if not reasons and v.adequate:
        reasons = (
            Reason("dose, duration and adherence met the adequacy criteria", "", v.citations),
        )
    drug = kb.drugs.get(v.drug)
    name = drug.name if drug is not None else v.drug
    outcome = _words(v.outcome.value)
    if v.outcome_source == "measurements":
        outcome += " (from the scores)"
    met = (
        None
        if v.max_mg_per_day is None or v.min_adequate_mg_per_day is None
        else v.max_mg_per_day >= v.min_adequate_mg_per_day
    )
    return TrialRow(
        index=v.index,
        drug=name,
        drug_input=v.drug_input if v.drug_input.lower() != name.lower() else None,
        drug_class=_class_name(kb, v.drug_class),
        role=v.role,
        augments=v.augments,
        doses=doses,
        start=v.start,
        stop=v.stop,
        weeks_total=f"{max((end - v.start).days, 0) / 7:.1f}",
        weeks_adequate=_num(v.weeks_at_adequate_dose),
        max_dose=_num(v.max_mg_per_day),
        min_dose=_num(v.min_adequate_mg_per_day),
        dose_met=met,
        adherence="not recorded" if v.adherence is None else f"{v.adherence:.0%}",
        outcome=outcome,
        adequate={True: "Yes", False: "No", None: "Unknown"}[v.adequate],
        adequate_note=_adequate_note(v),
        counted=v.counts_as_failure,
        reasons=reasons,
        note=t.note if t is not None else None,
    )


def _other_row(o: OtherTreatment, t: TreatmentBase | None) -> OtherRow:
    sessions = getattr(t, "sessions", None)
    detail = o.detail
    if t is not None:
        data = t.model_dump(
            mode="json",
            exclude={"start", "stop", "outcome", "note", "type", "sessions"},
            exclude_none=True,
        )
        detail = ", ".join(f"{_words(k)}: {_words(str(v))}" for k, v in data.items())
    return OtherRow(
        index=o.index,
        name=TREATMENT_NAMES.get(o.type, o.type),
        start=o.start,
        stop=o.stop,
        sessions="not recorded" if sessions is None else str(sessions),
        detail=detail or "–",
        outcome=_words(o.outcome),
        note=t.note if t is not None else None,
    )


def _stage_block(s: StageResult) -> StageBlock:
    items = []
    for i in s.items:
        score = "" if i.points is None else f"{i.points:g}"
        if i.met is not None:
            score = "met" if i.met else "not met"
        items.append(
            StageItemRow(
                item=_words(i.item),
                value=_VALUES.get(i.value, _words(i.value)),
                score=score,
                explanation=i.explanation,
            )
        )
    return StageBlock(
        name=s.name,
        result=stage_line(s, empty="not scored"),
        verified=s.verified,
        items=tuple(items),
        missing=tuple(_words(m) for m in s.missing),
        notes=s.notes,
        cites=s.citations,
    )


def _option_row(o: OptionResult, beyond_top: bool) -> OptionRow:
    return OptionRow(
        rank=o.rank,
        name=o.name,
        status=o.status,
        line=o.line,
        reasons=o.reasons,
        drugs=o.drugs,
        evidence=tuple(
            EvidenceRow(e.figure, e.study, (e.citation_key,), e.verified) for e in o.evidence[:2]
        ),
        verified=o.verified,
        investigational=o.investigational,
        specialist=o.specialist,
        beyond_top=beyond_top,
    )


PLAN_NOW = frozenset({"recommended", "consider", "caution"})


def _plan(a: Assessment) -> list[OptionRow]:
    shown = [o for o in a.options if o.status in PLAN_NOW][:PLAN_LIMIT]
    rows = [_option_row(o, beyond_top=False) for o in shown]
    ids = {o.id for o in shown}
    for o in a.options:
        if o.id in PRIOR_AUTH_OPTIONS and o.id not in ids:
            rows.append(_option_row(o, beyond_top=True))
    return rows


def _fact_counts(a: Assessment) -> tuple[int, int]:
    """(verified, total) of the knowledge-base facts behind this document, over its sections."""
    counts = a.verification.values()
    return sum(c.verified for c in counts), sum(c.total for c in counts)


def _inline_svg(svg: str | None) -> Markup | None:
    """Our own renderers' SVG as markup for the document (XML prolog and doctype removed)."""
    if not svg:
        return None
    return Markup(_PROLOG.sub("", svg, count=1).strip())  # noqa: S704 - produced by our renderers


@cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("trdnav.reports", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


@cache
def _stylesheet() -> str:
    return (resources.files("trdnav.reports") / "templates" / "summary.css").read_text("utf-8")


def render_summary_html(
    history: History,
    assessment: Assessment,
    kb: Knowledge,
    chart_svg: str | None,
    timeline_svg: str | None,
    generated_on: date,
    clinic_name: str = "TRD Navigator",
    identity: PatientIdentity | None = None,
) -> str:
    """The treatment summary of ``assessment`` (made from ``history``) as one HTML document.

    ``identity`` (name, date of birth, MRN) heads the document when given; the history itself
    knows the patient only by the clinic's identifier.

    ``chart_svg`` and ``timeline_svg`` are the outputs of
    :func:`~trdnav.reports.chart.render_chart` (format ``svg``, decoded) and
    :func:`~trdnav.reports.timeline.render_timeline_svg`, or None to leave them out. The output
    depends only on the arguments (``generated_on`` is printed, never read from a clock).
    """
    a = assessment
    refs = _Refs(a.citations, kb)
    treatments = history.treatments

    def treatment(i: int) -> TreatmentBase | None:
        return treatments[i] if 0 <= i < len(treatments) else None

    trials = []
    for v in a.trials:
        t = treatment(v.index)
        med = t if isinstance(t, Medication) else None
        trials.append(_trial_row(v, med, kb, a.assessed_on))
    suicide = [al for al in a.alerts if al.code == "suicide_risk"]
    others: list[Alert] = [al for al in a.alerts if al.code != "suicide_risk"]
    patient = history.patient
    context = {
        "a": a,
        "clinic_name": clinic_name,
        "generated_on": generated_on,
        "patient": patient,
        "identity": identity,
        "age": _age(patient.birth_date, a.assessed_on),
        "episode": history.episode,
        "diagnosis": DIAGNOSES.get(history.episode.diagnosis.value, "other diagnosis"),
        "severity": SEVERITIES.get(
            history.episode.severity.value, _words(history.episode.severity.value)
        ),
        "kb_released": kb.manifest.released,
        "rules": {
            "weeks": f"{kb.adequacy.min_weeks_at_adequate_dose.value:g}",
            "adherence": f"{kb.adequacy.min_adherence.value:.0%}",
            "cites": (
                *kb.adequacy.min_weeks_at_adequate_dose.source,
                *kb.adequacy.min_adherence.source,
            ),
        },
        "suicide_alerts": suicide,
        "suicide_worst": max((al.severity for al in suicide), key=SEVERITY_ORDER.index, default=""),
        "other_alerts": others,
        "crisis_cites": tuple(k for r in a.crisis_resources for k in r.source),
        "status_text": STATUS_TEXT.get(a.trd.status, a.trd.status),
        "trd_reasons": [_reason(e) for e in a.trd.explanations],
        "flags": [_words(f) for f in a.trd.flags],
        "trials": trials,
        "others": [_other_row(o, treatment(o.index)) for o in a.other_treatments],
        "staging": [_stage_block(s) for s in a.staging.values()],
        "chart_svg": _inline_svg(chart_svg),
        "timeline_svg": _inline_svg(timeline_svg),
        "plan": _plan(a),
        "contraindicated": [o.name for o in a.options if o.status == "contraindicated"],
        "not_now": [o.name for o in a.options if o.status == "not_indicated_now"],
        "tried": [o.name for o in a.options if o.status == "already_tried"],
        "now": a.plan_context,
        "facts": _fact_counts(a),
        "refs": refs,
        "words": _words,
        "css": Markup(_stylesheet()),  # noqa: S704 - our own stylesheet, read from the package
    }
    return _environment().get_template("summary.html").render(context)
