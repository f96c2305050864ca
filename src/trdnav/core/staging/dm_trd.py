"""Dutch Measure for quantification of TRD (DM-TRD; Peeters et al. 2016)."""

from __future__ import annotations

from trdnav.core.staging.result import StageResult, StagingInput
from trdnav.knowledge.load import Knowledge


def stage_dm_trd(data: StagingInput, kb: Knowledge) -> StageResult:
    method = kb.staging["dm_trd"]
    return StageResult(
        method="dm_trd",
        name=method.name,
        missing=method.inputs,
        verified=method.verified,
        label="not scored (scoring unverified)",
        notes=(method.note,) if method.note else (),
        citations=tuple(sorted(method.source)),
    )
