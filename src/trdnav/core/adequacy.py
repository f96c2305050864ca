"""Trial adequacy: was a medication trial a fair test of the drug?

A trial is adequate when the daily dose reached the knowledge base's minimum adequate dose, was
held there for at least the default number of weeks (longest continuous run, default 6), and at
least the default fraction of doses was taken (default 0.8). Add-on trials (``augments`` set) use
the agent's augmentation dose or serum level. A trial stopped for intolerance is not adequate and
never counts as a failure of efficacy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pydantic import BaseModel, ConfigDict

from trdnav.core.history import FAILED_OUTCOMES, Medication, Outcome
from trdnav.core.reasons import Explanation, ReasonCode
from trdnav.knowledge.load import Knowledge, normalize_drug_name
from trdnav.knowledge.schema import Drug, Role


@dataclass(frozen=True, slots=True)
class AdequacyRules:
    """The thresholds in force (defaults from the knowledge base, overridable per clinic)."""

    min_weeks: float
    min_adherence: float

    @classmethod
    def from_knowledge(
        cls, kb: Knowledge, *, min_weeks: float | None = None, min_adherence: float | None = None
    ) -> AdequacyRules:
        return cls(
            min_weeks=kb.adequacy.min_weeks_at_adequate_dose.value
            if min_weeks is None
            else min_weeks,
            min_adherence=kb.adequacy.min_adherence.value
            if min_adherence is None
            else min_adherence,
        )


class TrialVerdict(BaseModel):
    model_config = ConfigDict(frozen=True)

    index: int
    drug: str
    drug_input: str
    misspelling: bool = False  # drug_input is a known misspelling of the drug's name
    drug_class: str
    role: str  # "antidepressant" | "augmentation" | "combination"
    start: date
    stop: date | None
    adequate: bool | None
    counts_as_failure: bool
    weeks_at_adequate_dose: float | None
    max_mg_per_day: float | None
    min_adequate_mg_per_day: float | None
    adherence: float | None
    outcome: Outcome
    outcome_source: str = "history"
    augments: str | None = None
    reasons: tuple[str, ...]
    explanations: tuple[Explanation, ...]
    citations: tuple[str, ...]


def _weeks_at_or_above(trial: Medication, threshold: float, end: date) -> float:
    """Longest continuous run, in weeks, with the daily dose at or above ``threshold``."""
    steps = sorted(trial.doses, key=lambda s: s.from_)
    best = 0
    run_start: date | None = None
    for i, step in enumerate(steps):
        step_end = steps[i + 1].from_ if i + 1 < len(steps) else end
        if step.mg_per_day >= threshold:
            if run_start is None:
                run_start = step.from_
            best = max(best, (min(step_end, end) - run_start).days)
        else:
            run_start = None
    return max(best, 0) / 7


def _role(trial: Medication, drug: Drug, kb: Knowledge) -> str:
    if not kb.is_antidepressant(drug):
        return "augmentation"
    if trial.augments is None:
        return "antidepressant"
    if Role.AUGMENTATION in drug.roles:
        return "augmentation"
    return "combination" if kb.is_antidepressant(drug) else "augmentation"


def assess_trial(
    index: int,
    trial: Medication,
    drug: Drug,
    kb: Knowledge,
    rules: AdequacyRules,
    as_of: date,
    episode_onset: date,
) -> TrialVerdict:
    """Judge one medication trial. ``as_of`` ends an ongoing trial."""
    role = _role(trial, drug, kb)
    end = min(trial.stop or as_of, as_of)
    failing: list[Explanation] = []
    unknown: list[Explanation] = []
    info: list[Explanation] = []
    cites = set(drug.source)
    adequacy_src = kb.adequacy.min_weeks_at_adequate_dose.source
    adherence_src = kb.adequacy.min_adherence.source

    min_mg: float | None = None
    serum = None
    if role == "augmentation" and drug.augmentation_dose is not None:
        min_mg = drug.augmentation_dose.min_mg_per_day
        serum = drug.augmentation_dose.serum_level
    elif drug.antidepressant_dose is not None:
        min_mg = drug.antidepressant_dose.min_adequate_mg_per_day

    max_mg = max((s.mg_per_day for s in trial.doses), default=None)
    weeks: float | None = None
    if serum is not None:
        # adequacy by serum level (lithium): duration counts from the first dose step
        if trial.serum_level is None:
            unknown.append(
                Explanation(
                    code=ReasonCode.SERUM_LEVEL_UNKNOWN,
                    message=f"no serum level recorded; {drug.name} augmentation is adequate at "
                    f"≥ {serum.min:g} {serum.unit}",
                    citations=drug.source,
                )
            )
        elif trial.serum_level < serum.min:
            failing.append(
                Explanation(
                    code=ReasonCode.SERUM_LEVEL_BELOW_TARGET,
                    message=f"serum level {trial.serum_level:g} {serum.unit} is below the adequate "
                    f"{serum.min:g} {serum.unit}",
                    citations=drug.source,
                )
            )
        weeks = (end - trial.start).days / 7
    elif not trial.doses or min_mg is None:
        unknown.append(
            Explanation(
                code=ReasonCode.DOSE_UNKNOWN,
                message="no dose recorded, so adequacy of dose and duration cannot be judged",
                citations=drug.source,
            )
        )
    elif max_mg is not None and max_mg < min_mg:
        failing.append(
            Explanation(
                code=ReasonCode.DOSE_BELOW_MINIMUM,
                message=f"highest dose {max_mg:g} {drug.dose_unit} is below the minimum adequate "
                f"{min_mg:g} {drug.dose_unit} for {drug.name}",
                citations=drug.source,
            )
        )
        weeks = 0.0
    else:
        weeks = _weeks_at_or_above(trial, min_mg, end)

    if (
        weeks is not None
        and weeks < rules.min_weeks
        and not any(e.code == ReasonCode.DOSE_BELOW_MINIMUM for e in failing)
    ):
        ongoing = trial.stop is None or trial.stop > as_of
        failing.append(
            Explanation(
                code=ReasonCode.DURATION_TOO_SHORT,
                message=f"{weeks:.1f} weeks at an adequate dose, fewer than the "
                f"{rules.min_weeks:g} "
                f"required" + (" (trial still running)" if ongoing else ""),
                citations=adequacy_src,
            )
        )
    if trial.adherence is None:
        unknown.append(
            Explanation(
                code=ReasonCode.ADHERENCE_UNKNOWN,
                message="adherence not recorded "
                f"(adequate at ≥ {rules.min_adherence:.0%} of doses)",
                citations=adherence_src,
            )
        )
    elif trial.adherence < rules.min_adherence:
        failing.append(
            Explanation(
                code=ReasonCode.POOR_ADHERENCE,
                message=f"{trial.adherence:.0%} of doses taken, below the "
                f"{rules.min_adherence:.0%} "
                f"required",
                citations=adherence_src,
            )
        )
    if trial.outcome == Outcome.INTOLERANCE:
        failing.append(
            Explanation(
                code=ReasonCode.STOPPED_FOR_INTOLERANCE,
                message="stopped for side effects: an intolerance, not a failure of efficacy",
                citations=kb.adequacy.counting_rules.source,
            )
        )
    if trial.stop is None or trial.stop > as_of:
        info.append(
            Explanation(code=ReasonCode.ONGOING, message="trial still running", citations=())
        )

    adequate: bool | None = False if failing else (None if unknown else True)
    if adequate and trial.outcome == Outcome.UNKNOWN:
        info.append(
            Explanation(
                code=ReasonCode.OUTCOME_UNKNOWN,
                message="outcome not recorded: cannot say whether this adequate trial failed",
                citations=(),
            )
        )
    if trial.outcome == Outcome.RESPONSE_LOST or (
        trial.response_lost_on is not None and trial.outcome in (Outcome.UNKNOWN,)
    ):
        info.append(
            Explanation(
                code=ReasonCode.RESPONSE_LOST,
                message="a response was reached and later lost on the same drug "
                "(tachyphylaxis): not counted as a failed trial, since the drug did bring a "
                "response; flagged as tachyphylaxis",
                citations=(
                    *kb.adequacy.counting_rules.source,
                    *kb.plan.pathway.states["response_lost"].source,
                ),
            )
        )
    if trial.outcome in (Outcome.RESPONSE, Outcome.REMISSION):
        info.append(
            Explanation(
                code=ReasonCode.RESPONDED,
                message=f"outcome {trial.outcome.value.replace('_', ' ')}",
                citations=(),
            )
        )
    counting_src = kb.adequacy.counting_rules.source
    counts = bool(adequate) and trial.outcome in FAILED_OUTCOMES
    if trial.stop is not None and trial.stop < episode_onset:
        counts = False
        info.append(
            Explanation(
                code=ReasonCode.BEFORE_CURRENT_EPISODE,
                message="ended before the current episode began: TRD counts trials of the current "
                "episode only",
                citations=counting_src,
            )
        )
    if role != "antidepressant":
        counts = False
        info.append(
            Explanation(
                code=ReasonCode.AUGMENTATION_NOT_COUNTED,
                message=f"an add-on ({role}) trial: it scores in staging but is not counted as a "
                "separate antidepressant trial",
                citations=counting_src,
            )
        )
    explanations = (*failing, *unknown, *info)
    for e in explanations:
        cites.update(e.citations)
    return TrialVerdict(
        index=index,
        drug=drug.id,
        drug_input=trial.drug,
        misspelling=normalize_drug_name(trial.drug)
        in {normalize_drug_name(m) for m in drug.misspellings},
        drug_class=drug.drug_class,
        role=role,
        start=trial.start,
        stop=trial.stop,
        adequate=adequate,
        counts_as_failure=counts,
        weeks_at_adequate_dose=None if weeks is None else round(weeks, 1),
        max_mg_per_day=max_mg,
        min_adequate_mg_per_day=min_mg,
        adherence=trial.adherence,
        outcome=trial.outcome,
        augments=trial.augments,
        reasons=tuple(e.code for e in explanations),
        explanations=explanations,
        citations=tuple(sorted(cites)),
    )
