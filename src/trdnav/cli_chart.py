"""`trdnav chart`: one instrument's scores over time, with bands, thresholds, alerts and treatments.

Only the command lives here; the drawing is :func:`trdnav.reports.chart.render_chart`.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from trdnav.core.alerts import suicide_alerts
from trdnav.core.measures import score_measurements
from trdnav.errors import InputError, Problem
from trdnav.history_files import load_history
from trdnav.knowledge.load import default_knowledge


def _report(problems: list[Problem]) -> None:
    from trdnav.cli import _report_problems  # cli imports this module: import when run

    _report_problems(tuple(problems))


def register(app: typer.Typer) -> None:
    """Add the chart command to ``app``."""

    @app.command("chart")
    def chart_command(
        file: Annotated[Path, typer.Argument(help="a history file (YAML or JSON)")],
        out_path: Annotated[
            Path, typer.Option("--out", help="the image to write: a .png or .svg file name")
        ],
        instrument: Annotated[
            str | None,
            typer.Option(
                help="the instrument to chart (default: PHQ-9 if present, else the one with the "
                "most scores)"
            ),
        ] = None,
        today: Annotated[
            str | None,
            typer.Option(help="the date used when the file has no assessed_on (YYYY-MM-DD)"),
        ] = None,
    ) -> None:
        """Chart one instrument's scores over time: severity bands, response and remission lines,
        suicide-risk alerts and the treatments beneath (PNG or SVG)."""
        # matplotlib loads only when a chart is drawn, not with every command
        from trdnav.reports.chart import FORMATS, charted_counts, default_instrument, render_chart

        kb = default_knowledge()
        bad: list[Problem] = []
        as_of = date.today()
        if today is not None:
            try:
                as_of = date.fromisoformat(today)
            except ValueError:
                bad.append(
                    Problem("--today", "invalid_date", f"expected YYYY-MM-DD, got {today!r}")
                )
        fmt = out_path.suffix.lower().lstrip(".")
        if fmt not in FORMATS:
            bad.append(
                Problem(
                    "--out",
                    "unsupported_format",
                    f"expected a file name ending in .png or .svg, got {str(out_path)!r}",
                )
            )
        elif not out_path.parent.is_dir():
            bad.append(
                Problem(
                    "--out",
                    "folder_missing",
                    f"the folder {str(out_path.parent)!r} does not exist",
                )
            )
        requested = None
        if instrument is not None:
            requested = kb.resolve_instrument(instrument)
            if requested is None:
                near = kb.closest_instrument_names(instrument)
                hint = f"; did you mean {' or '.join(repr(n) for n in near)}?" if near else ""
                bad.append(
                    Problem(
                        "--instrument",
                        "unknown_instrument",
                        f"unknown instrument {instrument!r}{hint} "
                        "(`trdnav instruments` lists them)",
                    )
                )
            elif not requested.scored:
                bad.append(
                    Problem(
                        "--instrument",
                        "instrument_not_scored",
                        f"{requested.name} has no total score to chart; its answers are shown "
                        "by `trdnav assess`",
                    )
                )
        if bad:
            _report(bad)
            raise typer.Exit(2)

        try:
            history = load_history(file, kb, as_of)
        except InputError as exc:
            _report(list(exc.problems))
            raise typer.Exit(2) from None
        scored = score_measurements(history, kb)
        counts = charted_counts(scored)
        names = {s.instrument_id: s.instrument for s in scored}
        have = ", ".join(f"{names[i]} ({n})" for i, n in sorted(counts.items()))
        inst_id = requested.id if requested is not None else default_instrument(scored)
        if inst_id is None:
            _report(
                [
                    Problem(
                        "measurements",
                        "no_scores",
                        "no scored measurements to chart: a chart needs at least one "
                        "rating-scale total (e.g. PHQ-9)",
                        str(file),
                    )
                ]
            )
            raise typer.Exit(2)
        if inst_id not in counts:
            assert requested is not None  # noqa: S101 - the default is always charted
            _report(
                [
                    Problem(
                        "measurements",
                        "no_scores",
                        f"no {requested.name} scores to chart; the file has {have}",
                        str(file),
                    )
                ]
            )
            raise typer.Exit(2)
        image = render_chart(
            history,
            scored,
            suicide_alerts(history, scored, kb),
            kb,
            inst_id,
            "png" if fmt == "png" else "svg",
        )
        try:
            out_path.write_bytes(image)
        except OSError as exc:
            _report([Problem("--out", "file_unwritable", f"cannot write file: {exc.strerror}")])
            raise typer.Exit(2) from None
        others = [f"{names[i]} ({n})" for i, n in sorted(counts.items()) if i != inst_id]
        more = f"; other instruments (--instrument): {', '.join(others)}" if others else ""
        sys.stdout.write(f"wrote {out_path} ({names[inst_id]}, {counts[inst_id]} scores){more}\n")
