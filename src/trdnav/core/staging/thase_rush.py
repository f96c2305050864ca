"""Thase–Rush staging (stage 0–5), class-aware.

Interpretation (documented in docs/rules.md): with C the set of antidepressant classes that failed
an adequate trial in this episode,
stage I = C not empty; II = at least two distinct classes; III = a TCA failed and the classes other
than the TCA already make stage II; IV = an MAOI failed and the classes other than the MAOI already
make stage III; V = stage IV and a failed course of bilateral ECT. Each stage builds on the one
below, as in the original ("stage II plus ..."), so adding a failure never lowers the stage.
"""

from __future__ import annotations

from trdnav.core.history import FAILED_OUTCOMES, Ect
from trdnav.core.staging.result import StageItem, StageResult, StagingInput
from trdnav.knowledge.load import Knowledge

ROMAN = ("0", "I", "II", "III", "IV", "V")
BILATERAL = frozenset({"bilateral", "bitemporal", "bifrontal"})


def _stage_of(classes: frozenset[str]) -> int:
    def s2(c: frozenset[str]) -> bool:
        return len(c) >= 2

    def s3(c: frozenset[str]) -> bool:
        return "tca" in c and s2(c - {"tca"})

    def s4(c: frozenset[str]) -> bool:
        return "maoi" in c and s3(c - {"maoi"})

    if s4(classes):
        return 4
    if s3(classes):
        return 3
    if s2(classes):
        return 2
    return 1 if classes else 0


def stage_thase_rush(data: StagingInput, kb: Knowledge) -> StageResult:
    method = kb.staging["thase_rush"]
    src = method.source
    classes = frozenset(v.drug_class for v in data.counted)
    failed_bilateral_ect = [
        t
        for t in data.history.treatments
        if isinstance(t, Ect)
        and t.outcome in FAILED_OUTCOMES
        and t.electrode_placement in BILATERAL
        and data.in_episode(t.start, t.stop)
    ]
    stage = _stage_of(classes)
    if stage == 4 and failed_bilateral_ect:
        stage = 5

    def label(c: str) -> str:
        return kb.classes[c].label

    items = (
        StageItem(
            item="failed_classes",
            value=", ".join(sorted(classes)) or "none",
            met=bool(classes),
            explanation="classes with a failed adequate trial: "
            + (", ".join(label(c) for c in sorted(classes)) or "none"),
            citations=src,
        ),
        StageItem(
            item="distinct_classes_failed",
            value=str(len(classes)),
            met=len(classes) >= 2,
            explanation="stage II needs failures in two distinctly different classes; two "
            "failures within one class stay at stage I",
            citations=src,
        ),
        StageItem(
            item="tca_failed",
            value=str("tca" in classes).lower(),
            met="tca" in classes,
            explanation="stage III: stage II plus failure of an adequate TCA trial",
            citations=src,
        ),
        StageItem(
            item="maoi_failed",
            value=str("maoi" in classes).lower(),
            met="maoi" in classes,
            explanation="stage IV: stage III plus failure of an adequate MAOI trial",
            citations=src,
        ),
        StageItem(
            item="bilateral_ect_failed",
            value=str(bool(failed_bilateral_ect)).lower(),
            met=bool(failed_bilateral_ect),
            explanation="stage V: stage IV plus failure of a course of bilateral ECT",
            citations=src,
        ),
    )
    notes: list[str] = []
    if failed_bilateral_ect and stage < 5:
        notes.append(
            "a failed bilateral ECT course is recorded but Thase–Rush counts it only at "
            "stage V (after TCA and MAOI failures)"
        )
    return StageResult(
        method="thase_rush",
        name=method.name,
        stage=stage,
        label=f"Stage {ROMAN[stage]}",
        items=items,
        verified=method.verified,
        notes=tuple(notes),
        citations=tuple(sorted(src)),
    )
