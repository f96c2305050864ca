"""Knowledge models and loader for the next-step options of the planner (issue 4).

One YAML file per option under ``knowledge/data/options/<id>.yaml``. Every guideline placement and
every outcome figure is :class:`Sourced`, so the loader in :mod:`trdnav.knowledge.load` checks each
citation key against the bibliography; this module checks what only it knows: file name = id,
drug ids exist, and the required option ids are all present.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from trdnav.errors import Problem
from trdnav.knowledge.schema import Sourced, Strict

Category = Literal[
    "continue",
    "optimise",
    "switch",
    "augment",
    "combination",
    "neuromodulation",
    "rapid_acting",
    "psychotherapy",
    "lifestyle",
    "supplement",
    "testing",
    "specialist",
    "investigational",
]

REQUIRED_OPTIONS: tuple[str, ...] = (
    "optimize_dose",
    "switch_ssri",
    "switch_snri",
    "switch_bupropion",
    "switch_mirtazapine",
    "switch_vortioxetine",
    "switch_tca",
    "switch_maoi",
    "augment_aripiprazole",
    "augment_brexpiprazole",
    "augment_cariprazine",
    "augment_quetiapine",
    "augment_lithium",
    "augment_t3",
    "augment_bupropion",
    "augment_mirtazapine",
    "esketamine",
    "ketamine_iv",
    "rtms",
    "ect",
    "psychotherapy_cbt",
    "psychotherapy_cbasp",
    "psychotherapy_ipt",
    "behavioral_activation",
    "exercise",
    "pgx_testing",
    "vns",
    "psilocybin_trial",
    "continue_current",
)


class GuidelinePlacement(Sourced):
    """Where one guideline places the option (stored per guideline, never merged)."""

    guideline: str = Field(min_length=3, description='e.g. "CANMAT 2023", "NICE NG222"')
    line: str = Field(min_length=3, description='e.g. "1st line", "not recommended"')


class OutcomeFigure(Sourced):
    """A headline figure, with the trial it comes from; no number without a citation key."""

    figure: str = Field(min_length=10, description="the figure as text, with its numbers")
    study: str = Field(min_length=2, description="trial or study name")


EvidenceGrade = Literal["strong", "moderate", "limited", "weak", "insufficient", "investigational"]
AppliesTo = Literal["any", "unipolar", "bipolar"]


class TreatmentOption(Sourced):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    category: Category
    drugs: tuple[str, ...] = Field(
        default=(), description="drug ids involved; for a switch, the candidate drugs"
    )
    guidelines: tuple[GuidelinePlacement, ...] = ()
    outcomes: tuple[OutcomeFigure, ...] = ()
    summary_plain: str = Field(min_length=40, description="patient summary, ~8th-grade level")
    base_priority: int = Field(ge=0, le=100, description="higher ranks earlier")
    recommend_after_failures: int | None = Field(
        default=None,
        ge=0,
        description="failed adequate trials after which the option is recommended; "
        "None = never recommended on the count alone",
    )
    requires_partial_response: bool = False
    requires_trd: bool = False
    investigational: bool = False
    specialist: bool = False
    applies_to: AppliesTo = Field(
        default="any",
        description="the depressions the option is planned for: a bipolar-only option is left out "
        "of a unipolar plan; what a bipolar plan does with the others is in plan/bipolar.yaml",
    )
    evidence_grade: EvidenceGrade | None = Field(
        default=None,
        description="honest summary of the evidence for this use, e.g. limited for a supplement",
    )
    added_in: str = "0.1.0"

    @model_validator(mode="after")
    def _investigational_never_recommended(self) -> TreatmentOption:
        if self.investigational and self.recommend_after_failures is not None:
            raise ValueError("an investigational option is never recommended")
        return self


class OptionsKnowledge(Strict):
    """Everything under knowledge/data/options/, keyed by option id."""

    options: dict[str, TreatmentOption] = Field(default_factory=dict)


def option_defects(option: TreatmentOption, drug_ids: set[str]) -> list[tuple[str, str, str]]:
    """(loc, code, message) for what the model alone cannot check."""
    out: list[tuple[str, str, str]] = []
    for i, drug in enumerate(option.drugs):
        if drug not in drug_ids:
            out.append((f"drugs.{i}", "unknown_drug", f"unknown drug {drug!r}"))
    if option.category == "switch" and not option.drugs:
        out.append(("drugs", "no_candidates", "a switch option needs candidate drugs"))
    return out


def load_options(root: Path, problems: list[Problem]) -> OptionsKnowledge | None:
    """Read and validate knowledge/data/options/ (root is knowledge/data)."""
    before = len(problems)
    drug_ids = {p.stem for p in (root / "drugs").glob("*.yaml")}
    options: dict[str, TreatmentOption] = {}
    for path in sorted((root / "options").glob("*.yaml")):
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            problems.append(Problem("", "yaml_invalid", f"not valid YAML: {exc}", str(path)))
            continue
        try:
            option = TreatmentOption.model_validate(raw)
        except ValidationError as exc:
            for err in exc.errors():
                loc = ".".join(str(p) for p in err["loc"])
                problems.append(Problem(loc, "knowledge_invalid", err["msg"], str(path)))
            continue
        if option.id != path.stem:
            problems.append(
                Problem("id", "id_mismatch", f"id {option.id!r} differs from file name", str(path))
            )
        problems.extend(
            Problem(loc, code, msg, str(path))
            for loc, code, msg in option_defects(option, drug_ids)
        )
        options[option.id] = option
    problems.extend(
        Problem(
            oid, "option_missing", f"required option {oid!r} has no file", str(root / "options")
        )
        for oid in REQUIRED_OPTIONS
        if oid not in options
    )
    if len(problems) > before:
        return None
    return OptionsKnowledge(options=dict(sorted(options.items())))
