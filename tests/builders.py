"""A fluent builder so each test states its patient in a few lines.

a_history().trial("sertraline", 150, weeks=8, outcome="no_response").build()
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from trdnav.core.history import History

AS_OF = date(2024, 6, 1)


class HistoryBuilder:
    def __init__(self) -> None:
        self.data: dict[str, Any] = {
            "patient": {"id": "T1", "birth_date": date(1980, 1, 1), "sex": "female"},
            "assessed_on": AS_OF,
            "episode": {
                "onset": date(2022, 1, 1),
                "diagnosis": "mdd_recurrent",
                "severity": "moderate",
            },
            "conditions": [],
            "treatments": [],
            "measurements": [],
        }
        self.cursor = date(2022, 2, 1)

    def episode(self, **fields: Any) -> HistoryBuilder:
        self.data["episode"].update(fields)
        return self

    def condition(self, name: str, status: str | None = None) -> HistoryBuilder:
        self.data["conditions"].append({"name": name, "status": status})
        return self

    def trial(
        self,
        drug: str,
        mg: float | None,
        *,
        weeks: float = 8,
        adherence: float | None = 0.9,
        outcome: str = "no_response",
        start: date | None = None,
        augments: str | None = None,
        ramp_from: float | None = None,
        ramp_days: int = 0,
        **extra: Any,
    ) -> HistoryBuilder:
        """A trial held ``weeks`` at ``mg`` (after ``ramp_days`` at ``ramp_from``)."""
        begin = start or self.cursor
        days = round(weeks * 7) + ramp_days
        stop = begin + timedelta(days=days)
        doses = []
        if mg is not None:
            if ramp_from is not None and ramp_days:
                doses.append({"from": begin, "mg_per_day": ramp_from})
                doses.append({"from": begin + timedelta(days=ramp_days), "mg_per_day": mg})
            else:
                doses.append({"from": begin, "mg_per_day": mg})
        t: dict[str, Any] = {
            "type": "medication",
            "drug": drug,
            "start": begin,
            "stop": stop,
            "doses": doses,
            "adherence": adherence,
            "outcome": outcome,
            "augments": augments,
            **extra,
        }
        self.data["treatments"].append(t)
        if start is None:
            self.cursor = stop + timedelta(days=14)
        return self

    def ect(self, outcome: str = "no_response", placement: str = "bilateral") -> HistoryBuilder:
        begin = self.cursor
        self.data["treatments"].append(
            {
                "type": "ect",
                "start": begin,
                "stop": begin + timedelta(days=35),
                "sessions": 12,
                "electrode_placement": placement,
                "outcome": outcome,
            }
        )
        self.cursor = begin + timedelta(days=49)
        return self

    def treatment(self, **fields: Any) -> HistoryBuilder:
        self.data["treatments"].append(fields)
        return self

    def build(self) -> History:
        return History.model_validate(self.data)

    def raw(self) -> dict[str, Any]:
        return self.data


def a_history() -> HistoryBuilder:
    return HistoryBuilder()
