"""Trajectories: how a patient's scores on one instrument moved, and what that means.

For each instrument with a total, the scores from a baseline on give the percent change, response,
remission, sustained remission, relapse after remission, the Jacobson–Truax reliable change index,
a plateau under unchanged treatment and the time to response. ``derive_trial_outcome`` turns the
scores inside a medication trial's window into an outcome when the history does not record one.

Every threshold is read from the knowledge base: response and remission from the instrument's
``outcomes``, S_diff from its ``reliability``, the rest from ``measurement.yaml`` (and the partial
response threshold from ``adequacy.yaml``). The rules are written out in ``docs/trajectories.md``.
Pure: no clock, no file reads; results do not depend on the order of the input rows (scores are
sorted by date, then by their position in the history).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict

from trdnav.core.date_range import add_days
from trdnav.core.history import History, Medication, Outcome
from trdnav.core.measures import ScoredMeasurement
from trdnav.knowledge.load import Knowledge
from trdnav.knowledge.schema import Instrument, NumberFact

# Instruments a missing trial outcome may be derived from, most preferred first. The PHQ-9 comes
# first because the measurement schedule asks for it at every visit, so it is the score most often
# present at both ends of a trial and the most comparable between trials; then the QIDS-SR16
# (STAR*D's self-report), then the clinician-rated MADRS and HAM-D17. Only depression instruments
# belong here (an anxiety scale with outcome cut-offs must not decide a depression trial), and an
# instrument is used only when the knowledge base gives it both response and remission cut-offs.
TRIAL_OUTCOME_INSTRUMENTS: tuple[str, ...] = ("phq9", "qids_sr16", "madrs", "hamd17")

# How far before a trial's start a score still serves as the trial's baseline. This is the one
# window not yet in the knowledge base (it belongs in measurement.yaml, beside
# trial_window_grace_days); it is stated in docs/trajectories.md.

ReliableChange = Literal["improved", "worsened", "no_reliable_change", "not_available"]


class TrajectoryPoint(BaseModel):
    model_config = ConfigDict(frozen=True)

    date: date
    total: float
    band: str | None
    measurement_index: int  # position in history.measurements


class Trajectory(BaseModel):
    """One instrument's scores from the baseline on, and the rules applied to them."""

    model_config = ConfigDict(frozen=True)

    instrument: str  # canonical name, e.g. "PHQ-9"
    instrument_id: str
    points: tuple[TrajectoryPoint, ...]  # from the baseline on, by date then input position
    baseline: TrajectoryPoint | None
    latest: TrajectoryPoint | None
    percent_change: float | None  # rounded to 1 decimal, negative = improvement
    response: bool | None
    remission: bool | None
    sustained_remission: bool | None
    relapse_on: date | None
    reliable_change: ReliableChange
    rci: float | None  # rounded to 2 decimals; the verdict uses the unrounded value
    plateau: bool | None
    time_to_response_days: int | None
    explanations: tuple[str, ...]
    citations: tuple[str, ...]
    verified: bool


class DerivedOutcome(BaseModel):
    """A trial outcome read from the scores inside the trial's window."""

    model_config = ConfigDict(frozen=True)

    outcome: Outcome
    instrument: str  # canonical name
    instrument_id: str
    baseline: TrajectoryPoint
    end_point: TrajectoryPoint
    percent_change: float | None  # None when the baseline total is 0
    explanation: str
    citations: tuple[str, ...]
    verified: bool


class _Provenance:
    """The citation keys and verification status of every fact a result used."""

    def __init__(self) -> None:
        self.keys: set[str] = set()
        self.verified = True

    def use(self, source: Sequence[str], verified: bool) -> None:
        self.keys.update(source)
        self.verified = self.verified and verified

    def fact(self, fact: NumberFact) -> float:
        self.use(fact.source, fact.verified)
        return fact.value


def _points(scored: Sequence[ScoredMeasurement], instrument_id: str) -> list[TrajectoryPoint]:
    out: list[TrajectoryPoint] = []
    for s in scored:
        if s.instrument_id == instrument_id and s.score.total is not None:
            out.append(  # built from validated scores: no need to validate again
                TrajectoryPoint.model_construct(
                    date=s.date, total=s.score.total, band=s.score.band, measurement_index=s.index
                )
            )
    out.sort(key=lambda p: (p.date, p.measurement_index))
    return out


def treatment_changes(history: History) -> list[date]:
    """Every date the treatment changed: starts, stops and medication dose steps."""
    dates: set[date] = set()
    for t in history.treatments:
        dates.add(t.start)
        if t.stop is not None:
            dates.add(t.stop)
        if isinstance(t, Medication):
            dates.update(step.from_ for step in t.doses)
    return sorted(dates)


def _reduction_at_least(baseline: float, total: float, fraction: float) -> bool:
    """(baseline − total) / baseline ≥ fraction, without float noise at the boundary."""
    drop, needed = baseline - total, fraction * baseline
    return drop > needed or math.isclose(drop, needed)


def _percent_change(baseline: float, total: float) -> float | None:
    return None if baseline == 0 else round((total - baseline) / baseline * 100, 1)


def _pct(fraction: float) -> str:
    return f"{fraction * 100:g} %"


def _on(p: TrajectoryPoint) -> str:
    band = f", {p.band}" if p.band else ""
    return f"{p.total:g} on {p.date.isoformat()}{band}"


def _s_diff(inst: Instrument) -> float | None:
    rel = inst.reliability
    return None if rel is None else math.sqrt(2) * rel.sd * math.sqrt(1 - rel.r)


def _analyse(
    inst: Instrument,
    points: list[TrajectoryPoint],
    kb: Knowledge,
    changes: list[date],
    plateau_weeks: float | None,
    baseline_rule: str,
) -> Trajectory:
    prov = _Provenance()
    prov.use(inst.source, inst.verified)  # the severity bands
    base, latest = points[0], points[-1]
    name = inst.name
    notes = [f"baseline {_on(base)} ({baseline_rule})"]
    several = len(points) > 1
    pct = _percent_change(base.total, latest.total) if several else None
    if several:
        change = "not computable from a baseline of 0" if pct is None else f"{pct:+.1f} %"
        notes.append(f"latest {_on(latest)}: {change} from baseline")
    else:
        notes.append(f"only one {name} score so far: change cannot be assessed yet")

    # response, remission, sustained remission, relapse, time to response
    response: bool | None = None
    remission: bool | None = None
    sustained: bool | None = None
    relapse_on: date | None = None
    time_to_response: int | None = None
    out = inst.outcomes
    rr = None if out is None else out.response_reduction
    cutoff = None if out is None else out.remission_max_total
    if out is None or (rr is None and cutoff is None):
        notes.append(f"{name} has no response or remission definition in the knowledge base")
    else:
        prov.use(out.source, out.verified)

    def responds(p: TrajectoryPoint) -> bool:
        return rr is not None and base.total > 0 and _reduction_at_least(base.total, p.total, rr)

    if rr is not None and several:
        if base.total == 0:
            notes.append("response: not assessable, the baseline total is 0")
        else:
            response = responds(latest)
            reduction = (base.total - latest.total) / base.total
            notes.append(
                f"response: {'yes' if response else 'no'} — reduction {reduction * 100:.1f} % "
                f"{'≥' if response else '<'} {_pct(rr)}"
            )
            first = next((p for p in points[1:] if responds(p)), None)
            if first is not None:
                time_to_response = (first.date - base.date).days
                notes.append(
                    f"time to response: {time_to_response} days (first responding score "
                    f"{_on(first)})"
                )
    if cutoff is not None:
        remission = latest.total <= cutoff
        notes.append(
            f"remission: {'yes' if remission else 'no'} — latest {latest.total:g} "
            f"{'≤' if remission else '>'} {cutoff:g}"
        )
        needed = int(prov.fact(kb.measurement.sustained_remission_consecutive))
        run = 0
        for p in reversed(points):
            if p.total > cutoff:
                break
            run += 1
        sustained = run >= needed
        notes.append(
            f"sustained remission: {'yes' if sustained else 'no'} — the last {run} "
            f"consecutive score(s) ≤ {cutoff:g} (needs {needed})"
        )
        remitted_on: date | None = None
        regained = False
        for p in points:
            if p.total <= cutoff:
                if remitted_on is None:
                    remitted_on = p.date
                    regained = relapse_on is not None
            elif remitted_on is not None and not responds(p):
                why = ""
                if rr is not None and base.total > 0:
                    below = (base.total - p.total) / base.total * 100
                    why = f", {below:.1f} % below baseline (response needs ≥ {_pct(rr)})"
                notes.append(
                    f"relapse on {p.date.isoformat()}: {p.total:g} > {cutoff:g}{why}, after "
                    f"remission on {remitted_on.isoformat()}"
                )
                relapse_on, remitted_on, regained = p.date, None, False
        if relapse_on is not None and regained:
            notes.append(f"remission regained after the relapse of {relapse_on.isoformat()}")

    # reliable change (Jacobson–Truax) and plateau
    s_diff = _s_diff(inst)
    rci: float | None = None
    reliable: ReliableChange = "not_available"
    plateau: bool | None = None
    if s_diff is None:
        notes.append(f"reliable change: not available — no reliability figures for {name}")
    elif not several:
        notes.append("reliable change: not available — needs two scores")
    else:
        assert inst.reliability is not None  # noqa: S101 - s_diff is None otherwise
        rel = inst.reliability
        prov.use(rel.source, rel.verified)
        z = prov.fact(kb.measurement.reliable_change_z)
        raw = (latest.total - base.total) / s_diff
        rci = round(raw, 2)
        if raw < -z:
            reliable = "improved"
        elif raw > z:
            reliable = "worsened"
        else:
            reliable = "no_reliable_change"
        notes.append(
            f"reliable change: {reliable.replace('_', ' ')} — RCI {raw:+.2f} (S_diff "
            f"{s_diff:.2f} from SD {rel.sd:g}, r {rel.r:g}; reliable when |RCI| > {z:g})"
        )
        plateau, note = _plateau(points, changes, s_diff, z, kb, plateau_weeks, prov)
        notes.append(note)
    if s_diff is not None and not several:
        notes.append("plateau: not assessable with one score")

    return Trajectory(
        instrument=name,
        instrument_id=inst.id,
        points=tuple(points),
        baseline=base,
        latest=latest,
        percent_change=pct,
        response=response,
        remission=remission,
        sustained_remission=sustained,
        relapse_on=relapse_on,
        reliable_change=reliable,
        rci=rci,
        plateau=plateau,
        time_to_response_days=time_to_response,
        explanations=tuple(notes),
        citations=tuple(sorted(prov.keys)),
        verified=prov.verified,
    )


def _plateau(
    points: list[TrajectoryPoint],
    changes: list[date],
    s_diff: float,
    z: float,
    kb: Knowledge,
    plateau_weeks: float | None,
    prov: _Provenance,
) -> tuple[bool | None, str]:
    """No reliable change between any two scores of the latest ``weeks`` of unchanged treatment."""
    if plateau_weeks is None:
        weeks = prov.fact(kb.measurement.plateau_weeks)
        setting = "knowledge-base default"
    else:
        weeks, setting = plateau_weeks, "clinic setting"
    latest = points[-1]
    last_change = max((c for c in changes if c <= latest.date), default=None)
    stretch = [p for p in points if last_change is None or p.date >= last_change]
    span = timedelta(weeks=weeks)
    anchors = [k for k, p in enumerate(stretch) if latest.date - p.date >= span]
    since = "" if last_change is None else f" since the change of {last_change.isoformat()}"
    if not anchors:
        return None, (
            f"plateau: not assessable — the scores under unchanged treatment{since} span less "
            f"than {weeks:g} weeks ({setting})"
        )
    window = stretch[anchors[-1] :]
    totals = [p.total for p in window]
    largest = max(totals) - min(totals)
    plateau = largest / s_diff <= z
    return plateau, (
        f"plateau: {'yes' if plateau else 'no'} — {len(window)} scores from "
        f"{window[0].date.isoformat()} to {latest.date.isoformat()} (≥ {weeks:g} weeks, "
        f"{setting}) under unchanged treatment{since}; largest difference {largest:g} "
        f"{'≤' if plateau else '>'} {z:g} × S_diff = {z * s_diff:.2f}"
    )


def _resolve(kb: Knowledge, instrument_id: str) -> Instrument | None:
    return kb.instruments.get(instrument_id) or kb.resolve_instrument(instrument_id)


def trajectory(
    scored: Sequence[ScoredMeasurement],
    kb: Knowledge,
    instrument_id: str,
    history: History,
    *,
    since: date | None = None,
    plateau_weeks: float | None = None,
) -> Trajectory | None:
    """One instrument's trajectory from the first score on or after ``since`` (a treatment's start,
    the episode's onset; None = the first score ever).

    None when the instrument is unknown, has no total (C-SSRS, ASRS) or has no score in the window.
    ``plateau_weeks`` overrides ``measurement.plateau_weeks``.
    """
    inst = _resolve(kb, instrument_id)
    if inst is None or not inst.scored:
        return None
    points = [p for p in _points(scored, inst.id) if since is None or p.date >= since]
    if not points:
        return None
    rule = (
        f"the first {inst.name} score"
        if since is None
        else f"the first {inst.name} score on or after {since.isoformat()}"
    )
    return _analyse(inst, points, kb, treatment_changes(history), plateau_weeks, rule)


def trajectories(
    history: History,
    scored: Sequence[ScoredMeasurement],
    kb: Knowledge,
    *,
    plateau_weeks: float | None = None,
) -> dict[str, Trajectory]:
    """Every scored instrument's trajectory in the current episode, keyed by canonical name.

    The baseline is the first score on or after the episode's onset; when an instrument has none,
    its first score ever (said so in the explanations).
    """
    onset = history.episode.onset
    changes = treatment_changes(history)
    out: dict[str, Trajectory] = {}
    for inst_id in sorted({s.instrument_id for s in scored if s.score.total is not None}):
        inst = _resolve(kb, inst_id)
        if inst is None or not inst.scored:
            continue
        every = _points(scored, inst.id)
        episode = [p for p in every if p.date >= onset]
        if episode:
            rule = f"the first {inst.name} score on or after the episode onset {onset.isoformat()}"
            t = _analyse(inst, episode, kb, changes, plateau_weeks, rule)
        else:
            rule = (
                f"no {inst.name} score since the episode onset {onset.isoformat()}; the first "
                f"{inst.name} score recorded"
            )
            t = _analyse(inst, every, kb, changes, plateau_weeks, rule)
        out[t.instrument] = t
    return dict(sorted(out.items()))


def _trial_points(
    points: list[TrajectoryPoint], start: date, end: date, days: int
) -> tuple[TrajectoryPoint, TrajectoryPoint, str] | None:
    lookback = add_days(start, -days)
    before = [p for p in points if lookback <= p.date <= start]
    inside = [p for p in points if start < p.date <= end]
    if before:
        base = before[-1]
        rule = f"the last score in the {days} days up to the start"
    elif len(inside) >= 2:
        base, inside = inside[0], inside[1:]
        rule = f"no score in the {days} days up to the start: the first score inside the trial"
    else:
        return None
    if not inside:
        return None
    return base, inside[-1], rule


def derive_trial_outcome(
    scored: Sequence[ScoredMeasurement],
    kb: Knowledge,
    start: date,
    stop: date | None,
    as_of: date,
) -> DerivedOutcome | None:
    """A trial's outcome from its scores, for a trial whose recorded outcome is missing.

    The first instrument of ``TRIAL_OUTCOME_INSTRUMENTS`` with a baseline and a later end-point in
    the trial's window decides; None when no instrument has two such scores.
    """
    grace = kb.measurement.trial_window_grace_days
    end = min(add_days(stop or as_of, grace.value), as_of)
    for inst_id in TRIAL_OUTCOME_INSTRUMENTS:
        inst = kb.instruments.get(inst_id)
        out = None if inst is None else inst.outcomes
        if inst is None or out is None:
            continue
        rr, cutoff = out.response_reduction, out.remission_max_total
        if rr is None or cutoff is None:
            continue
        lookback = kb.measurement.trial_baseline_lookback_days
        found = _trial_points(_points(scored, inst_id), start, end, int(lookback.value))
        if found is None:
            continue
        base, last, baseline_rule = found
        prov = _Provenance()
        prov.use(out.source, out.verified)
        prov.fact(grace)
        prov.fact(lookback)
        b, e = base.total, last.total
        if e <= cutoff:
            outcome, why = Outcome.REMISSION, f"end-point {e:g} ≤ {cutoff:g}"
        elif b > 0 and _reduction_at_least(b, e, rr):
            outcome, why = Outcome.RESPONSE, f"reduction ≥ {_pct(rr)}, end-point > {cutoff:g}"
        else:
            partial = prov.fact(kb.adequacy.partial_response_reduction)
            if b > 0 and _reduction_at_least(b, e, partial):
                outcome = Outcome.PARTIAL_RESPONSE
                why = f"reduction ≥ {_pct(partial)} but < {_pct(rr)}"
            else:
                outcome, why = Outcome.NO_RESPONSE, f"reduction < {_pct(partial)}"
        pct = _percent_change(b, e)
        change = "" if pct is None else f" ({pct:+.1f} %)"
        limit = (
            f"the last score up to {grace.value:g} days after the stop"
            if stop is not None and end < as_of
            else "the last score up to the assessment date"
        )
        explanation = (
            f"derived from {inst.name} scores: baseline {_on(base)} ({baseline_rule}), "
            f"end-point {_on(last)} ({limit}){change}: {outcome.value.replace('_', ' ')} — {why}"
        )
        return DerivedOutcome(
            outcome=outcome,
            instrument=inst.name,
            instrument_id=inst.id,
            baseline=base,
            end_point=last,
            percent_change=pct,
            explanation=explanation,
            citations=tuple(sorted(prov.keys)),
            verified=prov.verified,
        )
    return None
