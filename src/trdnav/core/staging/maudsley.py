"""Maudsley Staging Method (MSM; Fekadu 2009, standardised 2018): score 3–15 and band."""

from __future__ import annotations

from trdnav.core.calendar import completed_months
from trdnav.core.history import Ect
from trdnav.core.staging.result import StageItem, StageResult, StagingInput
from trdnav.knowledge.load import Knowledge
from trdnav.knowledge.schema import Band


def band_for(bands: tuple[Band, ...], value: float) -> Band:
    for band in bands:
        if value >= band.min and (band.max is None or value <= band.max):
            return band
    raise ValueError(f"no band holds {value}")


def stage_maudsley(data: StagingInput, kb: Knowledge) -> StageResult:
    method = kb.staging["maudsley"]
    src = tuple(method.source)
    b = method.bands
    months = completed_months(data.history.episode.onset, data.as_of)
    duration = band_for(b["duration_months"], months)
    severity_key = data.history.episode.severity.value
    severity_pts = method.parameters[f"severity_{severity_key}"]
    failures = data.trd.failed_adequate_trials
    fail_band = band_for(b["failed_antidepressants"], failures)
    aug = [
        v for v in data.verdicts if v.role != "antidepressant" and data.in_episode(v.start, v.stop)
    ]
    ect = [
        t
        for t in data.history.treatments
        if isinstance(t, Ect) and data.in_episode(t.start, t.stop)
    ]
    aug_pts = method.parameters["augmentation_used"] if aug else 0.0
    ect_pts = method.parameters["ect_used"] if ect else 0.0
    items = (
        StageItem(
            item="duration",
            value=f"{months} months",
            points=duration.points,
            explanation=f"current episode {months} completed months ({duration.label})",
            citations=src,
        ),
        StageItem(
            item="severity",
            value=severity_key,
            points=severity_pts,
            explanation=f"baseline severity {severity_key.replace('_', ' ')}",
            citations=src,
        ),
        StageItem(
            item="failed_antidepressants",
            value=str(failures),
            points=fail_band.points,
            explanation=f"{failures} failed adequate antidepressant trial(s) ({fail_band.label})",
            citations=src,
        ),
        StageItem(
            item="augmentation",
            value="yes" if aug else "no",
            points=aug_pts,
            explanation="augmentation or combination used in this episode"
            if aug
            else "no augmentation recorded in this episode",
            citations=src,
        ),
        StageItem(
            item="ect",
            value="yes" if ect else "no",
            points=ect_pts,
            explanation="ECT used in this episode" if ect else "no ECT in this episode",
            citations=src,
        ),
    )
    score = sum(i.points or 0.0 for i in items)
    band = band_for(b["total"], score)
    notes = []
    label = None
    if failures == 0:
        label = "not staged: no failed adequate antidepressant trial"
        notes.append(
            "The MSM stages treatment resistance and needs at least one failed adequate trial; "
            "with none its total (3–15) is undefined, so no score is given."
        )
    return StageResult(
        method="maudsley",
        name=method.name,
        label=label,
        score=None if failures == 0 else score,
        band=None if failures == 0 else band.label,
        items=items,
        verified=method.verified,
        notes=tuple(notes),
        citations=tuple(sorted(src)),
    )
