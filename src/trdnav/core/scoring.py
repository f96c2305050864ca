"""Score one completed instrument: validate the answers, apply the missing-item rule, total,
domains, severity band, screen result and suicide-item signal.

Pure: the instrument definition comes from the knowledge base; nothing here reads a file. The
same function serves the CLI, the web app and the API. Bad answers raise :class:`ScoringError`
with one problem per defect, each naming the item and what was expected.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from trdnav.knowledge.schema import Instrument, InstrumentItem, ScreenRule

Answer = int | None


class ScoringProblem(BaseModel):
    model_config = ConfigDict(frozen=True)

    loc: str  # "items", "items[8]", "total", "sex"
    message: str


class ScoringError(ValueError):
    def __init__(self, instrument: str, problems: Sequence[ScoringProblem]) -> None:
        self.instrument = instrument
        self.problems = tuple(problems)
        super().__init__("; ".join(f"{p.loc}: {p.message}" for p in self.problems))


class ScreenResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    positive: bool
    label: str
    detail: str
    severity: Literal["low", "moderate", "high"] | None = None
    verified: bool
    citations: tuple[str, ...]


class Score(BaseModel):
    """The scored form. ``total`` is None for unscored instruments (C-SSRS, ASRS)."""

    model_config = ConfigDict(frozen=True)

    instrument: str  # canonical name, e.g. "PHQ-9"
    instrument_id: str
    answers: tuple[Answer, ...] | None
    total: float | None
    total_max: float | None
    prorated: bool = False
    domains: dict[str, float] = {}
    band: str | None = None
    screen: ScreenResult | None = None
    suicide_item_answer: int | None = None
    suicide_signal: bool | None = None  # None: the item was not answered / only a total given
    notes: tuple[str, ...] = ()
    verified: bool
    citations: tuple[str, ...]


def band_for(inst: Instrument, total: float) -> str | None:
    for band in inst.bands:
        if total >= band.min and (band.max is None or total <= band.max):
            return band.label
    return None


def _cssrs_skips(answers: list[Answer]) -> tuple[list[Answer], list[str]]:
    """Columbia screener skip logic: 3–5 asked only after a 'yes' to 2; 7 only after 'yes' to 6."""
    notes = []
    out = list(answers)
    if len(out) >= 5 and out[1] == 0:
        for k in (2, 3, 4):
            if out[k] is None:
                out[k] = 0
                notes.append(f"item {k + 1} skipped after 'no' to item 2 (screener skip logic)")
    if len(out) >= 7 and out[5] == 0 and out[6] is None:
        out[6] = 0
        notes.append("item 7 skipped after 'no' to item 6 (screener skip logic)")
    if len(out) >= 7 and out[5] == 0 and out[6] == 1:
        notes.append(
            "inconsistent answers: behaviour in the past 3 months (item 7) but none ever "
            "(item 6); triaged on item 7 — check with the patient"
        )
    return out, notes


def _mdq_skips(answers: list[Answer]) -> tuple[list[Answer], list[str]]:
    """MDQ: item 14 is asked only when more than one symptom item is 'yes'."""
    out = list(answers)
    if len(out) >= 14 and out[13] is None and sum(1 for a in out[:13] if a == 1) <= 1:
        if all(a is not None for a in out[:13]):
            out[13] = 0
            return out, ["item 14 not asked (at most one symptom item 'yes')"]
    return out, []


def _check_answers(inst: Instrument, answers: Sequence[Answer]) -> list[ScoringProblem]:
    problems: list[ScoringProblem] = []
    if len(answers) != len(inst.items):
        problems.append(
            ScoringProblem(
                loc="items",
                message=f"{inst.name} has {len(inst.items)} items; {len(answers)} answers given",
            )
        )
        return problems
    lo, hi = _ranges(inst)
    if all(type(a) is int and lo[k] <= a <= hi[k] for k, a in enumerate(answers) if a is not None):
        return problems  # the common case, checked in one pass
    for k, (item, a) in enumerate(zip(inst.items, answers, strict=True)):
        if a is None:
            continue
        if _whole(a) is None or not item.min <= a <= item.max:
            problems.append(
                ScoringProblem(
                    loc=f"items[{k}]",
                    message=f"item {item.n} of {inst.name} must be "
                    f"{expected_answer(inst, item)}; got {a!r}",
                )
            )
    return problems


_RANGES: dict[int, tuple[Instrument, tuple[int, ...], tuple[int, ...]]] = {}


def _ranges(inst: Instrument) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Per-item minima and maxima of an instrument, computed once per (immutable) instrument."""
    entry = _RANGES.get(id(inst))
    if entry is None or entry[0] is not inst:  # the entry holds inst, so its id is never reused
        entry = (inst, tuple(i.min for i in inst.items), tuple(i.max for i in inst.items))
        _RANGES[id(inst)] = entry
    return entry[1], entry[2]


def expected_answer(inst: Instrument, item: InstrumentItem) -> str:
    """What an item accepts, in words: '0 (no) or 1 (yes)' or 'a whole number from 0 to 3'."""
    if inst.answer_type == "yes_no" and item.min == 0 and item.max == 1:
        return "0 (no) or 1 (yes)"
    return f"a whole number from {item.min} to {item.max}"


def _whole(a: object) -> int | None:
    """``a`` as an int when it is an integer (numpy integers included, bools not)."""
    if isinstance(a, bool):
        return None
    try:
        return operator.index(a)  # type: ignore[arg-type]
    except TypeError:
        return None


def _domain_scores(inst: Instrument, answers: Sequence[Answer]) -> dict[str, float | None]:
    by_n = {item.n: a for item, a in zip(inst.items, answers, strict=True)}
    out: dict[str, float | None] = {}
    for d in inst.domains:
        vals = [by_n[n] for n in d.items if by_n[n] is not None]
        if not vals:
            out[d.name] = None
        elif d.combine == "max":
            out[d.name] = float(max(v for v in vals if v is not None))
        else:
            out[d.name] = float(sum(v for v in vals if v is not None))
    if not inst.domains:  # subscales from item labels (PCL-5 clusters, MDQ parts)
        for item in inst.items:
            a = by_n[item.n]
            if item.domain is not None and a is not None:
                out[item.domain] = (out.get(item.domain) or 0.0) + a
    return out


def _total(
    inst: Instrument, answers: list[Answer], notes: list[str]
) -> tuple[float | None, bool, dict[str, float], list[ScoringProblem]]:
    rule = inst.missing
    missing = [item.n for item, a in zip(inst.items, answers, strict=True) if a is None]
    domains = _domain_scores(inst, answers)
    problems: list[ScoringProblem] = []
    scored_domains = {k: v for k, v in domains.items() if v is not None}
    if not inst.scored:
        if missing and rule.rule == "refuse":
            problems.append(_refused(inst, missing, "no item may be missing"))
        return None, False, scored_domains, problems
    if inst.screen is not None and inst.screen.method == "mdq":
        core = [a for item, a in zip(inst.items, answers, strict=True) if item.domain is None]
        if missing:
            problems.append(_refused(inst, missing, "no item may be missing"))
            return None, False, scored_domains, problems
        return float(sum(a for a in core if a is not None)), False, scored_domains, problems
    if not missing:
        if inst.domains:
            return (
                float(sum(v for v in scored_domains.values())),
                False,
                scored_domains,
                problems,
            )
        return float(sum(a for a in answers if a is not None)), False, scored_domains, problems
    if rule.rule == "refuse":
        problems.append(_refused(inst, missing, "no item may be missing"))
        return None, False, scored_domains, problems
    if rule.rule == "domain_any":
        empty = [name for name, v in domains.items() if v is None]
        if empty:
            problems.append(
                ScoringProblem(
                    loc="items",
                    message=f"{inst.name} cannot be scored: no answered item in domain(s) "
                    f"{', '.join(empty)} (each domain needs at least one answered item)",
                )
            )
            return None, False, scored_domains, problems
        notes.append(
            f"items {', '.join(map(str, missing))} unanswered; each domain scored from its "
            "answered items"
        )
        return float(sum(v for v in scored_domains.values())), False, scored_domains, problems
    # prorate
    blocked = [n for n in missing if n in rule.never_missing]
    if blocked:
        problems.append(
            _refused(
                inst,
                missing,
                f"item {', '.join(map(str, blocked))} may never be missing (it cannot be "
                "prorated away)",
            )
        )
        return None, False, scored_domains, problems
    if len(missing) > rule.max_missing:
        problems.append(
            _refused(inst, missing, f"at most {rule.max_missing} item(s) may be missing")
        )
        return None, False, scored_domains, problems
    answered = [a for a in answers if a is not None]
    total = float(math.floor(sum(answered) * len(inst.items) / len(answered) + 0.5))  # half up
    notes.append(
        f"item(s) {', '.join(map(str, missing))} missing: total prorated from "
        f"{len(answered)} answered items ({sum(answered)} × {len(inst.items)}/{len(answered)})"
    )
    return total, True, scored_domains, problems


def _refused(inst: Instrument, missing: list[int], why: str) -> ScoringProblem:
    return ScoringProblem(
        loc="items",
        message=f"{inst.name} cannot be scored: item(s) {', '.join(map(str, missing))} "
        f"unanswered and {why} (missing-item rule: {inst.missing.rule})",
    )


def _screen(
    rule: ScreenRule,
    inst: Instrument,
    answers: Sequence[Answer] | None,
    total: float | None,
    sex: str | None,
    notes: list[str],
) -> ScreenResult | None:
    cites = tuple(rule.source)

    def result(positive: bool, detail: str, severity: str | None = None) -> ScreenResult:
        return ScreenResult(
            positive=positive,
            label=rule.label,
            detail=detail,
            severity=severity,
            verified=rule.verified,
            citations=cites,
        )

    if rule.method == "total_at_least":
        if total is None:
            return None
        if rule.cutoff_by_sex:
            if sex in rule.cutoff_by_sex:
                cutoff = rule.cutoff_by_sex[sex]
                basis = f"the cutoff for {sex} patients"
            else:
                cutoff = min(rule.cutoff_by_sex.values())
                basis = "the lower cutoff, because the patient's sex is not recorded"
                notes.append(f"{inst.name}: sex not recorded, so the lower cutoff was applied")
        else:
            assert rule.cutoff is not None  # noqa: S101 - guaranteed by the knowledge tests
            cutoff, basis = rule.cutoff, "the screening cutoff"
        pos = total >= cutoff
        return result(pos, f"total {total:g} {'≥' if pos else '<'} {cutoff:g} ({basis})")
    if answers is None:
        return None
    if rule.method == "item_at_least":
        assert rule.item is not None and rule.cutoff is not None  # noqa: S101
        a = answers[rule.item - 1]
        if a is None:
            return None
        return result(a >= rule.cutoff, f"item {rule.item} = {a}")
    if rule.method == "mdq":
        assert rule.cutoff is not None  # noqa: S101
        yes = sum(1 for a in answers[:13] if a)
        same_time = answers[13] == 1
        impairment = (answers[14] or 0) >= 2
        pos = yes >= rule.cutoff and same_time and impairment
        return result(
            pos,
            f"{yes} of 13 symptom items 'yes' (needs ≥ {rule.cutoff:g}); co-occurrence "
            f"{'yes' if same_time else 'no'}; problem level {answers[14]} (needs ≥ 2)",
        )
    if rule.method == "asrs_part_a":
        assert rule.item_thresholds is not None and rule.min_items_counted is not None  # noqa: S101
        hits = [n for n, lo in rule.item_thresholds.items() if (answers[n - 1] or 0) >= lo]
        pos = len(hits) >= rule.min_items_counted
        return result(
            pos,
            f"{len(hits)} of {len(rule.item_thresholds)} Part A items in the shaded range "
            f"(needs ≥ {rule.min_items_counted})",
        )
    # cssrs_triage
    reached: list[tuple[int, str, str]] = []
    order = {"low": 1, "moderate": 2, "high": 3}
    for level in inst.triage:
        if any(answers[n - 1] == 1 for n in level.items):
            reached.append((order[level.severity], level.severity, level.label))
    if not reached:
        return result(False, "no 'yes' answer")
    _, severity, label = max(reached)
    return result(True, f"{severity} risk: {label}", severity)


def score_answers(
    inst: Instrument,
    answers: Sequence[Answer] | None = None,
    *,
    total: float | None = None,
    sex: str | None = None,
) -> Score:
    """Score one form from its item answers (or, failing those, a recorded total)."""
    notes: list[str] = []
    problems: list[ScoringProblem] = []
    prorated = False
    domains: dict[str, float] = {}
    ans: list[Answer] | None = None
    if answers is None:
        if total is None:
            raise ScoringError(
                inst.name, [ScoringProblem(loc="items", message="give item answers or a total")]
            )
        if not inst.scored:
            raise ScoringError(
                inst.name,
                [
                    ScoringProblem(
                        loc="total",
                        message=f"{inst.name} has no total; give its item answers",
                    )
                ],
            )
        top = inst.total_max if inst.total_max is not None else math.inf
        if total < inst.total_min or total > top or total != int(total):
            raise ScoringError(
                inst.name,
                [
                    ScoringProblem(
                        loc="total",
                        message=f"{inst.name} total must be a whole number from "
                        f"{inst.total_min:g} to {top:g}; got {total:g}",
                    )
                ],
            )
        notes.append("only a total was recorded: items (and the suicide item) are unknown")
    else:
        problems = _check_answers(inst, answers)
        if problems:
            raise ScoringError(inst.name, problems)
        ans = list(answers)
        if any(type(a) is not int for a in ans if a is not None):
            ans = [None if a is None else _whole(a) for a in ans]
        if inst.screen is not None and inst.screen.method == "cssrs_triage":
            ans, skip_notes = _cssrs_skips(ans)
            notes.extend(skip_notes)
        if inst.screen is not None and inst.screen.method == "mdq":
            ans, skip_notes = _mdq_skips(ans)
            notes.extend(skip_notes)
        item_total, prorated, domains, problems = _total(inst, ans, notes)
        if problems:
            raise ScoringError(inst.name, problems)
        if total is not None and item_total is not None and total != item_total:
            notes.append(f"recorded total {total:g} differs from the items' total {item_total:g}")
        total = item_total
    suicide_answer: int | None = None
    signal: bool | None = None
    if inst.suicide_item is not None and ans is not None:
        suicide_answer = ans[inst.suicide_item - 1]
        signal = None if suicide_answer is None else suicide_answer > 0
    screen = (
        None
        if inst.screen is None
        else _screen(inst.screen, inst, None if ans is None else ans, total, sex, notes)
    )
    return Score.model_construct(  # every field built above from checked values
        instrument=inst.name,
        instrument_id=inst.id,
        answers=None if ans is None else tuple(ans),
        total=total,
        total_max=inst.total_max,
        prorated=prorated,
        domains=domains,
        band=None if total is None else band_for(inst, total),
        screen=screen,
        suicide_item_answer=suicide_answer,
        suicide_signal=signal,
        notes=tuple(notes),
        verified=inst.verified,
        citations=tuple(sorted(inst.source)),
    )
