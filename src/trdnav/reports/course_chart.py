"""One course on a date axis, as an inline SVG string: the patient's scores across the sessions.

The plot shows the scores of one instrument (PHQ-9 by default; MADRS or QIDS when asked, or when
there is no PHQ-9) from the course baseline on, a vertical marker per session record (given =
solid, deferred = red dashed and labelled "deferred", missed = grey, cancelled = grey dotted) and
a faint dotted marker per planned session not yet recorded, the protocol's phases as bands
(induction, maintenance, ...), a review point as a diamond, the response threshold (the
instrument's response reduction below the course baseline, the baseline being the last score on
or before the first session given) and the instrument's remission cutoff from the knowledge base,
and suicide-risk alerts as red triangles with their dates. With no scores yet it still draws the
sessions and phases and says that no scores are recorded.

Made for a strict Content-Security-Policy like :mod:`trdnav.reports.timeline`: presentation
attributes only (no ``style`` attribute, no ``<style>`` element), ``role="img"``, ``<title>`` and
a ``<desc>`` that says the course in words, a ``viewBox`` and ``width="100%"``. Pure and
deterministic: the same input gives the same string; every text is escaped.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from xml.sax.saxutils import escape

from trdnav.core.alerts import Alert, suicide_alerts
from trdnav.core.courses.model import Course, SessionRecord
from trdnav.core.courses.results import PlannedSession
from trdnav.core.history import History
from trdnav.core.measures import ScoredMeasurement, score_measurements
from trdnav.knowledge.load import Knowledge
from trdnav.knowledge.schema import Instrument
from trdnav.reports.timeline import FAINT, GRID, INK, MUTED, WIDTH, _f, _svg_open, _text, _width

DEFAULT_INSTRUMENTS = ("phq9", "madrs", "qids_sr16")  # the first with scores is charted

# Geometry (SVG user units).
TOP = 46  # phase labels and review diamonds above the plot
PLOT = 210  # plot height
AXIS = 34  # date labels under the plot
LEGEND = 26
LEFT = 40
RIGHT = WIDTH - 14
SMALL = 10
LABEL = 11

SCORE = "#1e3a5f"
GIVEN = "#3c6670"
DEFERRED = "#b91c1c"
MISSED = "#94a3b8"
PLANNED = "#cbd5e1"
RESPONSE = "#1f6b5c"
REMISSION = "#2f5f8f"
ALERT = "#a3161a"
PHASE_FILLS = ("#eef3f7", "#f5f1e8", "#eef5f0", "#f3eef5")
STATUS_WORDS = {
    "done": "given",
    "deferred": "deferred",
    "missed": "missed",
    "cancelled": "cancelled",
}


@dataclass(frozen=True)
class CourseScores:
    """The charted instrument's scores of a course, from its baseline on."""

    instrument: Instrument
    baseline: ScoredMeasurement | None
    scores: tuple[ScoredMeasurement, ...]  # baseline first, then every later score
    first_session: date | None
    response_reduction: float | None  # the instrument's fraction below baseline for a response
    response_at: float | None  # score at or below which the course counts as a response
    remission_at: float | None  # score at or below which it counts as a remission
    verified: bool  # the instrument's outcome definitions are confirmed in their source
    citations: tuple[str, ...]


def first_session_date(course: Course, planned: Sequence[PlannedSession] = ()) -> date | None:
    """The first session given, else the first planned session, else None."""
    given = [r.on for r in course.sessions if r.status == "done"]
    if given:
        return min(given)
    if planned:
        return min(p.on for p in planned)
    return None


def choose_instrument(
    history: History, kb: Knowledge, instrument: str | None = None
) -> Instrument | None:
    """``instrument`` resolved in the knowledge base, else the first of PHQ-9, MADRS, QIDS-SR16
    with a score in the history, else PHQ-9 (None only for an unknown name)."""
    if instrument is not None:
        return kb.resolve_instrument(instrument)
    ids = {s.instrument_id for s in score_measurements(history, kb) if s.score.total is not None}
    for inst_id in DEFAULT_INSTRUMENTS:
        if inst_id in ids:
            return kb.instruments[inst_id]
    return kb.instruments.get(DEFAULT_INSTRUMENTS[0])


def course_scores(
    course: Course,
    history: History,
    kb: Knowledge,
    inst: Instrument,
    planned: Sequence[PlannedSession] = (),
) -> CourseScores:
    """The baseline (the last score on or before the first session), the scores from it on, and
    the response and remission thresholds of ``inst`` (knowledge, never hard-coded)."""
    scored = [
        s
        for s in score_measurements(history, kb)
        if s.instrument_id == inst.id and s.score.total is not None
    ]
    first = first_session_date(course, planned)
    anchor = first or course.start
    before = [s for s in scored if s.date <= anchor]
    baseline = before[-1] if before else None
    # No baseline: every score is after the first session (there is none on or before it).
    shown = (
        scored if baseline is None else [baseline, *(s for s in scored if s.date > baseline.date)]
    )
    out = inst.outcomes
    response_at = remission_at = None
    if out is not None:
        if out.response_reduction is not None and baseline is not None:
            total = baseline.score.total or 0.0
            response_at = total * (1 - out.response_reduction)
        remission_at = out.remission_max_total
    return CourseScores(
        instrument=inst,
        baseline=baseline,
        scores=tuple(shown),
        first_session=first,
        response_reduction=out.response_reduction if out is not None else None,
        response_at=response_at,
        remission_at=remission_at,
        verified=out.verified if out is not None else False,
        citations=out.source if out is not None else inst.source,
    )


# --- axes ---------------------------------------------------------------------------------------

_MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()


@dataclass(frozen=True)
class _Axes:
    lo: date  # first day shown
    days: int  # days shown
    top: float
    bottom: float
    y_max: float

    def x(self, d: date, frac: float = 0.0) -> float:
        """x of the start of ``d`` plus ``frac`` of a day."""
        return LEFT + ((d - self.lo).days + frac) * (RIGHT - LEFT) / self.days

    @property
    def day_width(self) -> float:
        return (RIGHT - LEFT) / self.days

    def y(self, value: float) -> float:
        return self.bottom - value / self.y_max * (self.bottom - self.top)


def _week_ticks(lo: date, days: int) -> list[date]:
    """Mondays, every 1, 2 or 4 weeks so that there are at most about 12."""
    step = next((w for w in (1, 2, 4, 8) if days / (7 * w) <= 12), 13)
    first = lo + timedelta(days=(7 - lo.weekday()) % 7)
    return [
        first + timedelta(weeks=k)
        for k in range(0, days // 7 + 1, step)
        if first + timedelta(weeks=k) < lo + timedelta(days=days)
    ]


def _y_step(y_max: float) -> float:
    return next(s for s in (1, 2, 5, 10, 20, 50) if y_max / s <= 7)


def _line(
    x1: float, y1: float, x2: float, y2: float, colour: str, width: float = 1.0, dash: str = ""
) -> str:
    dashed = f' stroke-dasharray="{dash}"' if dash else ""
    return (
        f'<line x1="{_f(x1)}" y1="{_f(y1)}" x2="{_f(x2)}" y2="{_f(y2)}"'
        f' stroke="{colour}" stroke-width="{width:g}"{dashed}/>'
    )


# --- the chart ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Marker:
    number: int
    on: date
    status: str  # done / deferred / missed / cancelled / planned
    slot: int  # position among the markers of its day
    of: int  # markers on that day


def _markers(course: Course, planned: Sequence[PlannedSession]) -> list[_Marker]:
    """One marker per session record, and one per planned session not yet fulfilled (a session
    only deferred is still to come on its planned date, if that is after the deferral)."""
    items: list[tuple[date, int, str]] = [(r.on, r.number, r.status) for r in course.sessions]
    records: dict[int, list[SessionRecord]] = {}
    for r in course.sessions:
        records.setdefault(r.number, []).append(r)
    for p in planned:
        own = records.get(p.number, [])
        if any(r.status != "deferred" for r in own):
            continue
        if own and p.on <= max(r.on for r in own):
            continue
        items.append((p.on, p.number, "planned"))
    items.sort()
    per_day: dict[date, int] = {}
    for on, _, _ in items:
        per_day[on] = per_day.get(on, 0) + 1
    seen: dict[date, int] = {}
    out = []
    for on, number, status in items:
        slot = seen.get(on, 0)
        seen[on] = slot + 1
        out.append(_Marker(number, on, status, slot, per_day[on]))
    return out


def _phases(
    planned: Sequence[PlannedSession], labels: Mapping[str, str]
) -> list[tuple[str, date, date]]:
    """(label, first day, day after the last) of each run of sessions in one phase."""
    runs: list[tuple[str, date, date]] = []
    for p in sorted(planned, key=lambda p: (p.on, p.number)):
        label = labels.get(p.phase, p.phase.replace("_", " "))
        if runs and runs[-1][0] == label:
            runs[-1] = (label, runs[-1][1], p.on + timedelta(days=1))
        else:
            runs.append((label, p.on, p.on + timedelta(days=1)))
    # A band reaches to the start of the next one.
    return [
        (label, start, runs[k + 1][1] if k + 1 < len(runs) else stop)
        for k, (label, start, stop) in enumerate(runs)
    ]


def _fit(text: str, width: float, size: float) -> str:
    """``text``, shortened with an ellipsis to fit ``width`` (empty when nothing fits)."""
    if _width(text, size) <= width:
        return text
    n = int(width / (size * 0.6)) - 1
    return text[:n].rstrip() + "…" if n >= 3 else ""


def draw_course_chart(
    course: Course,
    history: History,
    kb: Knowledge,
    planned: Sequence[PlannedSession],
    phase_labels: Mapping[str, str] | None = None,
    instrument: str | None = None,
    course_label: str | None = None,
) -> str:
    """The chart (see the module docstring) from the course's planned sessions, as given by
    :func:`trdnav.core.courses.schedule.planned_sessions`; ``phase_labels`` maps a phase id to its
    label (else the id is written in words)."""
    inst = choose_instrument(history, kb, instrument)
    if inst is None:
        raise ValueError(f"instrument: {instrument!r} is not an instrument of the knowledge base")
    cs = course_scores(course, history, kb, inst, planned)
    markers = _markers(course, planned)
    scored = score_measurements(history, kb)
    name = inst.name
    what = course_label or f"{course.treatment} course {course.id}"
    title = f"{name} across the {what}, patient {course.patient_id}"

    # The window: from the baseline (or the course start) to the last session, score or alert.
    start = min([course.start, *(m.on for m in markers)])
    if cs.baseline is not None:
        start = min(start, cs.baseline.date)
    stop = max([start, *(m.on for m in markers), *(s.date for s in cs.scores)])
    alerts = sorted(
        (a for a in suicide_alerts(history, scored, kb) if a.date >= start),
        key=lambda a: (a.date, a.route, a.message),
    )
    stop = max([stop, *(a.date for a in alerts)])
    span = (stop - start).days + 1
    pad = max(2, round(span * 0.03))
    lo = start - timedelta(days=pad)
    days = span + 2 * pad
    y_max = inst.total_max or max([10.0, *((s.score.total or 0.0) for s in cs.scores)])
    ax = _Axes(lo=lo, days=days, top=TOP, bottom=TOP + PLOT, y_max=y_max)
    height = TOP + PLOT + AXIS + LEGEND

    parts = _svg_open(height, title, _describe(course, cs, markers, alerts, what))
    parts.append(f'<rect x="0" y="0" width="{WIDTH}" height="{_f(height)}" fill="#ffffff"/>')
    parts.extend(_draw_phases(ax, _phases(planned, phase_labels or {})))
    parts.extend(_draw_grid(ax, inst))
    parts.extend(_draw_thresholds(ax, cs))
    parts.extend(_draw_markers(ax, markers, planned))
    parts.extend(_draw_scores(ax, cs))
    parts.extend(_draw_alerts(ax, alerts))
    parts.extend(_draw_legend(height, cs, markers, bool(alerts)))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _score_text(s: ScoredMeasurement) -> str:
    return f"{s.score.total:g} on {s.date.isoformat()}"


def _describe(
    course: Course,
    cs: CourseScores,
    markers: Sequence[_Marker],
    alerts: Sequence[Alert],
    what: str,
) -> str:
    name = cs.instrument.name
    words: list[str] = []
    counts: dict[str, list[str]] = {}
    for m in markers:
        counts.setdefault(m.status, []).append(f"{m.number} ({m.on.isoformat()})")
    recorded = [m for m in markers if m.status != "planned"]
    words.append(
        f"{len(recorded)} session{'s' if len(recorded) != 1 else ''} recorded"
        + "".join(
            f"; {STATUS_WORDS[k]}: {', '.join(counts[k])}" for k in STATUS_WORDS if k in counts
        )
        + (f"; planned: {', '.join(counts['planned'])}" if "planned" in counts else "")
        + "."
    )
    if cs.baseline is None:
        words.append(f"No {name} score on or before the first session (no baseline).")
    else:
        words.append(f"Baseline {name} {_score_text(cs.baseline)}.")
    later = cs.scores[1:] if cs.baseline is not None else cs.scores
    if later:
        words.append("Later scores: " + ", ".join(_score_text(s) for s in later) + ".")
    elif cs.baseline is not None:
        words.append("No later scores yet.")
    if cs.response_at is not None:
        words.append(f"Response at or below {cs.response_at:g}.")
    if cs.remission_at is not None:
        words.append(f"Remission at or below {cs.remission_at:g}.")
    if not cs.verified:
        words.append("These thresholds are unverified.")
    for a in alerts:
        words.append(f"Suicide-risk alert: {a.message}.")
    return f"{name} scores across the {what}. " + " ".join(words)


def _draw_phases(ax: _Axes, phases: Sequence[tuple[str, date, date]]) -> list[str]:
    out: list[str] = []
    for k, (label, start, stop) in enumerate(phases):
        x0, x1 = ax.x(start), min(ax.x(stop), RIGHT)
        out.append(
            f'<rect class="phase" x="{_f(x0)}" y="{_f(ax.top)}" width="{_f(max(x1 - x0, 1.0))}"'
            f' height="{_f(ax.bottom - ax.top)}" fill="{PHASE_FILLS[k % len(PHASE_FILLS)]}"/>'
        )
        shown = _fit(label, x1 - x0 - 6, LABEL)
        if shown:
            out.append(_text(x0 + 4, ax.top - 24, shown, LABEL, MUTED, bold=True))
        if k:
            out.append(_line(x0, ax.top - 34, x0, ax.top, FAINT))
    return out


def _draw_grid(ax: _Axes, inst: Instrument) -> list[str]:
    out: list[str] = []
    step = _y_step(ax.y_max)
    value = 0.0
    while value <= ax.y_max + 1e-9:
        y = ax.y(value)
        out.append(_line(LEFT, y, RIGHT, y, GRID))
        out.append(_text(LEFT - 5, y + 4, f"{value:g}", SMALL, MUTED, anchor="end"))
        value += step
    out.append(_line(LEFT, ax.bottom, RIGHT, ax.bottom, FAINT))
    out.append(_text(LEFT - 30, ax.top - 6, inst.name, SMALL, MUTED))
    ticks = _week_ticks(ax.lo, ax.days)
    for k, d in enumerate(ticks):
        x = ax.x(d)
        out.append(_line(x, ax.bottom, x, ax.bottom + 4, FAINT))
        label = f"{d.day} {_MONTHS[d.month - 1]}"
        out.append(_text(x, ax.bottom + 16, label, SMALL, MUTED, anchor="middle"))
        if k == 0 or (d.month == 1 and d.day <= 7):
            out.append(_text(x, ax.bottom + 28, str(d.year), SMALL, FAINT, anchor="middle"))
    return out


def _draw_thresholds(ax: _Axes, cs: CourseScores) -> list[str]:
    out: list[str] = []
    unverified = "" if cs.verified else " (unverified)"
    lines: list[tuple[float, str, str, str]] = []
    if cs.response_at is not None and cs.baseline is not None and cs.response_reduction:
        base = cs.baseline.score.total or 0.0
        pct = f"{cs.response_reduction * 100:g} %"
        lines.append(
            (
                cs.response_at,
                f"response ≤ {cs.response_at:g} ({pct} below baseline {base:g}){unverified}",
                RESPONSE,
                "6 3",
            )
        )
    if cs.remission_at is not None:
        lines.append(
            (cs.remission_at, f"remission ≤ {cs.remission_at:g}{unverified}", REMISSION, "2 3")
        )
    previous: float | None = None
    for value, label, colour, dash in sorted(lines, key=lambda t: -t[0]):
        y = ax.y(value)
        below = previous is not None and y - previous <= 14  # too close: write it under
        text = _text(LEFT + 4, y + 12 if below else y - 4, label, SMALL, colour)
        out.append(f'<g class="threshold">{_line(LEFT, y, RIGHT, y, colour, 1.3, dash)}{text}</g>')
        previous = y
    return out


_MARKER_LOOK = {  # status -> (colour, width, dash)
    "done": (GIVEN, 1.6, ""),
    "deferred": (DEFERRED, 1.6, "5 3"),
    "missed": (MISSED, 1.6, ""),
    "cancelled": (MISSED, 1.2, "1 3"),
    "planned": (PLANNED, 1.2, "2 3"),
}


def _draw_markers(
    ax: _Axes, markers: Sequence[_Marker], planned: Sequence[PlannedSession]
) -> list[str]:
    out: list[str] = []
    reviews = {p.number: p.review for p in planned if p.review}
    # Number the sessions under the plot when there is room, else every n-th.
    gap = min(
        (ax.day_width / m.of for m in markers),
        default=ax.day_width,
    )
    every = next((n for n in (1, 2, 5, 10, 20, 50) if gap * n >= 13), 100)
    for m in markers:
        colour, width, dash = _MARKER_LOOK[m.status]
        x = ax.x(m.on, (m.slot + 0.5) / m.of)
        words = f"session {m.number} on {m.on.isoformat()}: {STATUS_WORDS.get(m.status, 'planned')}"
        out.append(f'<g class="session session-{m.status}" data-session="{m.number}">')
        out.append(f"<title>{escape(words)}</title>")
        out.append(_line(x, ax.top, x, ax.bottom, colour, width, dash))
        if m.status == "deferred":
            out.append(
                f'<text x="{_f(x - 3)}" y="{_f(ax.top + 4)}" font-size="{SMALL}" fill="{DEFERRED}"'
                f' text-anchor="end" transform="rotate(-90 {_f(x - 3)} {_f(ax.top + 4)})"'
                f">deferred</text>"
            )
        if m.number % every == 0 or m.number == 1:
            ink = MUTED if m.status != "planned" else FAINT
            out.append(_text(x, ax.bottom - 4, str(m.number), 9, ink, anchor="middle"))
        out.append("</g>")
        if m.number in reviews and m.status in ("planned", "done"):
            review = f"review at session {m.number}: {reviews[m.number]}"
            y = ax.top - 8
            out.append(
                f'<g class="review"><title>{escape(review)}</title>'
                f'<polygon points="{_f(x)},{_f(y - 5)} {_f(x + 5)},{_f(y)} {_f(x)},{_f(y + 5)}'
                f' {_f(x - 5)},{_f(y)}" fill="{INK}"/>'
                f"{_text(x + 8, y + 4, 'review', SMALL, INK)}</g>"
            )
    return out


def _draw_scores(ax: _Axes, cs: CourseScores) -> list[str]:
    out: list[str] = []
    name = cs.instrument.name
    if not cs.scores:
        out.append(
            _text(
                (LEFT + RIGHT) / 2,
                (ax.top + ax.bottom) / 2,
                f"No {name} scores recorded yet",
                LABEL + 1,
                MUTED,
                anchor="middle",
            )
        )
        return out
    points = [(ax.x(s.date, 0.5), ax.y(s.score.total or 0.0), s) for s in cs.scores]
    if len(points) > 1:
        path = " ".join(f"{_f(x)},{_f(y)}" for x, y, _ in points)
        out.append(f'<polyline points="{path}" fill="none" stroke="{SCORE}" stroke-width="2"/>')
    for k, (x, y, s) in enumerate(points):
        base = k == 0 and cs.baseline is not None
        words = f"{name} {s.score.total:g} on {s.date.isoformat()}" + (
            " (baseline)" if base else ""
        )
        signal = bool(s.score.suicide_signal)
        out.append(f'<g class="score{" baseline" if base else ""}"><title>{escape(words)}</title>')
        out.append(
            f'<circle cx="{_f(x)}" cy="{_f(y)}" r="{4.5 if base else 3.5}"'
            f' fill="{"#ffffff" if base else SCORE}" stroke="{ALERT if signal else SCORE}"'
            f' stroke-width="{2.5 if signal else 1.8}"/>'
        )
        label_y = y - 8 if y - 8 > ax.top + 10 else y + 16
        out.append(_text(x, label_y, f"{s.score.total:g}", SMALL, INK, anchor="middle", bold=base))
        out.append("</g>")
    return out


def _draw_alerts(ax: _Axes, alerts: Sequence[Alert]) -> list[str]:
    out: list[str] = []
    for a in alerts:
        on = a.date
        x = ax.x(on, 0.5)
        y = ax.top + 8
        words = f"suicide-risk alert on {on.isoformat()}: {a.message}"
        out.append(
            f'<g class="suicide-alert"><title>{escape(words)}</title>'
            f'<polygon points="{_f(x)},{_f(y - 6)} {_f(x + 6)},{_f(y + 5)} {_f(x - 6)},{_f(y + 5)}"'
            f' fill="{ALERT}"/>'
            f"{_text(x + 8, y + 5, 'suicide risk', SMALL, ALERT, bold=True)}</g>"
        )
    return out


def _draw_legend(
    height: float, cs: CourseScores, markers: Sequence[_Marker], alerts: bool
) -> list[str]:
    y = height - 9
    statuses = {m.status for m in markers}
    x: float = LEFT
    out: list[str] = ['<g class="legend">']

    def entry(symbol: str, label: str) -> None:
        nonlocal x
        out.append(f'<g transform="translate({_f(x)} {_f(y)})">{symbol}')
        out.append(_text(16, 4, label, SMALL, MUTED) + "</g>")
        x += 24 + _width(label, SMALL)

    if cs.scores:
        entry(
            _line(0, 0, 12, 0, SCORE, 2) + f'<circle cx="6" cy="0" r="3" fill="{SCORE}"/>',
            f"{cs.instrument.name} (open circle: baseline)" if cs.baseline else cs.instrument.name,
        )
    for status in ("done", "deferred", "missed", "cancelled", "planned"):
        if status in statuses:
            colour, width, dash = _MARKER_LOOK[status]
            entry(
                _line(6, -7, 6, 7, colour, width, dash),
                f"session {STATUS_WORDS.get(status, 'planned')}",
            )
    if alerts:
        entry(f'<polygon points="6,-6 12,5 0,5" fill="{ALERT}"/>', "suicide-risk alert")
    out.append("</g>")
    return out


def _engine(name: str) -> Any:
    """A module of the course engine (``trdnav.core.courses.<name>``), imported when first used."""
    return importlib.import_module(f"trdnav.core.courses.{name}")


def render_course_chart_svg(
    course: Course,
    history: History,
    kb: Knowledge,
    protocol: Any,
    calendar: Any = None,
    instrument: str | None = None,
) -> str:
    """The course chart (see the module docstring): the schedule is
    :func:`trdnav.core.courses.schedule.planned_sessions` of ``protocol`` and ``course`` with
    ``calendar`` (default: open Monday to Friday, no closed dates); phases are labelled with the
    protocol's phase names. Raises ValueError for an ``instrument`` the knowledge base lacks."""
    schedule = _engine("schedule")
    if calendar is None:
        calendar = schedule.ClinicCalendar(
            open_weekdays=frozenset(range(5)), closed_dates=frozenset()
        )
    planned: list[PlannedSession] = list(schedule.planned_sessions(protocol, course, calendar))
    labels = {
        str(getattr(ph, "id", "")): str(getattr(ph, "name", getattr(ph, "id", "")))
        for ph in getattr(protocol, "phases", ())
    }
    return draw_course_chart(
        course,
        history,
        kb,
        planned,
        labels,
        instrument=instrument,
        course_label=getattr(protocol, "name", None),
    )
