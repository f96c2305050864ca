"""Knowledge models and loader for the pseudo-resistance workup (issue 4).

Files under ``knowledge/data/workup/``:

- ``labs.yaml``: screening labs, each with a canonical unit, accepted units with the factor that
  converts a value into the canonical unit, plausibility bounds and abnormal ranges;
- ``checklist.yaml``: one item per pseudo-resistance cause and the data that answers it;
- ``interacting_drugs.yaml``: CYP inducers looked for among current medications;
- ``pgx.yaml``: genes, their phenotypes (with accepted spellings) and the CPIC recommendation per
  phenotype for each antidepressant the gene affects;
- ``reevaluation.yaml``: thresholds of the re-evaluation triggers.

Every fact carries ``source`` (bibliography keys) and ``verified``.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from trdnav.errors import Problem
from trdnav.knowledge.schema import NumberFact, Sourced, Strict


def _fold(name: str) -> str:
    """Fold case, spaces and punctuation: ``"25-OH Vitamin D"`` -> ``"25ohvitamind"``."""
    return re.sub(r"[^a-z0-9µμ/]+", "", name.lower()).replace("μ", "µ")


class LabUnit(Strict):
    unit: str
    aliases: tuple[str, ...] = ()
    to_canonical: float = Field(gt=0, description="multiply a value in this unit by this factor")


class LabRule(Sourced):
    """A value below ``below`` or above ``above`` (canonical unit) is abnormal."""

    below: float | None = None
    above: float | None = None
    sex: Literal["female", "male"] | None = None
    finding: str

    @model_validator(mode="after")
    def _has_bound(self) -> LabRule:
        if self.below is None and self.above is None:
            raise ValueError("a lab rule needs below or above")
        return self


class LabTest(Sourced):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    aliases: tuple[str, ...] = ()
    canonical_unit: str
    units: tuple[LabUnit, ...] = Field(min_length=1)
    plausible_max: float = Field(gt=0, description="canonical unit; above = impossible input")
    rules: tuple[LabRule, ...] = ()

    @model_validator(mode="after")
    def _canonical_listed(self) -> LabTest:
        if not any(u.unit == self.canonical_unit and u.to_canonical == 1 for u in self.units):
            raise ValueError(f"{self.id}: the canonical unit must be listed with factor 1")
        return self

    def resolve_unit(self, unit: str) -> LabUnit | None:
        key = _fold(unit)
        for u in self.units:
            if key in {_fold(a) for a in (u.unit, *u.aliases)}:
                return u
        return None


class ChecklistItem(Sourced):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    cause: str
    kind: Literal["evidence", "adherence", "interacting_drugs", "pgx"] = "evidence"
    instruments: tuple[str, ...] = ()
    labs: tuple[str, ...] = ()
    conditions: tuple[str, ...] = ()
    diagnoses: tuple[str, ...] = ()
    suggestion: str


class Inducer(Sourced):
    id: str
    name: str
    aliases: tuple[str, ...] = ()
    enzymes: tuple[str, ...]
    effect: str


class Inhibitor(Sourced):
    """A CYP inhibitor: a genotypic normal metaboliser may act as a poor one (phenoconversion)."""

    id: str
    name: str
    aliases: tuple[str, ...] = ()
    gene: str
    strength: Literal["strong", "moderate"]


class Phenotype(Strict):
    id: Literal["ultrarapid", "rapid", "normal", "intermediate", "poor"]
    aliases: tuple[str, ...] = ()


class Gene(Sourced):
    id: str
    phenotypes: tuple[Phenotype, ...]

    def resolve_phenotype(self, name: str) -> str | None:
        key = _fold(name)
        for p in self.phenotypes:
            if key in {_fold(a) for a in (p.id, *p.aliases)}:
                return p.id
        return None


class CpicRule(Sourced):
    """One gene's CPIC recommendations for a group of drugs, keyed by phenotype."""

    gene: str
    drugs: tuple[str, ...] = Field(min_length=1, description="drug ids")
    recommendations: dict[str, str]
    strength: dict[str, str] = Field(default_factory=dict)
    verified_phenotypes: tuple[str, ...] = Field(
        default=(), description="phenotypes whose text was confirmed even when verified is false"
    )


class ReevaluationRules(Strict):
    several_failures: NumberFact
    recent_weeks: NumberFact
    qids_sleep_domain_min: NumberFact
    qids_appetite_domain_min: NumberFact
    phq9_sleep_appetite_item_min: NumberFact
    worsening: NumberFact = Field(description="value unused: cites the reliable-worsening rule")
    emotional_blunting_condition: str = "emotional_blunting"


class WorkupKnowledge(Strict):
    """Everything under knowledge/data/workup/."""

    labs: dict[str, LabTest]
    checklist: tuple[ChecklistItem, ...]
    inducers: tuple[Inducer, ...]
    inhibitors: tuple[Inhibitor, ...]
    genes: dict[str, Gene]
    cpic: tuple[CpicRule, ...]
    reevaluation: ReevaluationRules

    def resolve_lab(self, name: str) -> LabTest | None:
        key = _fold(name)
        for lab in self.labs.values():
            if key in {_fold(a) for a in (lab.id, lab.name, *lab.aliases)}:
                return lab
        return None

    def closest_labs(self, name: str, n: int = 3) -> list[str]:
        names = {_fold(a): lab.name for lab in self.labs.values() for a in (lab.name, *lab.aliases)}
        hits = difflib.get_close_matches(_fold(name), list(names), n=n * 3, cutoff=0.5)
        return list(dict.fromkeys(names[h] for h in hits))[:n]

    def resolve_gene(self, name: str) -> Gene | None:
        key = _fold(name)
        return next((g for g in self.genes.values() if _fold(g.id) == key), None)

    def resolve_inducer(self, drug: str) -> Inducer | None:
        return next(
            (i for i in self.inducers if _names_match(drug, i.id, i.name, *i.aliases)), None
        )

    def resolve_inhibitors(self, drug: str) -> list[Inhibitor]:
        return [i for i in self.inhibitors if _names_match(drug, i.id, i.name, *i.aliases)]


def _names_match(drug: str, *names: str) -> bool:
    """``"Tegretol XR 200"`` matches ``tegretol``: equal, or starting with a known name."""
    key = _fold(drug)
    return any(n and key.startswith(n) for n in (_fold(a) for a in names))


def _read(path: Path, problems: list[Problem]) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        problems.append(Problem("", "yaml_invalid", f"cannot read: {exc}", str(path)))
        return None


def _defects(kb: WorkupKnowledge) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for key, lab in kb.labs.items():
        if key != lab.id:
            out.append((f"labs.{key}", f"key differs from id {lab.id!r}"))
    for key, gene in kb.genes.items():
        if key != gene.id:
            out.append((f"genes.{key}", f"key differs from id {gene.id!r}"))
    for k, inhibitor in enumerate(kb.inhibitors):
        if inhibitor.gene not in kb.genes:
            out.append((f"inhibitors[{k}].gene", f"unknown gene {inhibitor.gene!r}"))
    for item in kb.checklist:
        for lab_id in item.labs:
            if lab_id not in kb.labs:
                out.append((f"checklist.{item.id}.labs", f"unknown lab {lab_id!r}"))
    for k, rule in enumerate(kb.cpic):
        found = kb.genes.get(rule.gene)
        if found is None:
            out.append((f"cpic[{k}].gene", f"unknown gene {rule.gene!r}"))
            continue
        allowed = {p.id for p in found.phenotypes}
        for ph in (*rule.recommendations, *rule.strength, *rule.verified_phenotypes):
            if ph not in allowed:
                out.append((f"cpic[{k}]", f"{ph!r} is not a phenotype of {found.id}"))
    return out


def load_workup(root: Path, problems: list[Problem]) -> WorkupKnowledge | None:
    """Read and validate knowledge/data/workup/ (root is knowledge/data)."""
    folder = root / "workup"
    data: dict[str, Any] = {}
    for path in sorted(folder.glob("*.yaml")):
        raw = _read(path, problems)
        if not isinstance(raw, dict):
            problems.append(Problem("", "knowledge_invalid", "expected a mapping", str(path)))
            continue
        data.update(raw)
    try:
        kb = WorkupKnowledge.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            problems.append(Problem(loc, "knowledge_invalid", err["msg"], str(folder)))
        return None
    bad = _defects(kb)
    problems.extend(Problem(loc, "knowledge_invalid", msg, str(folder)) for loc, msg in bad)
    return None if bad else kb
