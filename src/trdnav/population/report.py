"""The attrition report of a cohort run: a Markdown document and a PNG chart.

Pure rendering: the rows come in (step, criterion, persons remaining) and text or an image goes
out. ``trdnav cohort`` writes ``attrition.md``, ``attrition.csv`` and ``attrition.png`` with these.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trdnav.knowledge.population import PhenotypeParameters

NOTICE = (
    "Not a medical device. The cohort lists *candidates* for review by qualified clinicians; "
    "it does not diagnose anyone."
)
UNVERIFIED_NOTE = (
    "A parameter marked *no* under verified is a working convention or a figure not yet "
    "confirmed against its original source; the knowledge base records why it was chosen."
)
CHART_WIDTH_IN = 8.0
CHART_DPI = 100


@dataclass(frozen=True)
class AttritionRow:
    """Persons remaining after one criterion."""

    step: int
    criterion: str
    persons: int


@dataclass(frozen=True)
class ParameterRow:
    """One phenotype parameter as the report shows it."""

    name: str
    value: str
    verified: bool
    sources: tuple[str, ...]


def attrition_rows(attrition: Any) -> list[AttritionRow]:
    """:class:`AttritionRow` s, in step order, from what the phenotype returns.

    Accepts an Ibis or pyarrow table (columns step, criterion, persons), or an iterable of
    mappings, of objects with those attributes, or of ``(step, criterion, persons)`` tuples.
    """
    if hasattr(attrition, "to_pyarrow"):
        attrition = attrition.to_pyarrow()
    if hasattr(attrition, "to_pylist"):
        attrition = attrition.to_pylist()
    rows: list[AttritionRow] = []
    for item in attrition:
        if isinstance(item, AttritionRow):
            rows.append(item)
        elif isinstance(item, Mapping):
            rows.append(
                AttritionRow(int(item["step"]), str(item["criterion"]), int(item["persons"]))
            )
        elif isinstance(item, tuple):
            step, criterion, persons = item
            rows.append(AttritionRow(int(step), str(criterion), int(persons)))
        else:
            rows.append(AttritionRow(int(item.step), str(item.criterion), int(item.persons)))
    return sorted(rows, key=lambda r: r.step)


def _fact_value(fact: Any) -> str:
    if hasattr(fact, "bands"):
        return "; ".join(f"{b.min}–{b.max}: {b.points}" for b in fact.bands)
    value = fact.value
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parameter_rows(parameters: PhenotypeParameters) -> list[ParameterRow]:
    """The phenotype parameters in their file order, each with its value, verified flag, sources."""
    rows: list[ParameterRow] = []
    for name in type(parameters).model_fields:
        fact = getattr(parameters, name)
        rows.append(ParameterRow(name, _fact_value(fact), fact.verified, tuple(fact.source)))
    return rows


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def removed_and_share(rows: Sequence[AttritionRow]) -> list[tuple[int | None, float | None]]:
    """For each row: persons removed by its criterion and % of the previous row (None for the
    first row, and the share when the previous row had nobody)."""
    out: list[tuple[int | None, float | None]] = []
    previous: int | None = None
    for row in rows:
        if previous is None:
            out.append((None, None))
        else:
            share = 100.0 * row.persons / previous if previous else None
            out.append((previous - row.persons, share))
        previous = row.persons
    return out


def format_share(share: float | None) -> str:
    return "—" if share is None else f"{share:.1f} %"


def attrition_markdown(
    rows: Sequence[AttritionRow],
    *,
    kb_version: str,
    parameters: Iterable[ParameterRow],
    source: str | None = None,
    backend: str | None = None,
    generated: str | None = None,
    chart: str | None = "attrition.png",
) -> str:
    """The attrition report as Markdown: the notice, provenance, the table, the parameters."""
    lines = ["# TRD cohort: attrition", "", f"> {NOTICE}", ""]
    if source:
        lines.append(f"- Data: {_cell(source)}")
    if backend:
        lines.append(f"- Backend: {backend}")
    lines.append(f"- Knowledge base: version {kb_version}")
    if generated:
        lines.append(f"- Generated: {generated}")
    if rows:
        lines.append(f"- Cohort: {rows[-1].persons:,} persons")
    lines += [
        "",
        "## Persons remaining after each criterion",
        "",
        "| step | criterion | persons remaining | removed | % of previous |",
        "|---:|---|---:|---:|---:|",
    ]
    for row, (removed, share) in zip(rows, removed_and_share(rows), strict=True):
        removed_text = "—" if removed is None else f"{removed:,}"
        lines.append(
            f"| {row.step} | {_cell(row.criterion)} | {row.persons:,} | {removed_text} "
            f"| {format_share(share)} |"
        )
    if chart:
        lines += ["", f"![Persons remaining after each criterion]({chart})"]
    lines += [
        "",
        "## Parameters",
        "",
        "| parameter | value | verified | sources |",
        "|---|---|---|---|",
    ]
    for p in parameters:
        verified = "yes" if p.verified else "no"
        lines.append(
            f"| {p.name} | {_cell(p.value)} | {verified} | {_cell(', '.join(p.sources))} |"
        )
    lines += ["", UNVERIFIED_NOTE, ""]
    return "\n".join(lines)


def attrition_csv(rows: Sequence[AttritionRow]) -> str:
    """The attrition as CSV (step, criterion, persons, removed, percent_of_previous), for tools."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["step", "criterion", "persons", "removed", "percent_of_previous"])
    for row, (removed, share) in zip(rows, removed_and_share(rows), strict=True):
        writer.writerow(
            [
                row.step,
                row.criterion,
                row.persons,
                "" if removed is None else removed,
                "" if share is None else f"{share:.1f}",
            ]
        )
    return buffer.getvalue()


def attrition_chart(rows: Sequence[AttritionRow], path: Path) -> None:
    """Draw the attrition as horizontal bars (a funnel, first criterion on top) into ``path`` (PNG).

    Matplotlib's Agg canvas, never pyplot; fixed width and dpi, no timestamp in the file.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    height = 1.2 + 0.45 * max(len(rows), 1)
    fig = Figure(figsize=(CHART_WIDTH_IN, height), dpi=CHART_DPI)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    labels = [f"{r.step}. {r.criterion.replace('`', '')}" for r in rows]
    values = [r.persons for r in rows]
    positions = list(range(len(rows)))
    ax.barh(positions, values, color="#3b6ea5", height=0.7)
    ax.set_yticks(positions, labels=labels, fontsize=8)
    ax.invert_yaxis()
    top = max(values, default=0)
    ax.set_xlim(0, top * 1.18 if top else 1)
    for y, value in zip(positions, values, strict=True):
        ax.text(value + top * 0.01, y, f"{value:,}", va="center", fontsize=8)
    ax.set_xlabel("persons remaining")
    ax.set_title("TRD cohort: persons remaining after each criterion", fontsize=10)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, format="png", metadata={"Software": None})
