"""`trdnav synth omop`: synthetic OMOP CDM data with treatment-resistant depression journeys."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from trdnav.errors import InputError


def register(app: typer.Typer) -> None:
    """Add the ``synth`` command group to the main app."""
    synth_app = typer.Typer(help="Synthetic data for testing and benchmarks.", no_args_is_help=True)
    app.add_typer(synth_app, name="synth")

    @synth_app.command("omop")
    def omop_command(
        persons: Annotated[int, typer.Option("--persons", help="number of persons (at least 1)")],
        out: Annotated[Path, typer.Option("--out", help="folder for the Parquet tables")],
        seed: Annotated[int, typer.Option("--seed", help="random seed (same seed, same data)")] = 0,
        chunk_size: Annotated[
            int, typer.Option("--chunk-size", help="persons generated and written at a time")
        ] = 50_000,
        overwrite: Annotated[
            bool, typer.Option("--overwrite", help="replace the generator's files in --out")
        ] = False,
        workers: Annotated[
            int | None,
            typer.Option(
                "--workers",
                help="processes simulating in parallel (default: 2 from 200,000 persons); "
                "the data are the same with any number",
            ),
        ] = None,
    ) -> None:
        """Write synthetic OMOP CDM v5.4 tables (Parquet) with depression journeys, a small
        vocabulary and the ground truth (who is TRD and from when). No real person's data."""
        from trdnav.population.synth import generate_omop

        out_console = Console(soft_wrap=False)
        err = Console(stderr=True, soft_wrap=True, highlight=False)
        progress = Progress(
            TextColumn("[bold]persons"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=True,
        )
        try:
            with progress:
                task = progress.add_task("persons", total=max(persons, 1))
                summary = generate_omop(
                    out,
                    persons,
                    seed,
                    chunk_size,
                    lambda done: progress.update(task, completed=done),
                    overwrite=overwrite,
                    workers=workers,
                )
        except InputError as exc:
            for p in exc.problems:
                err.print(f"[bold red]error[/] {p.render()}", markup=True)
            raise typer.Exit(2) from None
        table = Table(title=f"synthetic OMOP in {summary.out_dir}")
        table.add_column("table")
        table.add_column("rows", justify="right")
        for name, n in summary.rows.items():
            table.add_row(name, f"{n:,}")
        out_console.print(table)
        out_console.print(
            f"{summary.persons:,} persons (seed {summary.seed}) in {summary.seconds:.1f} s: "
            f"{summary.mdd_persons:,} with MDD, {summary.excluded_persons:,} with an exclusion "
            f"diagnosis, {summary.trd_persons:,} TRD in the ground truth (ground_truth.parquet)."
        )
