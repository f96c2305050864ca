"""Knowledge models and loader for safety screening (contraindications, interactions, washouts).

Files under ``knowledge/data/safety/``:

- ``rules.yaml``: condition rules (a condition or patient state → a finding for the options,
  drugs or classes it names) and unconditional monitoring notes (``condition`` absent);
- ``interactions.yaml``: pairs of drugs that must not, or only with care, be taken together;
- ``washouts.yaml``: drug-free intervals between stopping one drug and starting another;
- ``dose_caps.yaml``: maximum daily doses that depend on the patient (citalopram and QTc).

Every rule carries ``source`` (bibliography keys) and ``verified``; the cross-check of the keys
against the bibliography is done by :func:`trdnav.knowledge.load.load_knowledge`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, model_validator

from trdnav.errors import Problem
from trdnav.knowledge.schema import Sourced, Strict

FindingSeverity = Literal["contraindicated", "caution", "info"]
CODE_PATTERN = r"^[a-z][a-z0-9_]*$"

# Patient states that are not terms of conditions.yaml but can trigger a rule.
PATIENT_STATES = frozenset({"pregnant", "breastfeeding"})


class Target(Strict):
    """What a rule applies to. Empty lists match nothing; any listed item matching is enough.

    ``options`` match an option id exactly or as a prefix followed by ``_`` (``rtms`` matches
    ``rtms_itbs``); ``drugs`` are drug ids; ``classes`` are drug-class ids; ``names`` are
    free drug names outside the drug knowledge base (e.g. tramadol), compared after folding
    case, punctuation and release-form suffixes.
    """

    options: tuple[str, ...] = ()
    drugs: tuple[str, ...] = ()
    classes: tuple[str, ...] = ()
    names: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _not_empty(self) -> Target:
        if not (self.options or self.drugs or self.classes or self.names):
            raise ValueError("a target needs at least one option, drug, class or name")
        return self


class ConditionRule(Sourced):
    """A condition (or patient state) that makes an option or drug contraindicated or cautious.

    ``condition`` absent = an unconditional note (e.g. REMS monitoring, metabolic monitoring).
    ``statuses`` restricts the rule to those statuses of the condition (the vocabulary's
    ``default_status`` is used when the history gives none); empty = any status.
    """

    id: str = Field(pattern=CODE_PATTERN)
    code: str = Field(pattern=CODE_PATTERN)
    condition: str | None = None
    statuses: tuple[str, ...] = ()
    severity: FindingSeverity
    applies_to: Target
    message: str = Field(min_length=10)


class Interaction(Sourced):
    """Drugs matching ``a`` taken together with drugs matching ``b`` (either order)."""

    id: str = Field(pattern=CODE_PATTERN)
    code: str = Field(pattern=CODE_PATTERN)
    severity: FindingSeverity
    a: Target
    b: Target
    message: str = Field(min_length=10)


class Washout(Sourced):
    """At least ``days`` between stopping a drug matching ``stopped`` and starting ``starting``.

    Where several washouts match one pair of drugs, the longest applies.
    """

    id: str = Field(pattern=CODE_PATTERN)
    stopped: Target
    starting: Target
    days: int = Field(gt=0)
    message: str = Field(min_length=10)


class DoseCap(Sourced):
    """A maximum daily dose of ``drug``; general when no criterion is given, else when any of
    ``age_over`` (strictly after that birthday), ``conditions`` or ``poor_metabolizer_of``
    (a gene with a poor-metaboliser result) applies to the patient."""

    id: str = Field(pattern=CODE_PATTERN)
    code: str = Field(pattern=CODE_PATTERN)
    drug: str
    max_mg_per_day: float = Field(gt=0)
    age_over: int | None = Field(default=None, ge=0)
    conditions: tuple[str, ...] = ()
    poor_metabolizer_of: tuple[str, ...] = ()
    message: str = Field(min_length=10)

    @property
    def general(self) -> bool:
        return self.age_over is None and not self.conditions and not self.poor_metabolizer_of


class SafetyKnowledge(Strict):
    """Everything under knowledge/data/safety/."""

    rules: tuple[ConditionRule, ...] = ()
    interactions: tuple[Interaction, ...] = ()
    washouts: tuple[Washout, ...] = ()
    dose_caps: tuple[DoseCap, ...] = ()


_FILES: dict[str, type[BaseModel]] = {
    "rules": ConditionRule,
    "interactions": Interaction,
    "washouts": Washout,
    "dose_caps": DoseCap,
}


def _read(path: Path, problems: list[Problem]) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        problems.append(Problem("", "yaml_invalid", f"not readable YAML: {exc}", str(path)))
        return None


def _vocabulary(root: Path) -> dict[str, tuple[str, ...]] | None:
    """Condition ids -> allowed statuses, read from conditions.yaml (None when unreadable)."""
    try:
        raw = yaml.safe_load((root / "conditions.yaml").read_text(encoding="utf-8"))
        return {str(c["id"]): tuple(c.get("statuses") or ()) for c in raw["conditions"]}
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return None  # conditions.yaml's own loader reports the defect


def _drug_vocabulary(root: Path) -> tuple[set[str], set[str]] | None:
    try:
        drugs = {p.stem for p in (root / "drugs").glob("*.yaml")}
        raw = yaml.safe_load((root / "classes.yaml").read_text(encoding="utf-8"))
        return drugs, {str(c["id"]) for c in raw}
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return None


def _target_defects(t: Target, drugs: set[str], classes: set[str]) -> list[str]:
    out = [f"unknown drug {d!r}" for d in t.drugs if d not in drugs]
    out += [f"unknown class {c!r}" for c in t.classes if c not in classes]
    return out


def _cross_check(kb: SafetyKnowledge, root: Path, problems: list[Problem]) -> None:
    folder = root / "safety"
    vocab = _vocabulary(root)
    known = _drug_vocabulary(root)
    seen: set[str] = set()
    items: list[tuple[str, BaseModel]] = [
        *(("rules", r) for r in kb.rules),
        *(("interactions", i) for i in kb.interactions),
        *(("washouts", w) for w in kb.washouts),
        *(("dose_caps", c) for c in kb.dose_caps),
    ]
    for name, item in items:
        file = str(folder / f"{name}.yaml")
        item_id = str(getattr(item, "id", ""))
        if item_id in seen:
            problems.append(Problem(item_id, "duplicate_id", "rule id used twice", file))
        seen.add(item_id)
        targets: list[Target] = []
        if isinstance(item, ConditionRule):
            targets.append(item.applies_to)
            if vocab is not None and item.condition is not None:
                if item.condition in PATIENT_STATES:
                    pass
                elif item.condition not in vocab:
                    problems.append(
                        Problem(
                            f"{item_id}.condition",
                            "unknown_condition",
                            f"unknown condition {item.condition!r}",
                            file,
                        )
                    )
                else:
                    for s in item.statuses:
                        if s not in vocab[item.condition]:
                            problems.append(
                                Problem(
                                    f"{item_id}.statuses",
                                    "unknown_status",
                                    f"{item.condition!r} has no status {s!r}",
                                    file,
                                )
                            )
            if item.condition is None and item.statuses:
                problems.append(
                    Problem(
                        f"{item_id}.statuses", "statuses_without_condition", "no condition", file
                    )
                )
        elif isinstance(item, Interaction):
            targets += [item.a, item.b]
        elif isinstance(item, Washout):
            targets += [item.stopped, item.starting]
        elif isinstance(item, DoseCap):
            if known is not None and item.drug not in known[0]:
                problems.append(
                    Problem(f"{item_id}.drug", "unknown_drug", f"unknown drug {item.drug!r}", file)
                )
            if vocab is not None:
                for c in item.conditions:
                    if c not in vocab:
                        problems.append(
                            Problem(
                                f"{item_id}.conditions",
                                "unknown_condition",
                                f"unknown condition {c!r}",
                                file,
                            )
                        )
        if known is not None:
            for t in targets:
                for msg in _target_defects(t, *known):
                    problems.append(Problem(item_id, "unknown_target", msg, file))


def load_safety(root: Path, problems: list[Problem]) -> SafetyKnowledge | None:
    """Read and validate knowledge/data/safety/ (root is knowledge/data)."""
    folder = root / "safety"
    before = len(problems)
    parts: dict[str, list[BaseModel]] = {name: [] for name in _FILES}
    for name, model in _FILES.items():
        path = folder / f"{name}.yaml"
        if not path.exists():
            problems.append(Problem("", "knowledge_missing", "safety file is missing", str(path)))
            continue
        raw = _read(path, problems)
        if raw is None:
            continue
        if not isinstance(raw, list):
            problems.append(Problem("", "knowledge_invalid", "expected a list of rules", str(path)))
            continue
        for k, entry in enumerate(raw):
            try:
                parts[name].append(model.model_validate(entry))
            except ValidationError as exc:
                for err in exc.errors():
                    loc = ".".join(str(p) for p in (k, *err["loc"]))
                    problems.append(Problem(loc, "knowledge_invalid", err["msg"], str(path)))
    if len(problems) > before:
        return None
    kb = SafetyKnowledge.model_validate(
        {name: tuple(m.model_dump() for m in items) for name, items in parts.items()}
    )
    _cross_check(kb, root, problems)
    return None if len(problems) > before else kb
