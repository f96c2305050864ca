"""Dutch Measure for quantification of TRD (DM-TRD; Peeters et al. 2016).

Not scored: the item scoring could not be confirmed in the original. The result records the
extra inputs that are present and names those that are missing, so a clinician can complete the
measure by hand from the paper.
"""

from __future__ import annotations

from trdnav.core.staging.result import StageItem, StageResult, StagingInput
from trdnav.knowledge.load import Knowledge


def stage_dm_trd(data: StagingInput, kb: Knowledge) -> StageResult:
    method = kb.staging["dm_trd"]
    src = tuple(sorted(method.source))
    given = data.history.staging_inputs
    values = {} if given is None else given.model_dump(exclude_none=True)
    items = tuple(
        StageItem(
            item=name,
            value=str(values[name]),
            explanation=f"{name.replace('_', ' ')} recorded as {values[name]}",
            citations=src,
        )
        for name in method.inputs
        if name in values
    )
    return StageResult(
        method="dm_trd",
        name=method.name,
        label="not scored (scoring unverified)",
        items=items,
        missing=tuple(n for n in method.inputs if n not in values),
        verified=method.verified,
        notes=(method.note,) if method.note else (),
        citations=src,
    )
