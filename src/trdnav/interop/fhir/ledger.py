"""Book-keeping of an import: which resource went where, which was not mapped, what was assumed.

Mappers add history *items* (a treatment, a measurement, a lab, a condition, a current
medication) with the resources they came from; the history is assembled from the items at the
end, so a path such as ``treatments[2]`` is known only then. An item that fails the history's
checks is dropped with its resources reported as not mapped (a reduced result, never a crash).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from trdnav.core.history import Outcome
from trdnav.interop.fhir import codes
from trdnav.interop.fhir.report import Assumption, ImportReport, Mapped, NotMapped

SECTIONS = (
    "conditions",
    "treatments",
    "measurements",
    "labs",
    "pgx",
    "current_medications",
    "clinician_alerts",
)


@dataclass(eq=False)  # identity: an item is found and removed as itself
class Item:
    """One entry of a history list, with the resources it came from."""

    section: str
    data: dict[str, Any]
    sources: list[str]
    key: tuple[Any, ...]
    path: str | None = None


@dataclass
class Ledger:
    refs: list[str] = field(default_factory=list)
    items: list[Item] = field(default_factory=list)
    targets: dict[str, list[Item | str]] = field(default_factory=dict)
    skipped: dict[str, NotMapped] = field(default_factory=dict)
    assumed: list[tuple[str, Item | str | None, str]] = field(default_factory=list)

    def read(self, ref: str) -> None:
        self.refs.append(ref)

    def add(
        self,
        section: str,
        data: dict[str, Any],
        sources: list[str],
        key: tuple[Any, ...],
        *,
        order: int | None = None,
    ) -> Item:
        """A history item; ``order`` (an index in the exporting history) places it first."""
        full = (0, order) if order is not None else (1, *key)
        item = Item(section, data, list(dict.fromkeys(sources)), full)
        self.items.append(item)
        for ref in item.sources:
            self.targets.setdefault(ref, []).append(item)
        return item

    def to(self, ref: str, target: str) -> None:
        """``ref`` went to a fixed place (``patient identity``, ``episode``…)."""
        self.targets.setdefault(ref, []).append(target)

    def skip(self, ref: str, code: str, reason: str) -> None:
        if ref not in self.skipped:
            self.skipped[ref] = NotMapped(resource=ref, code=code, reason=reason)

    def assume(self, ref: str, text: str, target: Item | str | None = None) -> None:
        entry = (ref, target, text)
        if entry not in self.assumed:
            self.assumed.append(entry)

    def drop(self, item: Item, code: str, reason: str) -> None:
        """Remove an item that failed the history's checks; its resources become not mapped."""
        self.items.remove(item)
        for ref in item.sources:
            left = [t for t in self.targets.get(ref, []) if t is not item]
            self.targets[ref] = left
            if not left:
                self.skip(ref, code, reason)

    def report(self) -> ImportReport:
        mapped: list[Mapped] = []
        not_mapped: list[NotMapped] = []
        for ref in dict.fromkeys(self.refs):
            places = self.targets.get(ref, [])
            if ref in self.skipped and not places:
                not_mapped.append(self.skipped[ref])
            elif places:
                for p in dict.fromkeys(_place(t) for t in places):
                    mapped.append(Mapped(resource=ref, to=p))
            else:
                not_mapped.append(
                    NotMapped(resource=ref, code="not_used", reason="read, but nothing used it")
                )
        assumptions = [
            Assumption(resource=ref, to=None if t is None else _place(t), assumption=text)
            for ref, t, text in self.assumed
            if self.targets.get(ref)
        ]
        return ImportReport(
            resources=len(dict.fromkeys(self.refs)),
            mapped=tuple(mapped),
            not_mapped=tuple(not_mapped),
            assumptions=tuple(assumptions),
        )


def _place(t: Item | str) -> str:
    return t if isinstance(t, str) else (t.path or t.section)


# --- small readers shared by the mappers ---------------------------------------------------------


def to_date(value: Any) -> tuple[date | None, str | None]:
    """A FHIR date/dateTime as a date, and an assumption when it was partial (``2023-06``)."""
    if value is None:
        return None, None
    if isinstance(value, datetime):
        return value.date(), None
    if isinstance(value, date):
        return value, None
    text = str(value)
    try:
        if len(text) == 7:
            return date.fromisoformat(text + "-01"), f"partial date {text} read as {text}-01"
        if len(text) == 4:
            return date.fromisoformat(text + "-01-01"), f"partial date {text} read as {text}-01-01"
        return date.fromisoformat(text[:10]), None
    except ValueError:
        return None, None


def number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        return float(value)
    return None


def codings(cc: Any) -> list[Any]:
    return list(getattr(cc, "coding", None) or []) if cc is not None else []


def texts(cc: Any) -> list[str]:
    """The human words of a CodeableConcept: its text, then each coding's display."""
    if cc is None:
        return []
    out = [cc.text] if getattr(cc, "text", None) else []
    out += [c.display for c in codings(cc) if c.display]
    return list(dict.fromkeys(out))


def extension(resource: Any, url: str) -> Any:
    for ext in getattr(resource, "extension", None) or []:
        if ext.url == url:
            return ext
    return None


_OUTCOME_WORDS: tuple[tuple[str, Outcome], ...] = (
    ("partial", Outcome.PARTIAL_RESPONSE),
    ("remission", Outcome.REMISSION),
    ("lost", Outcome.RESPONSE_LOST),
    ("tachyphylaxis", Outcome.RESPONSE_LOST),
    ("intoleran", Outcome.INTOLERANCE),
    ("side effect", Outcome.INTOLERANCE),
    ("adverse", Outcome.INTOLERANCE),
    ("not tolerated", Outcome.INTOLERANCE),
    ("no response", Outcome.NO_RESPONSE),
    ("non-response", Outcome.NO_RESPONSE),
    ("nonresponse", Outcome.NO_RESPONSE),
    ("ineffective", Outcome.NO_RESPONSE),
    ("not effective", Outcome.NO_RESPONSE),
    ("no effect", Outcome.NO_RESPONSE),
    ("lack of efficacy", Outcome.NO_RESPONSE),
    ("response", Outcome.RESPONSE),
)


def outcome_of(cc: Any) -> tuple[Outcome | None, str | None]:
    """A trial outcome from a CodeableConcept (statusReason, Procedure.outcome).

    The project's code system gives it exactly; otherwise words of the text are read, and the
    reading is returned as an assumption.
    """
    for c in codings(cc):
        if codes.is_system(c.system, codes.TRIAL_OUTCOME) and c.code in Outcome._value2member_map_:
            return Outcome(c.code), None
    for words in texts(cc):
        low = words.lower()
        for needle, outcome in _OUTCOME_WORDS:
            if needle in low:
                return outcome, f"outcome {outcome.value} read from the words {words!r}"
    return None, None
