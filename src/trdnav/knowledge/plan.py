"""Knowledge models and loader for the stepped plan (issue 12): ``knowledge/data/plan/``.

- ``pathway.yaml``: how the state of the current treatment (remission, a trial not yet adequate,
  partial response …) changes the status of each option, rule by rule, each with its source;
  the continuation period after remission; the states' definitions as shown to the clinician.
- ``bipolar.yaml``: the bipolar-depression ladder: what a bipolar diagnosis does to the options
  written for unipolar depression (the bipolar options themselves are option files with
  ``applies_to: bipolar``).

The core reads these rules; it holds no clinical number or guideline sentence of its own.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from trdnav.errors import Problem
from trdnav.knowledge.options import Category
from trdnav.knowledge.schema import NumberFact, Sourced, Strict

# The plan steps a patient can be at (derived by trdnav.core.current_state).
PlanStep = Literal[
    "maintain_remission",  # remission on the current treatment
    "maintain_response",  # response (not remission) on the current treatment
    "complete_trial",  # the current trial is not yet adequate (too short, dose, adherence)
    "response_unknown",  # an adequate current trial whose response is not measured
    "partial_response",  # partial response on an adequate current trial
    "non_response",  # no response on an adequate current trial
    "relapse",  # remission, then relapse, on the current treatment
    "response_lost",  # response lost on the same drug and dose (tachyphylaxis)
    "no_current_treatment",  # no ongoing antidepressant
]
PLAN_STEPS: tuple[str, ...] = PlanStep.__args__  # type: ignore[attr-defined]

Effect = Literal["recommend", "consider", "not_indicated_now", "boost"]

# Placeholders a rule's reason may use; filled by the core from the current state.
REASON_FIELDS = frozenset({"drug", "state", "detail", "months"})


class StepRule(Sourced):
    """One rule of the stepped plan: at ``steps``, options matching ``categories`` or ``options``
    get ``effect`` (and ``boost`` added to their rank score), with ``reason`` shown."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    steps: tuple[PlanStep, ...] = Field(min_length=1)
    categories: tuple[Category, ...] = ()
    options: tuple[str, ...] = ()
    effect: Effect
    diagnoses: tuple[str, ...] = Field(
        default=(), description="episode diagnoses the rule is limited to (empty = any)"
    )
    boost: int = Field(default=0, ge=-50, le=50)
    reason: str = Field(min_length=10, description="may use {drug} {state} {detail} {months}")

    @model_validator(mode="after")
    def _targets_and_fields(self) -> StepRule:
        if not (self.categories or self.options):
            raise ValueError("a rule needs categories or options")
        used = {f for _, f, _, _ in string.Formatter().parse(self.reason) if f}
        unknown = used - REASON_FIELDS
        if unknown:
            raise ValueError(f"unknown placeholder(s) in reason: {', '.join(sorted(unknown))}")
        return self

    def matches(self, option_id: str, category: str, diagnosis: str = "") -> bool:
        if self.diagnoses and diagnosis not in self.diagnoses:
            return False
        return option_id in self.options or category in self.categories


class StateDefinition(Sourced):
    """How a plan step is named and explained to the clinician."""

    label: str = Field(min_length=3)
    rule: str = Field(min_length=10, description="the rule that puts a patient at this step")


class Continuation(Strict):
    """How long to continue after remission (shown with continue_current)."""

    months_min: NumberFact
    months_max: NumberFact
    text: Sourced


class Pathway(Strict):
    continuation: Continuation
    states: dict[PlanStep, StateDefinition]
    rules: tuple[StepRule, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _every_state_defined(self) -> Pathway:
        missing = [s for s in PLAN_STEPS if s not in self.states]
        if missing:
            raise ValueError(f"states without a definition: {', '.join(missing)}")
        ids = [r.id for r in self.rules]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"duplicate rule ids: {', '.join(dup)}")
        return self


class BipolarLadder(Sourced):
    """What a bipolar-depression diagnosis does to the plan."""

    guideline: str = Field(min_length=3)
    statement: str = Field(min_length=20, description="shown at the top of a bipolar plan")
    rules: tuple[StepRule, ...] = Field(
        min_length=1, description="their `steps` are ignored: a bipolar rule applies at any step"
    )


class PlanKnowledge(Strict):
    pathway: Pathway
    bipolar: BipolarLadder


def plan_defects(plan: PlanKnowledge, option_ids: set[str]) -> list[tuple[str, str, str]]:
    """(loc, code, message) for rules naming options that do not exist."""
    out: list[tuple[str, str, str]] = []
    for where, rules in (("pathway", plan.pathway.rules), ("bipolar", plan.bipolar.rules)):
        for rule in rules:
            for oid in rule.options:
                if oid not in option_ids:
                    out.append((f"{where}.{rule.id}.options", "unknown_option", f"{oid!r}"))
    return out


def _read(path: Path, problems: list[Problem]) -> object:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        problems.append(Problem("", "yaml_invalid", f"not readable YAML: {exc}", str(path)))
        return None


def load_plan(root: Path, problems: list[Problem]) -> PlanKnowledge | None:
    """Read and validate knowledge/data/plan/ (root is knowledge/data)."""
    folder = root / "plan"
    raw = {name: _read(folder / f"{name}.yaml", problems) for name in ("pathway", "bipolar")}
    try:
        return PlanKnowledge.model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors():
            parts = [str(p) for p in err["loc"]]
            file = str(folder / f"{parts[0]}.yaml") if parts else str(folder)
            problems.append(Problem(".".join(parts[1:]), "knowledge_invalid", err["msg"], file))
        return None
