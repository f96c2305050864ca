"""What every staging method returns: a stage or score with its item-by-item breakdown."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict

from trdnav.core.adequacy import TrialVerdict
from trdnav.core.history import History
from trdnav.core.resistance import TrdDetermination


class StageItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    item: str
    value: str
    points: float | None = None
    met: bool | None = None
    explanation: str
    citations: tuple[str, ...] = ()


class StageResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    method: str
    name: str
    stage: int | None = None
    label: str | None = None
    score: float | None = None
    band: str | None = None
    items: tuple[StageItem, ...] = ()
    missing: tuple[str, ...] = ()
    verified: bool
    notes: tuple[str, ...] = ()
    citations: tuple[str, ...]


class StagingInput(BaseModel):
    """Everything a staging method may read: the history and the verdicts already reached."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    history: History
    verdicts: tuple[TrialVerdict, ...]
    trd: TrdDetermination
    as_of: date

    @property
    def counted(self) -> list[TrialVerdict]:
        return [v for v in self.verdicts if v.counts_as_failure]

    def in_episode(self, start: date, stop: date | None) -> bool:
        return stop is None or stop >= self.history.episode.onset
