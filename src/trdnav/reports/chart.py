"""A patient's scores over time, as a PNG or SVG image: one instrument per chart.

The chart shows the instrument's severity bands (light, ordered colours, labelled on the right), the
totals, the response threshold (baseline × (1 − response reduction); the baseline is the first score
on or after the episode onset, as in :mod:`trdnav.core.trajectory`) and the remission cutoff as
labelled lines, every suicide-risk alert as a red marker on the date axis, and the treatments as
labelled spans in lanes beneath the scores (medications with their dose changes; ECT, rTMS,
esketamine, ketamine and psychotherapy courses).

Pure: :func:`render_chart` takes the history, its scored measurements and alerts, and returns the
image bytes, so the CLI and the web app share it. Matplotlib is used through its non-interactive
Agg canvas (never pyplot, never a GUI). Output is deterministic: fixed width and dpi, a height that
depends only on the number of treatment lanes, the bundled DejaVu Sans font, a fixed SVG hash salt
and no dates in the metadata, so the same input gives byte-identical SVG.
"""

from __future__ import annotations

import io
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Literal

import matplotlib as mpl
from matplotlib import colors as mcolors
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.textpath import TextToPath

from trdnav import __version__
from trdnav.core.alerts import Alert
from trdnav.core.history import (
    Ect,
    Esketamine,
    History,
    Ketamine,
    Medication,
    Outcome,
    Psychotherapy,
    Rtms,
    Treatment,
)
from trdnav.core.measures import ScoredMeasurement
from trdnav.core.trajectory import Trajectory, trajectory
from trdnav.knowledge.load import Knowledge
from trdnav.knowledge.schema import Instrument

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

ChartFormat = Literal["png", "svg"]
FORMATS: tuple[ChartFormat, ...] = ("png", "svg")
FOOTER = "Decision support, not a medical device"
ALERT_LABEL = "suicide-risk alert"
PREFERRED_INSTRUMENT = "phq9"

# Geometry (inches at DPI): the width is fixed, the height grows with the treatment lanes only.
DPI = 110
WIDTH = 12.0
SCORE_HEIGHT = 4.2
LANE_HEIGHT = 0.42
TOP = 1.2  # title, subtitle and legend
BOTTOM = 0.95  # date labels and footer
LEFT = 0.75
RIGHT = 1.85  # band labels
MIN_LANES = 2
GAP = 0.12  # between the score axis and the treatment lanes

INK = "#1f2933"
MUTED = "#52606d"
GRID = "#d9dee3"
ALERT_RED = "#d0021b"
RESPONSE_COLOUR = "#0b6e4f"
REMISSION_COLOUR = "#1d4e89"
SCORE_COLOUR = "#1f2933"
# Treatment kinds: (lane colour, ink for the label).
KIND_COLOURS = {
    "antidepressant": "#4a90d9",
    "augmentation": "#8e6cc8",
    "ect": "#e07b39",
    "rtms": "#d4a017",
    "esketamine": "#2a9d8f",
    "ketamine": "#2a9d8f",
    "psychotherapy": "#5a9e4b",
}
BAND_MAP = "RdYlGn_r"
CAPTION_SIZE = 8.5
BAND_SIZE = 8.5
ALERT_SIZE = 8.0

RC: dict[RcKeyType, object] = {
    "svg.hashsalt": "trdnav-chart",
    "svg.fonttype": "none",  # text stays text: searchable, accessible, testable
    # labels carry text typed by people (patient id, an unlisted drug's name): "$" is a dollar,
    # never the start of TeX (mathtext would render it as maths, or fail on "$x^{$")
    "text.parse_math": False,
    "font.family": "DejaVu Sans",
    "font.size": 9.0,
    "axes.edgecolor": MUTED,
    "axes.labelcolor": INK,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "text.color": INK,
    "path.simplify": False,
}

_OUTCOME_TEXT = {
    Outcome.NO_RESPONSE: "no response",
    Outcome.PARTIAL_RESPONSE: "partial response",
    Outcome.RESPONSE: "response",
    Outcome.REMISSION: "remission",
    Outcome.RESPONSE_LOST: "response lost",
    Outcome.INTOLERANCE: "stopped: intolerance",
    Outcome.UNKNOWN: "",
}
_MODALITY = {
    "cbt": "CBT",
    "cbasp": "CBASP",
    "ipt": "IPT",
    "behavioral_activation": "behavioural activation",
    "dbt": "DBT",
    "psychodynamic": "psychodynamic therapy",
    "mbct": "MBCT",
    "other": "psychotherapy",
}
_RTMS = {
    "10hz": "10 Hz",
    "itbs": "iTBS",
    "accelerated_itbs": "accelerated iTBS",
    "deep_tms": "deep TMS",
    "1hz_right": "1 Hz right",
    "other": "",
}
_LOCK = threading.Lock()
_EPOCH = date(1970, 1, 1).toordinal()
_TEXT = TextToPath()
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_SEVERITY_RANK = {"unassessed": 0, "low": 1, "moderate": 2, "high": 3}


# --- choosing the instrument -------------------------------------------------------------------


def charted_counts(scored: Sequence[ScoredMeasurement]) -> Counter[str]:
    """Instrument id -> number of totals (unscored forms such as the C-SSRS are not charted)."""
    return Counter(s.instrument_id for s in scored if s.score.total is not None)


def default_instrument(scored: Sequence[ScoredMeasurement]) -> str | None:
    """PHQ-9 when the history has PHQ-9 totals, else the instrument with the most totals
    (ties: the alphabetically first name); None when nothing can be charted."""
    counts = charted_counts(scored)
    if not counts:
        return None
    if PREFERRED_INSTRUMENT in counts:
        return PREFERRED_INSTRUMENT
    names = {s.instrument_id: s.instrument for s in scored}
    return min(counts, key=lambda i: (-counts[i], names[i].lower()))


def episode_trajectory(
    history: History, scored: Sequence[ScoredMeasurement], kb: Knowledge, instrument_id: str
) -> tuple[Trajectory | None, bool]:
    """The instrument's trajectory with the baseline the assessment uses: the first score on or
    after the episode onset, else the first score ever. The flag says the latter happened."""
    onset = history.episode.onset
    traj = trajectory(scored, kb, instrument_id, history, since=onset)
    if traj is not None:
        return traj, False
    return trajectory(scored, kb, instrument_id, history), True


def _status(traj: Trajectory) -> str:
    """``−86.4 % from baseline · response · remission (sustained)``; empty with one score."""
    if traj.latest is None or traj.baseline is None or len(traj.points) < 2:
        return ""
    parts = []
    if traj.percent_change is not None:
        parts.append(f"{traj.percent_change:+.1f} % from baseline")
    if traj.response is not None:
        parts.append("response" if traj.response else "no response")
    if traj.remission is not None:
        if traj.remission:
            parts.append("remission (sustained)" if traj.sustained_remission else "remission")
        else:
            parts.append("not in remission")
    return f"latest {traj.latest.total:g}: " + " · ".join(parts)


# --- treatments as spans -----------------------------------------------------------------------


@dataclass(frozen=True)
class Span:
    label: str
    start: date
    stop: date
    kind: str
    ongoing: bool
    doses: tuple[tuple[date, float], ...] = ()  # dose steps (medications)
    unit: str = "mg"


@dataclass
class _Lane:
    spans: list[Span] = field(default_factory=list)
    free_from: float = float("-inf")  # x (days) where the lane is free again


def _medication_span(t: Medication, kb: Knowledge, end: date) -> Span:
    drug = kb.resolve_drug(t.drug)
    name = drug.name if drug is not None else t.drug
    unit = "mg" if drug is None or drug.dose_unit == "mg/day" else drug.dose_unit
    label = f"+ {name}" if t.augments else name
    steps = tuple(sorted((d.from_, d.mg_per_day) for d in t.doses))
    return Span(
        label=label,
        start=t.start,
        stop=t.stop or end,
        kind="augmentation" if t.augments else "antidepressant",
        ongoing=t.stop is None,
        doses=steps,
        unit=unit,
    )


def _sessions(n: int | None) -> str:
    return f" × {n}" if n else ""


def treatment_span(t: Treatment, kb: Knowledge, end: date) -> Span:
    """One treatment as a labelled span; an ongoing one runs to ``end`` (the assessment date)."""
    if isinstance(t, Medication):
        return _medication_span(t, kb, end)
    if isinstance(t, Ect):
        place = "" if t.electrode_placement == "unknown" else t.electrode_placement
        label = f"ECT{_sessions(t.sessions)}" + (f" ({place.replace('_', ' ')})" if place else "")
        kind = "ect"
    elif isinstance(t, Rtms):
        label = " ".join(p for p in ("rTMS", _RTMS[t.protocol]) if p) + _sessions(t.sessions)
        kind = "rtms"
    elif isinstance(t, Esketamine):
        dose = f" ({t.mg_per_session:g} mg)" if t.mg_per_session else ""
        label = f"esketamine{_sessions(t.sessions)}{dose}"
        kind = "esketamine"
    elif isinstance(t, Ketamine):
        label = f"ketamine {t.route.upper() if len(t.route) == 2 else t.route}"
        label += _sessions(t.sessions)
        kind = "ketamine"
    else:
        assert isinstance(t, Psychotherapy)  # noqa: S101 - the union is exhaustive
        label = _MODALITY[t.modality] + _sessions(t.sessions)
        kind = "psychotherapy"
    return Span(label=label, start=t.start, stop=t.stop or end, kind=kind, ongoing=t.stop is None)


def _caption(span: Span, outcome: Outcome) -> str:
    parts = [span.label]
    if span.doses:
        values = [f"{mg:g}" for _, mg in span.doses]
        parts.append("→".join(values) + f" {span.unit}")
    tail = _OUTCOME_TEXT[outcome]
    if span.ongoing:
        tail = f"{tail}, ongoing" if tail else "ongoing"
    text = " ".join(parts)
    return f"{text} · {tail}" if tail else text


def date_ticks(x_lo: float, x_hi: float) -> tuple[list[float], list[str]]:
    """Month (or year) ticks, at most about 12; the year shows on the first tick and in January."""
    lo, hi = _day(x_lo), _day(x_hi)
    months = (hi.year - lo.year) * 12 + hi.month - lo.month + 1
    step = next((m for m in (1, 2, 3, 4, 6, 12) if months / m <= 12), 12 * (months // 120 + 1))
    y, m = lo.year, lo.month
    ticks: list[float] = []
    labels: list[str] = []
    while True:
        d = date(y, m, 1)
        if d > hi:
            break
        if d >= lo and ((m - 1) % step == 0 if step <= 12 else m == 1 and y % (step // 12) == 0):
            first = not ticks
            ticks.append(_num(d))
            if step >= 12:
                labels.append(str(y))
            else:
                labels.append(_MONTHS[m - 1] + (f"\n{y}" if first or m == 1 else ""))
        m += 1
        if m > 12:
            y, m = y + 1, 1
    return ticks, labels


# --- drawing -----------------------------------------------------------------------------------


def _num(d: date) -> float:
    """Days since 1970-01-01: the x coordinate (ticks are labelled here, not by matplotlib)."""
    return float(d.toordinal() - _EPOCH)


def _day(x: float) -> date:
    return date.fromordinal(int(x) + _EPOCH)


def _lighten(colour: str, amount: float) -> tuple[float, float, float]:
    r, g, b = mcolors.to_rgb(colour)
    return (r + (1 - r) * amount, g + (1 - g) * amount, b + (1 - b) * amount)


def _darken(colour: tuple[float, float, float], amount: float) -> tuple[float, float, float]:
    r, g, b = colour
    return (r * (1 - amount), g * (1 - amount), b * (1 - amount))


def _band_colours(n: int) -> list[tuple[float, float, float]]:
    cmap = mpl.colormaps[BAND_MAP]
    if n == 1:
        return [_lighten(mcolors.to_hex(cmap(0.5)), 0.68)]
    return [_lighten(mcolors.to_hex(cmap(0.1 + 0.8 * k / (n - 1))), 0.68) for k in range(n)]


def _text_px(text: str, size: float, bold: bool = False) -> float:
    """Width of ``text`` in pixels at DPI (to lay out captions and labels before drawing)."""
    prop = FontProperties(family="DejaVu Sans", size=size, weight="bold" if bold else "normal")
    w, _, _ = _TEXT.get_text_width_height_descent(text, prop, ismath=False)
    return w * DPI / 72


@dataclass(frozen=True)
class _Placed:
    span: Span
    caption: str
    caption_x: float  # where the caption starts (shifted left when it would leave the chart)


def _pack(
    items: list[tuple[Span, str]],
    x_lo: float,
    x_hi: float,
    x_per_px: float,
) -> list[list[_Placed]]:
    """Greedy lanes: a span goes in the first lane free where its bar or caption begins; a lane is
    busy until the end of the bar or of its caption, whichever is later, plus a small gap."""
    gap = 16 * x_per_px
    placed: list[tuple[float, float, _Placed]] = []
    for span, caption in items:
        x0 = max(_num(span.start), x_lo)
        width = _text_px(caption, CAPTION_SIZE, bold=True) * x_per_px
        cx = max(x_lo, min(x0, x_hi - width - 4 * x_per_px))
        begin = min(x0, cx)
        end = max(min(_num(span.stop) + 1, x_hi), cx + width)
        placed.append((begin, end, _Placed(span, caption, cx)))
    lanes: list[tuple[_Lane, list[_Placed]]] = []
    for begin, end, item in sorted(placed, key=lambda p: (p[0], p[1], p[2].caption)):
        for lane, members in lanes:
            if lane.free_from <= begin:
                lane.free_from = end + gap
                members.append(item)
                break
        else:
            lanes.append((_Lane(free_from=end + gap), [item]))
    return [members for _, members in lanes]


def _band_label(label: str, shown: str) -> tuple[str, float]:
    """Label and font size that fit the right margin: one line, else two lines, else smaller."""
    room = (RIGHT - 0.2) * DPI
    one = f"{label} ({shown})"
    if _text_px(one, BAND_SIZE) <= room:
        return one, BAND_SIZE
    widest = max(_text_px(label, BAND_SIZE), _text_px(f"({shown})", BAND_SIZE))
    return f"{label}\n({shown})", max(6.0, min(BAND_SIZE, BAND_SIZE * room / widest))


def _draw_bands(ax: Axes, inst: Instrument, top: float) -> None:
    """Each band shaded in a light colour, mild to severe, and labelled in the right margin."""
    colours = _band_colours(len(inst.bands))
    for band, colour in zip(inst.bands, colours, strict=True):
        lo = max(inst.total_min, band.min - 0.5)
        hi = min(top, (band.max if band.max is not None else top) + 0.5)
        ax.axhspan(lo, hi, facecolor=colour, edgecolor="none", zorder=0)
        shown = f"{band.min:g}–{band.max:g}" if band.max is not None else f"≥ {band.min:g}"
        text, size = _band_label(band.label, shown)
        ax.text(
            1.012,
            (lo + hi) / 2,
            text,
            transform=ax.get_yaxis_transform(),
            ha="left",
            va="center",
            fontsize=size,
            color=_darken(colour, 0.6),
            bbox={"boxstyle": "round,pad=0.3", "facecolor": colour, "edgecolor": "none"},
            clip_on=False,
        )


def _threshold(ax: Axes, y: float, text: str, colour: str, style: str) -> Line2D:
    line = ax.axhline(y, color=colour, linestyle=style, linewidth=1.4, zorder=2)
    ax.annotate(
        text,
        xy=(0.0, y),
        xycoords=ax.get_yaxis_transform(),
        xytext=(6, 3),
        textcoords="offset points",
        ha="left",
        va="bottom",
        fontsize=8.5,
        color=colour,
        fontweight="bold",
        bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "alpha": 0.8, "edgecolor": "none"},
        zorder=6,
    )
    return line


def _alert_days(alerts: Sequence[Alert]) -> list[tuple[date, str, int]]:
    """One marker per day: the highest severity of that day and the number of alerts."""
    by_day: dict[date, list[Alert]] = {}
    for a in alerts:
        by_day.setdefault(a.date, []).append(a)
    out: list[tuple[date, str, int]] = []
    for day in sorted(by_day):
        worst = max(by_day[day], key=lambda a: _SEVERITY_RANK[a.severity]).severity
        out.append((day, worst, len(by_day[day])))
    return out


def _alert_label(group: list[tuple[date, str, int]]) -> str:
    worst = max(group, key=lambda g: _SEVERITY_RANK[g[1]])[1]
    risk = "risk not yet assessed" if worst == "unassessed" else f"{worst} risk"
    n = sum(g[2] for g in group)
    if len(group) == 1:
        count = f" ({n} alerts)" if n > 1 else ""
        return f"alert {group[0][0].isoformat()}: {risk}{count}"
    first, last = group[0][0].isoformat(), group[-1][0].isoformat()
    return f"{n} alerts {first} to {last}; highest: {risk}"


def _draw_alerts(
    ax: Axes,
    alerts: Sequence[Alert],
    x_hi: float,
    x_per_px: float,
    ymin: float,
) -> None:
    """A red marker on the date axis and a dashed line per alert day; one label per cluster of
    days close enough that their labels would overlap."""
    days = _alert_days(alerts)
    for day, _, _ in days:
        x = _num(day)
        ax.axvline(x, color=ALERT_RED, linewidth=1.0, linestyle=(0, (4, 3)), alpha=0.7, zorder=3)
        ax.plot(
            [x],
            [ymin],
            marker="^",
            markersize=14,
            color=ALERT_RED,
            markeredgecolor="white",
            markeredgewidth=1.2,
            linestyle="none",
            clip_on=False,
            zorder=9,
        )
    groups: list[list[tuple[date, str, int]]] = []
    reach = float("-inf")
    for item in days:
        x = _num(item[0])
        if groups and x <= reach:
            groups[-1].append(item)
        else:
            groups.append([item])
        text_w = _text_px(_alert_label(groups[-1]), ALERT_SIZE, bold=True)
        reach = _num(groups[-1][0][0]) + (text_w + 30) * x_per_px
    for group in groups:
        text = _alert_label(group)
        x = _num(group[0][0])
        w = _text_px(text, ALERT_SIZE, bold=True) * x_per_px
        right = x + w + 10 * x_per_px > x_hi
        ax.annotate(
            text,
            xy=(_num(group[-1][0]) if right else x, ymin),
            xytext=(-8 if right else 8, 9),
            textcoords="offset points",
            ha="right" if right else "left",
            va="bottom",
            fontsize=ALERT_SIZE,
            color=ALERT_RED,
            fontweight="bold",
            bbox={"boxstyle": "round,pad=0.25", "facecolor": "white", "alpha": 0.9, "ec": "none"},
            zorder=9,
        )


def _draw_lanes(
    ax: Axes,
    lanes: list[list[_Placed]],
    x_lo: float,
    x_hi: float,
    x_per_px: float,
) -> None:
    bar_h = 0.42
    for row, members in enumerate(lanes):
        for item in members:
            span = item.span
            base = KIND_COLOURS[span.kind]
            x0, x1 = max(_num(span.start), x_lo), min(_num(span.stop) + 1, x_hi)
            y = row + 0.9 - bar_h  # bars sit low in the lane, the caption above them
            segments: list[tuple[float, float, float | None]] = []
            if span.doses:
                top_dose = max(mg for _, mg in span.doses) or 1.0
                steps = [(max(_num(d), x0), mg) for d, mg in span.doses]
                if steps[0][0] > x0:
                    steps.insert(0, (x0, -1.0))
                for k, (sx, mg) in enumerate(steps):
                    ex = steps[k + 1][0] if k + 1 < len(steps) else x1
                    if ex > sx:
                        segments.append((sx, ex, None if mg < 0 else mg / top_dose))
            else:
                segments.append((x0, x1, 1.0))
            for sx, ex, frac in segments:
                shade = 0.85 if frac is None else 0.6 * (1 - frac)
                ax.add_patch(
                    Rectangle(
                        (sx, y),
                        ex - sx,
                        bar_h,
                        facecolor=_lighten(base, shade),
                        edgecolor="white",
                        linewidth=1.0,
                        zorder=2,
                    )
                )
            ax.add_patch(
                Rectangle(
                    (x0, y), x1 - x0, bar_h, fill=False, edgecolor=base, linewidth=1.0, zorder=3
                )
            )
            if span.doses:
                for d, mg in span.doses:
                    dx = _num(d)
                    if not x0 <= dx < x1:
                        continue
                    seg_end = next((_num(e) for e, _ in span.doses if _num(e) > dx), x1)
                    text = f"{mg:g}"
                    if (min(seg_end, x1) - dx) / x_per_px >= _text_px(text, 7.5) + 6:
                        ax.text(
                            dx + 3 * x_per_px,
                            y + bar_h / 2,
                            text,
                            ha="left",
                            va="center",
                            fontsize=7.5,
                            color=INK,
                            zorder=4,
                        )
            if span.ongoing:
                ax.plot(
                    [x1],
                    [y + bar_h / 2],
                    marker=">",
                    markersize=7,
                    color=base,
                    clip_on=False,
                    zorder=4,
                    linestyle="none",
                )
            ax.text(
                item.caption_x,
                y - 0.06,
                item.caption,
                ha="left",
                va="bottom",
                fontsize=CAPTION_SIZE,
                color=_darken(mcolors.to_rgb(base), 0.45),
                fontweight="bold",
                zorder=4,
            )


def render_chart(
    history: History,
    scored: Sequence[ScoredMeasurement],
    alerts: Sequence[Alert],
    kb: Knowledge,
    instrument_id: str,
    fmt: ChartFormat,
) -> bytes:
    """The chart of ``instrument_id`` as PNG or SVG bytes.

    ``scored`` and ``alerts`` are :func:`~trdnav.core.measures.score_measurements` and
    :func:`~trdnav.core.alerts.suicide_alerts` of ``history``. Raises ``ValueError`` for an unknown
    format or instrument, or when the history has no total of that instrument.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown chart format {fmt!r}; expected one of {', '.join(FORMATS)}")
    inst = kb.instruments.get(instrument_id)
    if inst is None:
        raise ValueError(f"unknown instrument id {instrument_id!r}")
    rows = [s for s in scored if s.instrument_id == instrument_id and s.score.total is not None]
    if not rows:
        raise ValueError(f"no {inst.name} totals to chart")
    with _LOCK, mpl.rc_context(RC):  # rc settings are process-wide: one chart at a time
        fig = _figure(history, rows, alerts, kb, inst)
        buf = io.BytesIO()
        metadata = {"Date": None} if fmt == "svg" else {"Software": None}
        fig.savefig(buf, format=fmt, dpi=DPI, metadata=metadata)
    return buf.getvalue()


def _figure(
    history: History,
    rows: list[ScoredMeasurement],
    alerts: Sequence[Alert],
    kb: Knowledge,
    inst: Instrument,
) -> Figure:
    as_of = history.assessed_on or rows[-1].date
    onset = history.episode.onset
    first = min([onset, rows[0].date, *(a.date for a in alerts)])
    last = max([as_of, rows[-1].date, *(a.date for a in alerts)])
    pad = max(7.0, (last - first).days * 0.015)
    x_lo, x_hi = _num(first) - pad, _num(last) + pad
    plot_w_px = (WIDTH - LEFT - RIGHT) * DPI
    x_per_px = (x_hi - x_lo) / plot_w_px

    spans: list[tuple[Span, str]] = []
    hidden = 0
    for t in history.treatments:
        span = treatment_span(t, kb, as_of)
        if _num(span.stop) + 1 < x_lo or _num(span.start) > x_hi:
            hidden += 1
            continue
        caption = _caption(span, t.outcome)
        if _num(span.start) < x_lo:
            caption += f" · since {span.start.isoformat()}"
        spans.append((span, caption))
    lanes = _pack(spans, x_lo, x_hi, x_per_px)
    lane_count = max(MIN_LANES, len(lanes))

    height = TOP + SCORE_HEIGHT + GAP + lane_count * LANE_HEIGHT + BOTTOM
    fig = Figure(figsize=(WIDTH, height), dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)
    left, right = LEFT / WIDTH, 1 - RIGHT / WIDTH
    score_bottom = (BOTTOM + lane_count * LANE_HEIGHT + GAP) / height
    ax = fig.add_axes((left, score_bottom, right - left, SCORE_HEIGHT / height))
    lane_ax = fig.add_axes(
        (left, BOTTOM / height, right - left, lane_count * LANE_HEIGHT / height), sharex=ax
    )

    top = inst.total_max if inst.total_max is not None else max(s.score.total or 0 for s in rows)
    ymin = inst.total_min
    ax.set_ylim(ymin, top + 0.5)
    ax.set_xlim(x_lo, x_hi)
    _draw_bands(ax, inst, top + 0.5)
    ax.set_ylabel(f"{inst.name} total ({inst.total_min:g}–{top:g})")
    ax.yaxis.set_major_locator(mpl.ticker.MaxNLocator(nbins=6, integer=True))
    ax.grid(axis="x", color=GRID, linewidth=0.8, zorder=1)
    ax.tick_params(axis="x", labelbottom=False, length=0)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)

    xs = [_num(s.date) for s in rows]
    ys = [float(s.score.total or 0) for s in rows]
    handles: list[Line2D] = []
    (score_line,) = ax.plot(
        xs,
        ys,
        color=SCORE_COLOUR,
        linewidth=1.8,
        marker="o",
        markersize=5.5,
        markerfacecolor="white",
        markeredgewidth=1.6,
        zorder=5,
        label=f"{inst.name} total",
    )
    handles.append(score_line)
    for x, y in zip(xs, ys, strict=True):
        ax.annotate(
            f"{y:g}",
            xy=(x, y),
            xytext=(0, 7),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=8,
            color=INK,
            zorder=6,
            path_effects=[patheffects.withStroke(linewidth=2.5, foreground="white")],
        )
    prorated = [(x, y) for s, x, y in zip(rows, xs, ys, strict=True) if s.score.prorated]
    if prorated:
        (ring,) = ax.plot(
            [x for x, _ in prorated],
            [y for _, y in prorated],
            marker="o",
            markersize=10,
            fillstyle="none",
            color=MUTED,
            linestyle="none",
            zorder=5,
            label="prorated total (an item missing)",
        )
        handles.append(ring)

    outcomes = inst.outcomes
    traj, before_onset = episode_trajectory(history, rows, kb, inst.id)
    base = None if traj is None else traj.baseline
    if base is not None:
        b_total = base.total
        which = "first score; none since the episode onset" if before_onset else "baseline"
        if outcomes is not None and outcomes.response_reduction is not None and b_total > 0:
            threshold = b_total * (1 - outcomes.response_reduction)
            pct = f"{outcomes.response_reduction * 100:g} %"
            handles.append(
                _threshold(
                    ax,
                    threshold,
                    f"response ≤ {threshold:g}  ({pct} below {which} {b_total:g} on "
                    f"{base.date.isoformat()})",
                    RESPONSE_COLOUR,
                    "--",
                )
            )
            handles[-1].set_label("response threshold")
        (marker,) = ax.plot(
            [_num(base.date)],
            [b_total],
            marker="s",
            markersize=10,
            fillstyle="none",
            color=RESPONSE_COLOUR,
            markeredgewidth=1.6,
            linestyle="none",
            zorder=6,
            label="baseline",
        )
        handles.insert(1, marker)
    if outcomes is not None and outcomes.remission_max_total is not None:
        handles.append(
            _threshold(
                ax,
                outcomes.remission_max_total,
                f"remission ≤ {outcomes.remission_max_total:g}",
                REMISSION_COLOUR,
                ":",
            )
        )
        handles[-1].set_label("remission cutoff")

    if alerts:
        _draw_alerts(ax, alerts, x_hi, x_per_px, ymin)
        flagged = {a.measurement_index for a in alerts if a.route == "suicide_item"}
        for s, x, y in zip(rows, xs, ys, strict=True):
            if s.index in flagged:
                ax.plot(
                    [x],
                    [y],
                    marker="o",
                    markersize=11,
                    fillstyle="none",
                    color=ALERT_RED,
                    markeredgewidth=1.8,
                    linestyle="none",
                    zorder=6,
                )
        handles.append(
            Line2D(
                [],
                [],
                marker="^",
                markersize=11,
                color=ALERT_RED,
                markeredgecolor="white",
                linestyle="none",
                label=ALERT_LABEL,
            )
        )

    # Treatment lanes.
    spare = (lane_count - len(lanes)) / 2  # few lanes: centred in the lane area
    lane_ax.set_ylim(len(lanes) + spare, -spare)
    lane_ax.set_yticks([])
    lane_ax.set_ylabel("treatments", fontsize=8.5)
    for side in ("top", "right", "left"):
        lane_ax.spines[side].set_visible(False)
    lane_ax.grid(axis="x", color=GRID, linewidth=0.8, zorder=0)
    ticks, labels = date_ticks(x_lo, x_hi)
    lane_ax.set_xticks(ticks, labels)
    lane_ax.set_xlim(x_lo, x_hi)
    if spans:
        _draw_lanes(lane_ax, lanes, x_lo, x_hi, x_per_px)
    else:
        lane_ax.text(
            0.01,
            0.5,
            "no treatments recorded in this period",
            transform=lane_ax.transAxes,
            va="center",
            color=MUTED,
            fontsize=8.5,
        )

    # Title, legend, footer.
    x_left = LEFT / WIDTH
    fig.text(
        x_left,
        1 - 0.4 / height,
        f"Patient {history.patient.id} · {inst.name} ({inst.full_name})",
        ha="left",
        va="baseline",
        fontsize=13,
        fontweight="bold",
    )
    span_text = (
        f"{len(rows)} score{'s' if len(rows) != 1 else ''} from {rows[0].date.isoformat()} "
        f"to {rows[-1].date.isoformat()} · episode onset {onset.isoformat()} · "
        f"as of {as_of.isoformat()}"
    )
    fig.text(x_left, 1 - 0.64 / height, span_text, ha="left", va="baseline", color=MUTED)
    status = "" if traj is None else _status(traj)
    if status:
        good = traj is not None and bool(traj.remission or traj.response)
        fig.text(
            1 - 0.15 / WIDTH,
            1 - 0.64 / height,
            status,
            ha="right",
            va="baseline",
            fontsize=9.5,
            fontweight="bold",
            color=RESPONSE_COLOUR if good else INK,
        )
    fig.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(x_left - 0.01, 1 - 0.76 / height),
        ncol=len(handles),
        frameon=False,
        fontsize=8.5,
        handlelength=2.4,
        columnspacing=2.0,
        borderaxespad=0,
    )
    sources = sorted({*inst.source, *(outcomes.source if outcomes else ())})
    verified = inst.verified and (outcomes is None or outcomes.verified)
    fig.text(
        x_left,
        0.3 / height,
        FOOTER,
        ha="left",
        va="bottom",
        fontsize=9,
        fontweight="bold",
        color=MUTED,
    )
    fig.text(
        1 - 0.15 / WIDTH,
        0.3 / height,
        f"TRD Navigator {__version__} · knowledge base {kb.kb_version}",
        ha="right",
        va="bottom",
        fontsize=8,
        color=MUTED,
    )
    note = f" · {hidden} earlier treatment(s) not shown" if hidden else ""
    fig.text(
        x_left,
        0.1 / height,
        f"Bands and thresholds: {', '.join(sources)}"
        + ("" if verified else " (UNVERIFIED)")
        + note,
        ha="left",
        va="bottom",
        fontsize=7.5,
        color=MUTED,
    )
    return fig
