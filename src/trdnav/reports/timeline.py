"""A patient's treatments on a date axis, as an inline SVG string: one lane per treatment.

Each lane shows the treatment's name and outcome on the left and a bar for its dates: a medication
bar is split into its dose steps (a deeper blue for a higher dose, each step's daily dose written
above it); ECT, rTMS, esketamine, ketamine and psychotherapy courses are single bars with their
session counts. Vertical lines mark the episode onset and the "as of" date.

The SVG is made for a strict Content-Security-Policy: no ``style`` attributes and no ``<style>``
element, only presentation attributes. It carries ``role="img"``, a ``<title>`` and a ``<desc>``
that lists the treatments in words, and a ``viewBox`` with ``width="100%"`` so it scales to its
container. Pure and deterministic: the same input gives the same string.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from xml.sax.saxutils import escape, quoteattr

from trdnav.core.history import History, Medication, Outcome, Treatment
from trdnav.knowledge.load import Knowledge
from trdnav.reports.chart import Span, date_ticks, treatment_span

# Geometry (SVG user units; the drawing scales with its container).
WIDTH = 800
LANE = 46  # height of one treatment lane
BAR = 17  # bar height
TOP = 34  # onset / as-of labels
AXIS = 38  # date labels under the lanes
PAD_RIGHT = 16
FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
NAME_SIZE = 12.5
OUTCOME_SIZE = 11.5
LABEL_SIZE = 11
AXIS_SIZE = 11

INK = "#1e293b"
MUTED = "#475569"
FAINT = "#94a3b8"
GRID = "#e2e8f0"
BAND = "#f8fafc"
# Bar colours by kind: (outline, fill at the lowest dose, fill at the highest dose).
KINDS: dict[str, tuple[str, str, str]] = {
    "antidepressant": ("#2f5f8f", "#dbe6f3", "#7fa3cc"),
    "augmentation": ("#55607a", "#e3e7ef", "#9aa6bf"),
    "ect": ("#3c6670", "#d3e4e6", "#d3e4e6"),
    "rtms": ("#3c6670", "#d3e4e6", "#d3e4e6"),
    "esketamine": ("#3c6670", "#d3e4e6", "#d3e4e6"),
    "ketamine": ("#3c6670", "#d3e4e6", "#d3e4e6"),
    "psychotherapy": ("#5b6b7c", "#e4e9ef", "#e4e9ef"),
}
UNKNOWN_DOSE_FILL = "#f1f5f9"
# Outcome labels: distinct, calm inks (no alarm red; the alerts own red).
OUTCOMES: dict[Outcome, tuple[str, str]] = {
    Outcome.NO_RESPONSE: ("no response", "#8a5a14"),
    Outcome.PARTIAL_RESPONSE: ("partial response", "#475569"),
    Outcome.RESPONSE: ("response", "#1f6b5c"),
    Outcome.REMISSION: ("remission", "#1f6b5c"),
    Outcome.RESPONSE_LOST: ("response lost (tachyphylaxis)", "#8a5a14"),
    Outcome.INTOLERANCE: ("stopped: intolerance", "#9b3d33"),
    Outcome.UNKNOWN: ("outcome not recorded", "#64748b"),
}
EMPTY_TEXT = "No treatments recorded"
_EPOCH = date(1970, 1, 1).toordinal()


@dataclass(frozen=True)
class _Lane:
    name: str
    outcome: str
    colour: str
    span: Span
    note: str  # what is written above the bar of a course (sessions)
    words: str  # the lane in words, for <desc>
    intolerance: bool


@dataclass(frozen=True)
class _Axis:
    lo: float  # first day shown (days since 1970-01-01)
    left: float  # x of ``lo``
    scale: float  # x units per day

    def at(self, day: float) -> float:
        return self.left + (day - self.lo) * self.scale

    def x(self, d: date, end: bool = False) -> float:
        """x of the start of ``d``, or of its end (the next midnight) with ``end``."""
        return self.at(_days(d) + (1 if end else 0))


def _days(d: date) -> float:
    """Days since 1970-01-01, the convention of :func:`~trdnav.reports.chart.date_ticks`."""
    return float(d.toordinal() - _EPOCH)


def _width(text: str, size: float, bold: bool = False) -> float:
    """An estimate of the rendered width of ``text`` (DejaVu Sans is about 0.6 em a letter)."""
    return len(text) * size * (0.64 if bold else 0.6)


def _f(x: float) -> str:
    return f"{x:.1f}"


def _text(
    x: float,
    y: float,
    text: str,
    size: float,
    fill: str = INK,
    anchor: str = "start",
    bold: bool = False,
) -> str:
    weight = ' font-weight="bold"' if bold else ""
    return (
        f'<text x="{_f(x)}" y="{_f(y)}" font-size="{size:g}" fill="{fill}"'
        f' text-anchor="{anchor}"{weight}>{escape(text)}</text>'
    )


def _dose_text(mg: float, unit: str) -> str:
    return f"{mg:g} mg/day" if unit == "mg" else f"{mg:g} {unit}"


def _lane(t: Treatment, kb: Knowledge, as_of: date) -> _Lane:
    span = treatment_span(t, kb, as_of)
    if span.stop < span.start:
        span = replace(span, stop=span.start)
    outcome, colour = OUTCOMES[t.outcome]
    if span.ongoing:
        outcome = "ongoing" if t.outcome == Outcome.UNKNOWN else f"{outcome}, ongoing"
    name, note = span.label, ""
    sessions = getattr(t, "sessions", None)
    if not isinstance(t, Medication) and sessions:
        name = name.replace(f" × {sessions}", "")  # the count goes on the bar instead
        note = f"{sessions} session{'s' if sessions != 1 else ''}"
    stop = "ongoing" if span.ongoing else f"to {span.stop.isoformat()}"
    words = f"{name}: {span.start.isoformat()} {stop}"
    if span.doses:
        words += ", " + " then ".join(_dose_text(mg, span.unit) for _, mg in span.doses)
    if note:
        words += f", {note}"
    words += f", {OUTCOMES[t.outcome][0]}"
    return _Lane(
        name=name,
        outcome=outcome,
        colour=colour,
        span=span,
        note=note,
        words=words,
        intolerance=t.outcome == Outcome.INTOLERANCE,
    )


def _svg_open(height: float, title: str, desc: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {_f(height)}"'
        f' width="100%" role="img" aria-label={quoteattr(title)}'
        f' font-family={quoteattr(FONT)} preserveAspectRatio="xMinYMin meet">',
        f"<title>{escape(title)}</title>",
        f"<desc>{escape(desc)}</desc>",
    ]


def render_timeline_svg(history: History, kb: Knowledge, as_of: date) -> str:
    """The treatments of ``history`` as an SVG document string (see the module docstring).

    ``as_of`` ends ongoing treatments and is marked on the axis; an empty history gives a small
    SVG saying "No treatments recorded".
    """
    title = f"Treatment timeline, patient {history.patient.id}"
    order = sorted(
        range(len(history.treatments)),
        key=lambda i: (
            history.treatments[i].start,
            history.treatments[i].stop or date.max,
            i,
        ),
    )
    lanes = [_lane(history.treatments[i], kb, as_of) for i in order]
    if not lanes:
        parts = _svg_open(48, title, f"{EMPTY_TEXT} for patient {history.patient.id}.")
        parts.append(_text(WIDTH / 2, 29, EMPTY_TEXT, NAME_SIZE, MUTED, anchor="middle"))
        parts.append("</svg>")
        return "\n".join(parts) + "\n"

    onset = history.episode.onset
    first = min([onset, *(lane.span.start for lane in lanes)])
    last = max([as_of, *(lane.span.stop for lane in lanes)])
    pad = max(10.0, (_days(last) - _days(first)) * 0.02)
    lo, hi = _days(first) - pad, _days(last) + 1 + pad
    name_w = max(
        max(_width(lane.name, NAME_SIZE, bold=True) for lane in lanes),
        max(_width(lane.outcome, OUTCOME_SIZE) for lane in lanes),
    )
    left = min(250.0, max(130.0, name_w + 18))
    right = WIDTH - PAD_RIGHT
    axis = _Axis(lo=lo, left=left, scale=(right - left) / (hi - lo))

    height = TOP + len(lanes) * LANE + AXIS
    bottom = TOP + len(lanes) * LANE
    desc = (
        f"{len(lanes)} treatment{'s' if len(lanes) != 1 else ''} from "
        f"{first.isoformat()} to {last.isoformat()}, episode onset {onset.isoformat()}, "
        f"as of {as_of.isoformat()}. " + "; ".join(lane.words for lane in lanes) + "."
    )
    parts = _svg_open(height, title, desc)
    parts.append(f'<rect x="0" y="0" width="{WIDTH}" height="{_f(height)}" fill="#ffffff"/>')

    # Lane bands, grid and date axis.
    for row in range(len(lanes)):
        if row % 2 == 0:
            y = TOP + row * LANE
            parts.append(f'<rect x="0" y="{_f(y)}" width="{WIDTH}" height="{LANE}" fill="{BAND}"/>')
    ticks, labels = date_ticks(lo, hi)
    for tick, label in zip(ticks, labels, strict=True):
        x = axis.at(tick)
        parts.append(
            f'<line x1="{_f(x)}" y1="{TOP}" x2="{_f(x)}" y2="{_f(bottom + 4)}"'
            f' stroke="{GRID}" stroke-width="1"/>'
        )
        for k, line in enumerate(label.split("\n")):
            parts.append(
                _text(
                    x, bottom + 17 + k * 13, line, AXIS_SIZE, MUTED if k == 0 else FAINT, "middle"
                )
            )
    parts.append(
        f'<line x1="{_f(left)}" y1="{_f(bottom)}" x2="{_f(right)}" y2="{_f(bottom)}"'
        f' stroke="{FAINT}" stroke-width="1"/>'
    )
    parts.extend(
        _markers(axis.x(onset), axis.x(as_of, end=True), onset, as_of, left, right, bottom)
    )

    for row, lane in enumerate(lanes):
        parts.extend(_draw_lane(lane, TOP + row * LANE, axis, right))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _markers(
    x_onset: float,
    x_as_of: float,
    onset: date,
    as_of: date,
    left: float,
    right: float,
    bottom: float,
) -> list[str]:
    """Dashed lines at the episode onset and the as-of date, labelled above the lanes."""
    out: list[str] = []
    onset_text = f"episode onset {onset.isoformat()}"
    as_of_text = f"as of {as_of.isoformat()}"
    onset_x = min(max(x_onset, left), right - _width(onset_text, LABEL_SIZE))
    as_of_x = max(x_as_of, left + _width(as_of_text, LABEL_SIZE))
    rows = (14.0, 14.0)
    if onset_x + _width(onset_text, LABEL_SIZE) + 12 > as_of_x - _width(as_of_text, LABEL_SIZE):
        rows = (12.0, 26.0)
    for x in (x_onset, x_as_of):
        out.append(
            f'<line x1="{_f(x)}" y1="{_f(TOP - 4)}" x2="{_f(x)}" y2="{_f(bottom)}"'
            f' stroke="{MUTED}" stroke-width="1" stroke-dasharray="4 3"/>'
        )
    out.append(_text(onset_x, rows[0], onset_text, LABEL_SIZE, MUTED))
    out.append(_text(as_of_x, rows[1], as_of_text, LABEL_SIZE, MUTED, anchor="end"))
    return out


def _segments(
    span: Span, x0: float, x1: float, starts: Sequence[float]
) -> list[tuple[float, float, float | None]]:
    """(start x, end x, dose as a fraction of the top dose; None = dose not recorded yet)."""
    if not span.doses:
        return [(x0, x1, 1.0)]
    top = max(mg for _, mg in span.doses) or 1.0
    steps = [(max(x, x0), mg) for x, (_, mg) in zip(starts, span.doses, strict=True)]
    if steps[0][0] > x0:
        steps.insert(0, (x0, -1.0))
    out: list[tuple[float, float, float | None]] = []
    for k, (sx, mg) in enumerate(steps):
        ex = steps[k + 1][0] if k + 1 < len(steps) else x1
        ex = min(ex, x1)
        if ex > sx:
            out.append((sx, ex, None if mg < 0 else mg / top))
    return out


def _mix(a: str, b: str, t: float) -> str:
    """The colour ``t`` of the way from ``a`` to ``b`` (``#rrggbb``)."""
    ca = [int(a[i : i + 2], 16) for i in (1, 3, 5)]
    cb = [int(b[i : i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(p + (q - p) * t):02x}" for p, q in zip(ca, cb, strict=True))


def _draw_lane(lane: _Lane, y: float, axis: _Axis, right: float) -> list[str]:
    span = lane.span
    outline, light, deep = KINDS[span.kind]
    x0 = axis.x(span.start)
    x1 = max(axis.x(span.stop, end=True), x0 + 2.0)
    bar_y = y + LANE - BAR - 7
    out = [
        '<g class="lane">',
        f"<title>{escape(lane.words)}</title>",
        _text(8, y + 19, lane.name, NAME_SIZE, INK, bold=True),
        _text(8, y + 35, lane.outcome, OUTCOME_SIZE, lane.colour),
    ]
    starts = [axis.x(d) for d, _ in span.doses]
    for sx, ex, frac in _segments(span, x0, x1, starts):
        fill = UNKNOWN_DOSE_FILL if frac is None else _mix(light, deep, frac)
        out.append(
            f'<rect x="{_f(sx)}" y="{_f(bar_y)}" width="{_f(ex - sx)}" height="{BAR}"'
            f' fill="{fill}" stroke="#ffffff" stroke-width="1"/>'
        )
    out.append(
        f'<rect x="{_f(x0)}" y="{_f(bar_y)}" width="{_f(x1 - x0)}" height="{BAR}"'
        f' fill="none" stroke="{outline}" stroke-width="1.2" rx="2"/>'
    )
    if span.ongoing:
        cy = bar_y + BAR / 2
        out.append(
            f'<polygon points="{_f(x1 + 1)},{_f(cy - 6)} {_f(x1 + 8)},{_f(cy)}'
            f' {_f(x1 + 1)},{_f(cy + 6)}" fill="{outline}"/>'
        )
    if lane.intolerance:  # a stop bar at the end, in the outcome's ink
        out.append(
            f'<line x1="{_f(x1)}" y1="{_f(bar_y - 3)}" x2="{_f(x1)}" y2="{_f(bar_y + BAR + 3)}"'
            f' stroke="{lane.colour}" stroke-width="3"/>'
        )
    out.extend(_bar_labels(span, lane.note, x0, x1, starts, bar_y - 4, right))
    out.append("</g>")
    return out


def _bar_labels(
    span: Span,
    note: str,
    x0: float,
    x1: float,
    starts: Sequence[float],
    baseline: float,
    right: float,
) -> list[str]:
    """Dose labels above the bar, each at the start of its step.

    Steps too close together to be labelled apart share one label, ``75 → 225 mg/day``, placed
    at the first of them; the unit is written when there is room before the next label.
    """
    if not span.doses:
        if not note:
            return []
        x = min(x0, right - _width(note, LABEL_SIZE))
        return [_text(max(x, 0.0), baseline, note, LABEL_SIZE, INK)]
    groups: list[tuple[float, list[str]]] = []  # (x, dose values)
    for k, (_, mg) in enumerate(span.doses):
        step_x = max(starts[k], x0)
        if step_x >= x1:
            break
        if groups:
            gx, values = groups[-1]
            if gx + _width(" → ".join(values), LABEL_SIZE) + 8 > step_x:
                values.append(f"{mg:g}")
                continue
        groups.append((step_x, [f"{mg:g}"]))
    unit = "mg/day" if span.unit == "mg" else span.unit
    out: list[str] = []
    for g, (gx, values) in enumerate(groups):
        limit = groups[g + 1][0] - 8 if g + 1 < len(groups) else right + 8
        text = " → ".join(values)
        if gx + _width(f"{text} {unit}", LABEL_SIZE) <= limit or g + 1 == len(groups):
            text = f"{text} {unit}"
        x = max(0.0, min(gx, right + 8 - _width(text, LABEL_SIZE)))
        out.append(_text(x, baseline, text, LABEL_SIZE, INK))
    return out
