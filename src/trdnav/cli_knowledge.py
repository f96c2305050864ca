"""`trdnav knowledge stats` and `trdnav knowledge docs`: how much of the knowledge base is
verified, and the Markdown written for clinical review (docs/knowledge, with review.md)."""

from __future__ import annotations

import json
import sys
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.console import Console
from rich.table import Table

from trdnav.knowledge.load import default_knowledge
from trdnav.knowledge.stats import KnowledgeStats, Tally, TargetCheck, Weight, knowledge_stats

SHOWN_UNVERIFIED = 20


def write_knowledge_docs(out_dir: Path) -> None:
    """Write every generated knowledge document into ``out_dir``, one line per file written."""
    from trdnav.knowledge.docs import all_documents

    out_dir.mkdir(parents=True, exist_ok=True)
    for name, text in all_documents(default_knowledge()).items():
        (out_dir / name).write_text(text, encoding="utf-8")
        sys.stdout.write(f"wrote {out_dir / name}\n")


def _table(title: str, first: str, rows: dict[str, Tally]) -> Table:
    t = Table(title=title, title_justify="left")
    t.add_column(first)
    for col in ("verified", "total", "%"):
        t.add_column(col, justify="right")
    for name, tally in rows.items():
        t.add_row(name, str(tally.verified), str(tally.total), f"{tally.percent:.1f}")
    return t


def _figure(name: str, tally: Tally, check: TargetCheck) -> str:
    met = "[green]met[/]" if check.met else "[bold red]not met[/]"
    return (
        f"{name}: {tally.verified} of {tally.total} facts verified ({tally.percent:.1f} %) — "
        f"target ≥ {check.target_percent:g} %: {met}"
    )


def verification_gaps() -> dict[str, str]:
    """Why each area is below target (knowledge/data/verification_gaps.yaml): area -> reason."""
    path = resources.files("trdnav.knowledge") / "data" / "verification_gaps.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    areas = raw.get("areas") or {}
    return {str(k): str(v) for k, v in areas.items()}


def render_stats(
    stats: KnowledgeStats, console: Console, show_all: bool, gaps: dict[str, str] | None = None
) -> None:
    """The per-area and per-weight tables, the two target figures, why each area below the
    overall target is there, and the unverified facts."""
    console.print(_table(f"Knowledge base {stats.kb_version}: facts by area", "area", stats.areas))
    weights = {Weight(w).label: t for w, t in stats.weights.items()}
    console.print(_table("Facts by clinical weight", "weight", weights))
    console.print(_figure("Overall", stats.overall, stats.targets["overall"]))
    console.print(
        _figure(
            "Safety rules and doses",
            stats.safety_rules_and_doses,
            stats.targets["safety_rules_and_doses"],
        )
    )
    below = [
        area
        for area, tally in stats.areas.items()
        if tally.percent < stats.targets["overall"].target_percent
    ]
    if below and gaps is not None:
        console.print("\nWhy not, per area below the overall target:")
        for area in below:
            reason = gaps.get(area, "no reason recorded in verification_gaps.yaml")
            console.print(f"  {area}: {reason}", markup=False)
    missing = len(stats.verified_without_checked_against)
    if missing:
        console.print(
            f"[bold red]{missing} verified facts do not say where they were checked[/] "
            "(checked_against is empty)"
        )
    shown = stats.unverified if show_all else stats.unverified[:SHOWN_UNVERIFIED]
    if not shown:
        return
    console.print(f"\nUnverified facts ({len(stats.unverified)}), most clinically weighty first:")
    for f in shown:
        console.print(f"  {f.weight.label:<19} {f.path} — {f.label}", markup=False)
    rest = len(stats.unverified) - len(shown)
    if rest:
        console.print(
            f"  … and {rest} more (--all, --json, or docs/knowledge/review.md)", markup=False
        )


def register(app: typer.Typer) -> None:
    """Add the ``knowledge`` command group to the main app."""
    knowledge_app = typer.Typer(
        help="The knowledge base: verification figures and review documents.",
        no_args_is_help=True,
    )
    app.add_typer(knowledge_app, name="knowledge")

    @knowledge_app.command("stats")
    def stats_command(
        as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
        show_all: Annotated[
            bool, typer.Option("--all", help="list every unverified fact, not the first 20")
        ] = False,
    ) -> None:
        """Verified facts per area and clinical weight, against the targets.

        Targets: ≥ 75 % of facts verified overall, ≥ 90 % of safety rules and doses. Lists the
        unverified facts, most clinically weighty first. A report: the exit code is 0 whether
        or not the targets are met."""
        stats = knowledge_stats(default_knowledge())
        gaps = verification_gaps()
        if as_json:
            data = stats.model_dump(mode="json")
            data["gaps"] = {a: r for a, r in gaps.items() if a in stats.areas}
            sys.stdout.write(json.dumps(data, indent=2) + "\n")
            return
        render_stats(stats, Console(soft_wrap=False), show_all, gaps)

    @knowledge_app.command("docs")
    def docs_command(
        out_dir: Annotated[
            Path, typer.Option("--out", help="folder for the Markdown files")
        ] = Path("docs/knowledge"),
    ) -> None:
        """Write the knowledge base as Markdown for clinical review, with review.md.

        review.md is the checklist of every fact a clinician reviewer signs off line by line."""
        write_knowledge_docs(out_dir)
