"""How much of the knowledge base is verified: facts counted from the loaded :class:`Knowledge`.

A **fact** is every pydantic model inside the knowledge base that has a boolean ``verified`` field
(found by walking models, mappings and tuples from each public attribute of :class:`Knowledge`;
each object path counts once), plus each code flag of the form ``<code>_verified`` beside a
``<code>`` field that is set (a drug's ``rxnorm_verified`` and ``atc_verified``). A LOINC block
holding no code is not a fact, like a drug without an RxNorm code.

The **area** is the :class:`Knowledge` attribute the fact sits under (``conditions_source`` is
shown as ``conditions``, ``classes`` as ``drug classes``). A **path** starts with the attribute
(``conditions`` for ``conditions_source``), names fields and mapping keys with dots and tuple items
by index, and leaves out the ``options.options`` wrapper: ``options.esketamine.outcomes[1]``,
``drugs.sertraline.rxnorm``.

The **clinical weight** orders review (1 = most weighty) and is decided by the model class:

1. ``safety_rule``: what blocks, warns or keeps a patient under watch. Safety condition rules
   (contraindications, cautions and monitoring notes), interactions, washouts, dose caps; CYP
   inducers and inhibitors of the workup (interactions); protocol thresholds, pre-checks, post-dose
   checks, observation time, discharge criteria, transport rule and standing cautions; crisis
   resources (shown with every suicide-risk alert).
2. ``dose``: drug doses (a drug's ``verified`` covers its dose figures), protocol doses and phases
   (sessions and frequency: the dose of a course), CPIC recommendations per phenotype.
3. ``threshold``: instruments (items, range, bands), their missing-item, screen, outcome and
   reliability rules; adequacy parameters and counting rules; measurement numbers; staging methods;
   lab tests (units, plausibility) and lab decision limits; population phenotype parameters; the
   plan's state definitions (response and remission rules) and continuation months.
4. ``outcome_figure``: options' outcome figures, the synthetic generator's remission rates.
5. ``guideline_placement``: guideline placements, the option itself (when it is recommended),
   the stepped plan's rules and the bipolar-depression ladder.
6. ``code``: RxNorm and ATC flags, LOINC blocks, concept sets, the phenotype's LOINC code, the
   FHIR clinical statuses a condition may carry, and every entry of the FHIR code tables (area
   ``codes``: diagnoses, severities, conditions, pregnancy and patient status, labs, answers,
   procedures).
7. ``other``: drug classes, the conditions vocabulary, measurement schedules, workup checklist
   items and genes, protocols as a whole, review points, measures before a session, record fields,
   missed-session rules, the continuation text, and any class not named here.

"Safety rules and doses" (the target of ≥ 90 %) is weights 1 and 2 together.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator, Mapping
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from trdnav.knowledge.codes import (
    AnswerCode,
    ConditionCode,
    DiagnosisCode,
    LabCode,
    PatientStatusCode,
    PregnancyCode,
    ProcedureCode,
    SeverityCode,
)
from trdnav.knowledge.fact_text import describe_fact, one_line
from trdnav.knowledge.load import Knowledge
from trdnav.knowledge.options import GuidelinePlacement, OutcomeFigure, TreatmentOption
from trdnav.knowledge.payers import PayerPolicy
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
from trdnav.knowledge.safety import ConditionRule, DoseCap, Interaction, Washout
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
    Sourced,
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

OVERALL_TARGET = 75.0
SAFETY_AND_DOSES_TARGET = 90.0


class Weight(StrEnum):
    """Clinical weight of a fact, most weighty first (see the module docstring)."""

    SAFETY_RULE = "safety_rule"
    DOSE = "dose"
    THRESHOLD = "threshold"
    OUTCOME_FIGURE = "outcome_figure"
    GUIDELINE_PLACEMENT = "guideline_placement"
    CODE = "code"
    OTHER = "other"

    @property
    def rank(self) -> int:
        return list(Weight).index(self) + 1

    @property
    def label(self) -> str:
        """``"safety rule"``, ``"outcome figure"`` ..."""
        return self.value.replace("_", " ")


WEIGHTS: Mapping[type[BaseModel], Weight] = {
    ConditionRule: Weight.SAFETY_RULE,
    Interaction: Weight.SAFETY_RULE,
    Washout: Weight.SAFETY_RULE,
    DoseCap: Weight.SAFETY_RULE,
    Inducer: Weight.SAFETY_RULE,
    Inhibitor: Weight.SAFETY_RULE,
    ThresholdRule: Weight.SAFETY_RULE,
    PreCheck: Weight.SAFETY_RULE,
    TimedCheck: Weight.SAFETY_RULE,
    Observation: Weight.SAFETY_RULE,
    Discharge: Weight.SAFETY_RULE,
    Transport: Weight.SAFETY_RULE,
    Caution: Weight.SAFETY_RULE,
    CrisisResource: Weight.SAFETY_RULE,
    Drug: Weight.DOSE,
    DoseSpec: Weight.DOSE,
    Phase: Weight.DOSE,
    CpicRule: Weight.DOSE,
    Instrument: Weight.THRESHOLD,
    MissingRule: Weight.THRESHOLD,
    ScreenRule: Weight.THRESHOLD,
    Outcomes: Weight.THRESHOLD,
    Reliability: Weight.THRESHOLD,
    NumberFact: Weight.THRESHOLD,
    StagingMethod: Weight.THRESHOLD,
    LabTest: Weight.THRESHOLD,
    LabRule: Weight.THRESHOLD,
    IntFact: Weight.THRESHOLD,
    BoolFact: Weight.THRESHOLD,
    BandsFact: Weight.THRESHOLD,
    StateDefinition: Weight.THRESHOLD,
    OutcomeFigure: Weight.OUTCOME_FIGURE,
    RatesFact: Weight.OUTCOME_FIGURE,
    GuidelinePlacement: Weight.GUIDELINE_PLACEMENT,
    TreatmentOption: Weight.GUIDELINE_PLACEMENT,
    StepRule: Weight.GUIDELINE_PLACEMENT,
    BipolarLadder: Weight.GUIDELINE_PLACEMENT,
    Loinc: Weight.CODE,
    ConceptSet: Weight.CODE,
    StrFact: Weight.CODE,
    ClinicalStatuses: Weight.CODE,
    DiagnosisCode: Weight.CODE,
    SeverityCode: Weight.CODE,
    ConditionCode: Weight.CODE,
    PregnancyCode: Weight.CODE,
    PatientStatusCode: Weight.CODE,
    LabCode: Weight.CODE,
    AnswerCode: Weight.CODE,
    ProcedureCode: Weight.CODE,
    DrugClass: Weight.OTHER,
    ConditionVocabulary: Weight.OTHER,
    ScheduleRule: Weight.OTHER,
    ChecklistItem: Weight.OTHER,
    Gene: Weight.OTHER,
    Protocol: Weight.OTHER,
    ReviewPoint: Weight.OTHER,
    MeasureBefore: Weight.OTHER,
    RecordFields: Weight.OTHER,
    PayerPolicy: Weight.OTHER,  # a payer's paperwork rules, not a clinical fact
    Sourced: Weight.OTHER,  # adequacy's counting rules are a threshold: see _weight
}
"""The weight of each verified-bearing model class (exact class, not subclasses)."""

AREA_NAMES: Mapping[str, str] = {"conditions_source": "conditions", "classes": "drug classes"}
"""Readable area names where they differ from the :class:`Knowledge` attribute."""

PATH_ROOTS: Mapping[str, str] = {"conditions_source": "conditions"}
"""Where a path starts, where it differs from the :class:`Knowledge` attribute."""

CODE_NAMES: Mapping[str, str] = {"rxnorm": "RxNorm", "atc": "ATC"}


class Fact(BaseModel):
    """One verifiable fact of the knowledge base."""

    model_config = ConfigDict(frozen=True)

    area: str
    path: str
    kind: str  # the model class, or "rxnorm code" / "atc code" for a code flag
    weight: Weight
    rank: int
    label: str
    sources: tuple[str, ...]
    verified: bool
    checked_against: str | None


class Tally(BaseModel):
    model_config = ConfigDict(frozen=True)

    verified: int
    total: int
    percent: float

    @classmethod
    def of(cls, facts: Iterable[Fact]) -> Tally:
        flags = [f.verified for f in facts]
        done, total = sum(flags), len(flags)
        return cls(verified=done, total=total, percent=round(100 * done / total, 1) if total else 0)


class TargetCheck(BaseModel):
    model_config = ConfigDict(frozen=True)

    target_percent: float
    percent: float
    met: bool


class KnowledgeStats(BaseModel):
    """Verified / total overall, per area and per weight; unverified facts in review order."""

    model_config = ConfigDict(frozen=True)

    kb_version: str
    overall: Tally
    safety_rules_and_doses: Tally
    targets: dict[str, TargetCheck]
    areas: dict[str, Tally]
    weights: dict[str, Tally]
    unverified: tuple[Fact, ...]
    verified_without_checked_against: tuple[Fact, ...]
    facts: tuple[Fact, ...]


def _natural(path: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that puts ``[2]`` before ``[10]``."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", path) if p)


def review_order(fact: Fact) -> tuple[int, str, tuple[tuple[int, int | str], ...]]:
    """Weight, then area, then path."""
    return fact.rank, fact.area, _natural(fact.path)


def _weight(obj: BaseModel, area: str) -> Weight:
    if type(obj) is Sourced and area == "adequacy":
        return Weight.THRESHOLD  # counting rules: how trials count towards TRD
    return WEIGHTS.get(type(obj), Weight.OTHER)


def _fact(obj: BaseModel, area: str, path: str, key: str) -> Fact:
    weight = _weight(obj, area)
    return Fact(
        area=area,
        path=path,
        kind=type(obj).__name__,
        weight=weight,
        rank=weight.rank,
        label=one_line(describe_fact(obj, key)),
        sources=tuple(getattr(obj, "source", ())),
        verified=bool(getattr(obj, "verified", False)),
        checked_against=getattr(obj, "checked_against", None) or None,
    )


def _code_facts(obj: BaseModel, area: str, path: str) -> Iterator[Fact]:
    """``<code>_verified`` flags beside a set ``<code>`` field (drugs: RxNorm, ATC)."""
    fields = type(obj).model_fields
    for name in fields:
        code = name.removesuffix("_verified")
        if code == name or code not in fields or getattr(obj, code) is None:
            continue
        owner = getattr(obj, "name", None) or getattr(obj, "id", None)
        shown = CODE_NAMES.get(code, code)
        yield Fact(
            area=area,
            path=f"{path}.{code}",
            kind=f"{code} code",
            weight=Weight.CODE,
            rank=Weight.CODE.rank,
            label=one_line(f"{shown} {getattr(obj, code)}" + (f" ({owner})" if owner else "")),
            sources=(),
            verified=bool(getattr(obj, name)),
            checked_against=getattr(obj, f"{code}_checked_against", None) or None,
        )


def _is_fact(obj: BaseModel) -> bool:
    if "verified" not in type(obj).model_fields:
        return False
    if isinstance(obj, Loinc):  # a LOINC block without a code says nothing
        return bool(obj.panel or obj.total or obj.items)
    return isinstance(getattr(obj, "verified", None), bool)


def _walk(obj: Any, area: str, path: str, key: str) -> Iterator[Fact]:
    if isinstance(obj, BaseModel):
        if _is_fact(obj):
            yield _fact(obj, area, path, key)
        yield from _code_facts(obj, area, path)
        for name in type(obj).model_fields:
            yield from _walk(getattr(obj, name), area, f"{path}.{name}", name)
    elif isinstance(obj, tuple | list):
        for i, item in enumerate(obj):
            yield from _walk(item, area, f"{path}[{i}]", key)
    elif isinstance(obj, Mapping):
        for k, item in obj.items():
            yield from _walk(item, area, f"{path}.{k}", str(k))


def collect_facts(kb: Knowledge) -> tuple[Fact, ...]:
    """Every fact of the knowledge base, in review order (weight, area, path)."""
    found: dict[str, Fact] = {}
    for f in dataclasses.fields(kb):
        if f.name.startswith("_"):
            continue
        area = AREA_NAMES.get(f.name, f.name)
        root: Any = getattr(kb, f.name)
        if f.name == "options":
            root = kb.options.options  # the file-per-option mapping, without the wrapper
        for fact in _walk(root, area, PATH_ROOTS.get(f.name, f.name), f.name):
            found.setdefault(fact.path, fact)
    return tuple(sorted(found.values(), key=review_order))


def _check(tally: Tally, target: float) -> TargetCheck:
    """Met when verified / total reaches ``target`` percent (compared exactly, not rounded)."""
    met = tally.total > 0 and 100 * tally.verified >= target * tally.total
    return TargetCheck(target_percent=target, percent=tally.percent, met=met)


def knowledge_stats(kb: Knowledge) -> KnowledgeStats:
    """Count the facts of ``kb``: overall, per area, per weight, and the defects."""
    facts = collect_facts(kb)
    overall = Tally.of(facts)
    weighty = Tally.of(f for f in facts if f.weight in (Weight.SAFETY_RULE, Weight.DOSE))
    return KnowledgeStats(
        kb_version=kb.kb_version,
        overall=overall,
        safety_rules_and_doses=weighty,
        targets={
            "overall": _check(overall, OVERALL_TARGET),
            "safety_rules_and_doses": _check(weighty, SAFETY_AND_DOSES_TARGET),
        },
        areas={
            area: Tally.of(f for f in facts if f.area == area)
            for area in sorted({f.area for f in facts})
        },
        weights={w.value: Tally.of(f for f in facts if f.weight is w) for w in Weight},
        unverified=tuple(f for f in facts if not f.verified),
        verified_without_checked_against=tuple(
            f for f in facts if f.verified and not (f.checked_against or "").strip()
        ),
        facts=facts,
    )
