"""What a knowledge fact says, in one line: the text a reviewer reads beside the fact's path.

:func:`describe_fact` has one case per verified-bearing model class (see
:mod:`trdnav.knowledge.stats`); a class without a case is described by its field name and note.
"""

from __future__ import annotations

from pydantic import BaseModel

from trdnav.knowledge.codes import (
    AnswerCode,
    CodeEntry,
    ConditionCode,
    DiagnosisCode,
    LabCode,
    PatientStatusCode,
    PregnancyCode,
    ProcedureCode,
    SeverityCode,
)
from trdnav.knowledge.options import GuidelinePlacement, OutcomeFigure, TreatmentOption
from trdnav.knowledge.plan import BipolarLadder, StateDefinition, StepRule
from trdnav.knowledge.population import (
    BandsFact,
    BoolFact,
    ConceptSet,
    IntFact,
    RatesFact,
    StrFact,
)
from trdnav.knowledge.protocols import (
    Caution,
    Discharge,
    DoseSpec,
    MeasureBefore,
    Observation,
    Phase,
    PreCheck,
    Protocol,
    RecordFields,
    ReviewPoint,
    ThresholdRule,
    TimedCheck,
    Transport,
)
from trdnav.knowledge.safety import ConditionRule, DoseCap, Interaction, Target, Washout
from trdnav.knowledge.schema import (
    ClinicalStatuses,
    ConditionVocabulary,
    CrisisResource,
    Drug,
    DrugClass,
    Instrument,
    Loinc,
    MissingRule,
    NumberFact,
    Outcomes,
    Reliability,
    ScheduleRule,
    ScreenRule,
    StagingMethod,
)
from trdnav.knowledge.workup import (
    ChecklistItem,
    CpicRule,
    Gene,
    Inducer,
    Inhibitor,
    LabRule,
    LabTest,
)

LABEL_MAX = 200
SYSTEM_NAMES = {
    "icd10cm": "ICD-10-CM",
    "snomed": "SNOMED CT",
    "loinc": "LOINC",
    "cpt": "CPT",
    "hcpcs": "HCPCS",
}


def _g(x: float | None) -> str:
    return "–" if x is None else f"{x:g}"


def _targets(t: Target) -> str:
    return ", ".join(dict.fromkeys((*t.options, *t.drugs, *t.classes, *t.names)))


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _band(low: float, high: float | None, label: str) -> str:
    if high is None:
        return f"≥ {_g(low)} {label}"
    return f"{_g(low)} {label}" if high == low else f"{_g(low)}–{_g(high)} {label}"


def _dose(d: DoseSpec) -> str:
    if d.options_mg:
        first = f", first session {_g(d.first_session_mg)} mg" if d.first_session_mg else ""
        return "/".join(_g(x) for x in d.options_mg) + f" mg{first}"
    if d.mg_per_kg is not None:
        cap = f", max {_g(d.max_mg)} mg" if d.max_mg else ""
        over = f" over {d.infusion_minutes} min" if d.infusion_minutes else ""
        return f"{_g(d.mg_per_kg)} mg/kg{over}{cap}"
    return "dose set by the clinician"


def _maps_to(e: CodeEntry) -> str:
    """What a code of the FHIR code tables maps to."""
    match e:
        case DiagnosisCode():
            if e.excluded:
                return "not a diagnosis (excluded)"
            sev = f", severity {e.severity}" if e.severity else ""
            out = f"diagnosis {e.diagnosis}{sev}"
            return out + (f"; exported for {', '.join(e.export_for)}" if e.export_for else "")
        case SeverityCode():
            out = f"severity {e.severity}"
            return out + (f"; exported for {', '.join(e.export_for)}" if e.export_for else "")
        case ConditionCode():
            return f"condition {e.condition}" + (f" ({e.status})" if e.status else "")
        case PregnancyCode():
            return "patient.pregnant"
        case PatientStatusCode():
            if e.answer is None:
                return f"{e.status} status observation"
            return f"{e.status} status answer: {'yes' if e.answer else 'no'}"
        case LabCode():
            return f"lab {e.lab}" if e.lab else f"serum level of {e.drug_level}"
        case AnswerCode():
            return f"item score {e.score}" + (f" ({e.answer_list})" if e.answer_list else "")
        case ProcedureCode():
            parts = [f"treatment {e.treatment}"]
            parts += [f"detail {e.detail}"] if e.detail else []
            parts += [f"{e.mg_per_session:g} mg per session"] if e.mg_per_session else []
            parts += ["exported"] if e.export else []
            return ", ".join(parts)
    return ""


def describe_fact(obj: BaseModel, key: str) -> str:
    """What the fact says, before shortening to one line."""
    match obj:
        case CodeEntry():
            code = f"{obj.code}*" if obj.prefix else obj.code
            return f"{SYSTEM_NAMES[obj.system]} {code} {obj.display} → {_maps_to(obj)}"
        case ConditionRule():
            when = obj.condition or "always"
            if obj.statuses:
                when += f" ({', '.join(obj.statuses)})"
            return f"{obj.id}: {obj.severity}, {when} → {_targets(obj.applies_to)}: {obj.message}"
        case Interaction():
            return f"{obj.id}: {obj.severity}, {_targets(obj.a)} + {_targets(obj.b)}: {obj.message}"
        case Washout():
            return (
                f"{obj.id}: {obj.days} days from stopping {_targets(obj.stopped)} "
                f"to starting {_targets(obj.starting)}"
            )
        case DoseCap():
            criteria = [f"age over {obj.age_over}"] if obj.age_over is not None else []
            criteria += [
                *obj.conditions,
                *(f"{g} poor metaboliser" for g in obj.poor_metabolizer_of),
            ]
            return f"{obj.drug} at most {_g(obj.max_mg_per_day)} mg/day" + (
                f" when {' or '.join(criteria)}" if criteria else ""
            )
        case Inducer():
            return f"{obj.name} induces {', '.join(obj.enzymes)}: {obj.effect}"
        case Inhibitor():
            return f"{obj.name}: {obj.strength} {obj.gene} inhibitor"
        case ThresholdRule():
            op = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤"}[obj.comparison]
            return (
                f"{obj.id}: {obj.measure} {op} {_g(obj.value)} {obj.timing.replace('_', '-')} "
                f"→ {obj.action}: {obj.message}"
            )
        case PreCheck():
            return f"{obj.id} ({obj.action}): {obj.text}"
        case TimedCheck():
            return f"{obj.what} at {obj.minutes} min after the dose (± {obj.window_minutes} min)"
        case Observation():
            return f"observation for at least {obj.minimum_minutes} min"
        case Discharge():
            return "discharge when: " + "; ".join(c.text for c in obj.criteria)
        case Transport():
            return obj.rule
        case Caution():
            return f"{obj.code}: {obj.text}"
        case CrisisResource():
            return f"{obj.name}: {obj.contact}"
        case Drug():
            parts = [obj.name]
            if obj.antidepressant_dose is not None:
                ad = obj.antidepressant_dose
                parts.append(
                    f"adequate ≥ {_g(ad.min_adequate_mg_per_day)}, "
                    f"usual max {_g(ad.usual_max_mg_per_day)} {obj.dose_unit}"
                )
            if obj.augmentation_dose is not None:
                au = obj.augmentation_dose
                aug = f"augmentation {_g(au.min_mg_per_day)}–{_g(au.max_mg_per_day)} mg/day"
                if au.serum_level is not None:
                    level = au.serum_level
                    top = f"–{_g(level.max)}" if level.max is not None else ""
                    aug += f", level {_g(level.min)}{top} {level.unit}"
                parts.append(aug)
            return "; ".join(parts)
        case DoseSpec():
            return _dose(obj)
        case Phase():
            every = f" every {obj.every_weeks} weeks" if obj.every_weeks > 1 else ""
            weeks = f" over {obj.weeks} weeks" if obj.weeks else ""
            per_day = f", {obj.per_day} a day" if obj.per_day > 1 else ""
            return (
                f"{obj.name}: {obj.sessions} sessions, {obj.per_week} a week{every}{weeks}{per_day}"
            )
        case CpicRule():
            return f"CPIC {obj.gene} × {', '.join(obj.drugs)}: " + "; ".join(
                f"{ph}: {text}" for ph, text in obj.recommendations.items()
            )
        case Instrument():
            span = f", total {_g(obj.total_min)}–{_g(obj.total_max)}" if obj.scored else ""
            bands = "; ".join(_band(b.min, b.max, b.label) for b in obj.bands)
            items = _plural(len(obj.items), "item")
            return f"{obj.name}: {items}{span}" + (f"; {bands}" if bands else "")
        case MissingRule():
            never = f", never item {', '.join(map(str, obj.never_missing))}"
            return f"missing items: {obj.rule}, at most {obj.max_missing}" + (
                never if obj.never_missing else ""
            )
        case ScreenRule():
            cut = f" ≥ {_g(obj.cutoff)}" if obj.cutoff is not None else ""
            if obj.cutoff_by_sex:
                cut = " ≥ " + ", ".join(f"{_g(v)} ({s})" for s, v in obj.cutoff_by_sex.items())
            item = f" item {obj.item}" if obj.item is not None else ""
            return f"screen {obj.method}{item}{cut}: {obj.label}"
        case Outcomes():
            return (
                f"response = reduction ≥ {_g(obj.response_reduction)}, "
                f"remission = total ≤ {_g(obj.remission_max_total)}"
            )
        case Reliability():
            return f"reliability: SD {_g(obj.sd)}, r {_g(obj.r)} ({obj.kind})"
        case NumberFact():
            return f"{key} = {_g(obj.value)}"
        case IntFact() | BoolFact() | StrFact():
            return f"{key} = {obj.value}"
        case StagingMethod():
            params = ", ".join(f"{k} = {_g(v)}" for k, v in obj.parameters.items())
            return f"{obj.name}: {obj.description}" + (f" ({params})" if params else "")
        case LabTest():
            units = ", ".join(f"{u.unit} × {_g(u.to_canonical)}" for u in obj.units)
            top = _g(obj.plausible_max)
            return f"{obj.name}: canonical {obj.canonical_unit} ({units}); plausible ≤ {top}"
        case LabRule():
            bound = f"below {_g(obj.below)}" if obj.below is not None else f"above {_g(obj.above)}"
            sex = f" ({obj.sex})" if obj.sex else ""
            return f"{bound}{sex}: {obj.finding}"
        case BandsFact():
            return f"{key}: " + ", ".join(f"{b.min}–{b.max} → {b.points}" for b in obj.bands)
        case RatesFact():
            return f"{key}: " + ", ".join(_g(v) for v in obj.values)
        case OutcomeFigure():
            return f"{obj.study}: {obj.figure}"
        case GuidelinePlacement():
            return f"{obj.guideline}: {obj.line}"
        case TreatmentOption():
            after = obj.recommend_after_failures
            count = (
                "never on the count alone"
                if after is None
                else f"after {_plural(after, 'failed adequate trial')}"
            )
            return f"{obj.name} ({obj.category}), recommended {count}"
        case StepRule():
            targets = ", ".join((*obj.categories, *obj.options))
            return f"{obj.id}: {obj.effect} {targets} at {', '.join(obj.steps)}: {obj.reason}"
        case StateDefinition():
            return f"{obj.label}: {obj.rule}"
        case BipolarLadder():
            return f"{obj.guideline}: {obj.statement}"
        case Loinc():
            items = f", {len(obj.items)} items" if obj.items else ""
            return f"LOINC panel {obj.panel or '–'}, total {obj.total or '–'}{items}"
        case ConceptSet():
            codes = ", ".join(f"{c.vocabulary} {c.code}" for c in obj.include)
            return f"{obj.label} ({obj.role}): {codes}"
        case DrugClass():
            return f"{obj.label}" + (" (antidepressant class)" if obj.antidepressant else "")
        case ClinicalStatuses():
            present, absent = ", ".join(obj.present), ", ".join(obj.absent)
            return f"clinical statuses: present = {present}; absent (not counted) = {absent}"
        case ConditionVocabulary():
            return f"{len(obj.conditions)} condition terms"
        case ScheduleRule():
            every = f"every {obj.every_days} days" if obj.every_days else "every session"
            return f"{obj.label}: {obj.instrument} {every} ({obj.when.replace('_', ' ')})"
        case MeasureBefore():
            return f"{obj.instrument} before each session: {obj.text}"
        case ReviewPoint():
            return obj.text
        case ChecklistItem():
            return f"{obj.cause}: {obj.suggestion}"
        case Gene():
            return f"{obj.id} phenotypes: {', '.join(p.id for p in obj.phenotypes)}"
        case Protocol():
            return f"{obj.name} ({obj.label_status.replace('_', '-')}, {', '.join(obj.routes)})"
        case RecordFields():
            return "session record must carry: " + ", ".join(obj.fields)
    note = getattr(obj, "note", None)
    return f"{key}: {note}" if note else key


def one_line(text: str, limit: int = LABEL_MAX) -> str:
    """Whitespace folded to single spaces; cut at ``limit`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"
