"""`trdnav cohort`: find the TRD cohort in OMOP CDM data (DuckDB, PostgreSQL or Spark).

Opens the data (:func:`trdnav.population.backends.open_omop`), checks the tables the phenotype
reads, runs it, and writes the cohort (OMOP cohort layout), the per-person features and the
attrition report (``attrition.md``, ``attrition.csv`` and ``attrition.png``). Every user mistake
— a path or URL that does not open, a missing table or column, a column of the wrong type, an
empty ``person`` table, an output that cannot be written — exits 2 with a message naming it.

A database failure while the phenotype runs (the connection lost, the server ending the session, a
value the database cannot convert) exits 1 with one line naming the step that failed
(:mod:`trdnav.population.failures`), never a traceback. The output files are written under
temporary names next to their final ones and renamed only when every stage has succeeded: a
failed run leaves no new file behind (files of an earlier run are left as they were).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table

from trdnav.errors import InputError, Problem
from trdnav.knowledge.load import default_knowledge
from trdnav.population.failures import StepFailedError, step
from trdnav.population.report import (
    NOTICE,
    AttritionRow,
    attrition_chart,
    attrition_csv,
    attrition_markdown,
    attrition_rows,
    format_share,
    parameter_rows,
    removed_and_share,
)

T = TypeVar("T")
OUTPUT_SUFFIXES = (".parquet", ".csv")
STAGES = (
    "opening the OMOP data",
    "checking tables",
    "running the phenotype",
    "writing the cohort",
    "writing the features",
    "writing the report",
)


class _Failed(Exception):
    """Problems already worth exit 2 (raised inside the progress display, reported after it)."""

    def __init__(self, problems: list[Problem], headline: str | None = None) -> None:
        super().__init__(headline or "")
        self.problems = problems
        self.headline = headline


def _output_problem(option: str, path: Path) -> Problem | None:
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        return Problem(option, "invalid_suffix", f"{path}: expected a .parquet or .csv file name")
    return None


def _prepare_folder(option: str, folder: Path) -> Problem | None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return Problem(option, "unwritable", f"cannot create the folder {folder}: {exc.strerror}")
    if not folder.is_dir():
        return Problem(option, "unwritable", f"{folder} is not a folder")
    return None


def _write_table(table: Any, path: Path, option: str) -> None:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    try:
        if path.suffix.lower() == ".csv":
            pacsv.write_csv(table, str(path))
        else:
            pq.write_table(table, str(path))
    except OSError as exc:
        raise _Failed([Problem(option, "unwritable", f"cannot write {path}: {exc}")]) from None


def cohort_layout(table: Any) -> Any:
    """The cohort in the OMOP ``cohort`` layout: four columns, int64 ids, dates, by subject."""
    import pyarrow as pa

    layout = pa.schema(
        [
            ("cohort_definition_id", pa.int64()),
            ("subject_id", pa.int64()),
            ("cohort_start_date", pa.date32()),
            ("cohort_end_date", pa.date32()),
        ]
    )
    return table.select(layout.names).cast(layout).sort_by([("subject_id", "ascending")])


class _StagedFiles:
    """Output files written under temporary names beside their final ones, then renamed together
    by :meth:`publish`; :meth:`discard` removes those not renamed (a failed run leaves none)."""

    def __init__(self) -> None:
        self.pending: list[tuple[Path, Path, str]] = []  # (temporary, final, option)

    def temporary(self, final: Path, option: str) -> Path:
        # the same suffix: the writers choose the format (Parquet or CSV, PNG) by it
        temporary = final.with_name(f".{final.stem}.partial-{os.getpid()}{final.suffix}")
        self.pending.append((temporary, final, option))
        return temporary

    def publish(self) -> None:
        for _temporary, final, option in self.pending:  # refused before any file is renamed
            if final.is_dir():
                raise _Failed([Problem(option, "unwritable", f"cannot write {final}: a folder")])
        while self.pending:
            temporary, final, option = self.pending[0]
            try:
                os.replace(temporary, final)
            except OSError as exc:
                raise _Failed(
                    [Problem(option, "unwritable", f"cannot write {final}: {exc.strerror}")]
                ) from None
            self.pending.pop(0)

    def discard(self) -> None:
        for temporary, _final, _option in self.pending:
            temporary.unlink(missing_ok=True)
        self.pending.clear()


def _attrition_table(rows: list[AttritionRow]) -> Table:
    table = Table(title="TRD cohort: persons remaining after each criterion", title_justify="left")
    table.add_column("step", justify="right")
    table.add_column("criterion")
    table.add_column("persons remaining", justify="right")
    table.add_column("removed", justify="right")
    table.add_column("% of previous", justify="right")
    for row, (removed, share) in zip(rows, removed_and_share(rows), strict=True):
        table.add_row(
            str(row.step),
            row.criterion,
            f"{row.persons:,}",
            "—" if removed is None else f"{removed:,}",
            format_share(share),
        )
    return table


class _Stages:
    """The stage display: a spinner and bar while a stage runs, a tick and its seconds after."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task(STAGES[0], total=len(STAGES))
        self.seconds: dict[str, float] = {}

    def run(self, stage: str, work: Callable[[], T]) -> T:
        self.progress.update(self.task, description=stage)
        started = time.perf_counter()
        with step(stage):
            result = work()
        elapsed = time.perf_counter() - started
        self.seconds[stage] = elapsed
        self.progress.console.print(f"[green]✓[/] {stage} ({elapsed:.1f} s)")
        self.progress.advance(self.task)
        return result


def register(app: typer.Typer) -> None:
    """Add the ``cohort`` command to the main app."""

    @app.command("cohort")
    def cohort_command(
        omop: Annotated[
            str,
            typer.Option(
                "--omop",
                help="the OMOP data: a Parquet or CSV folder, a DuckDB file, a PostgreSQL URL "
                "(postgresql://user@host:5432/db?schema=omop), spark-local or spark://host:port",
            ),
        ],
        out: Annotated[
            Path, typer.Option("--out", help="the cohort file (.parquet or .csv), OMOP layout")
        ],
        schema: Annotated[
            str | None,
            typer.Option(
                "--schema", help="database schema of the OMOP tables (PostgreSQL, DuckDB)"
            ),
        ] = None,
        omop_path: Annotated[
            Path | None,
            typer.Option("--omop-path", help="Spark: the folder of OMOP Parquet tables"),
        ] = None,
        report: Annotated[
            Path | None,
            typer.Option(
                "--report", help="folder for attrition.md, .csv and .png (default: --out's folder)"
            ),
        ] = None,
        features: Annotated[
            Path | None,
            typer.Option(
                "--features",
                help="the per-person feature file (default: <out stem>_features.parquet)",
            ),
        ] = None,
    ) -> None:
        """Find candidates for treatment-resistant depression in OMOP CDM data, with attrition.

        Not a medical device: the cohort lists candidates for clinician review.
        """
        from trdnav.cli import _report_problems  # cli imports this module: import when run

        features_path = features or out.with_name(f"{out.stem}_features.parquet")
        report_dir = report or out.parent
        problems = [
            p
            for p in (
                _output_problem("--out", out),
                _output_problem("--features", features_path),
                _prepare_folder("--out", out.parent),
                _prepare_folder("--features", features_path.parent),
                _prepare_folder("--report", report_dir),
            )
            if p is not None
        ]
        if features_path.resolve() == out.resolve():
            problems.append(
                Problem("--features", "same_file", f"{features_path} is also the --out file")
            )
        if problems:
            _report_problems(tuple(problems))
            raise typer.Exit(2)

        err = Console(stderr=True, highlight=False, soft_wrap=True)
        stdout = Console(highlight=False, soft_wrap=False)
        try:
            rows, written, description = _run(
                omop, out, features_path, report_dir, schema, omop_path, err
            )
        except InputError as exc:
            _report_problems(exc.problems)
            raise typer.Exit(2) from None
        except _Failed as exc:
            if exc.headline:
                err.print(f"[bold red]{exc.headline}[/]")
            _report_problems(tuple(exc.problems))
            raise typer.Exit(2) from None
        except StepFailedError as exc:
            err.print(
                "[bold red]error[/] "
                + escape(f"the phenotype failed at step {exc.step!r}: {exc.reason}")
            )
            err.print("nothing was written: no cohort, feature or attrition file of this run")
            raise typer.Exit(1) from None

        stdout.print(_attrition_table(rows))
        stdout.print(f"data: {description}", soft_wrap=True)
        for path in written:
            stdout.print(f"wrote {path}", soft_wrap=True)
        stdout.print(NOTICE.replace("*", ""), soft_wrap=True)


def _run(
    omop: str,
    out: Path,
    features_path: Path,
    report_dir: Path,
    schema: str | None,
    omop_path: Path | None,
    err: Console,
) -> tuple[list[AttritionRow], list[Path], str]:
    from trdnav.population.backends import open_omop, quiet_spark_warnings, to_arrow
    from trdnav.population.schema import check_tables, omop_tables

    kb = default_knowledge()
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        transient=True,
    )
    staged = _StagedFiles()
    with progress, contextlib.ExitStack() as stack:
        stack.callback(staged.discard)  # runs last: whatever was not published is removed
        stages = _Stages(progress)
        source = stages.run(
            "opening the OMOP data", lambda: open_omop(omop, omop_path=omop_path, schema=schema)
        )
        stack.callback(source.close)
        if source.backend == "pyspark":
            stack.enter_context(quiet_spark_warnings())

        def check() -> None:
            problems = check_tables(source.tables)
            if problems:
                raise _Failed(
                    problems,
                    f"the OMOP data in {source.description} cannot be used: "
                    f"{len(problems)} problem{'s' if len(problems) != 1 else ''}",
                )
            if source.tables["person"].count().to_pyarrow().as_py() == 0:
                raise _Failed(
                    [
                        Problem(
                            "person",
                            "empty",
                            "the person table is empty: there is nobody to search "
                            f"(in {source.description})",
                        )
                    ]
                )

        stages.run("checking tables", check)

        def phenotype() -> tuple[Any, list[AttritionRow]]:
            from trdnav.population.phenotype import run_phenotype

            result = run_phenotype(omop_tables(source.tables), kb)
            return result, attrition_rows(result.attrition)

        result, rows = stages.run("running the phenotype", phenotype)
        stages.run(
            "writing the cohort",
            lambda: _write_table(
                cohort_layout(to_arrow(result.cohort)), staged.temporary(out, "--out"), "--out"
            ),
        )
        stages.run(
            "writing the features",
            lambda: _write_table(
                to_arrow(result.features, sort_by="subject_id"),
                staged.temporary(features_path, "--features"),
                "--features",
            ),
        )

        def write_report() -> list[Path]:
            md_path = report_dir / "attrition.md"
            png_path = report_dir / "attrition.png"
            csv_path = report_dir / "attrition.csv"
            text = attrition_markdown(
                rows,
                kb_version=kb.kb_version,
                parameters=parameter_rows(kb.population.parameters),
                source=source.description,
                backend=source.backend,
                generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            )
            try:
                staged.temporary(md_path, "--report").write_text(text, encoding="utf-8")
                staged.temporary(csv_path, "--report").write_text(
                    attrition_csv(rows), encoding="utf-8"
                )
                attrition_chart(rows, staged.temporary(png_path, "--report"))
            except OSError as exc:
                raise _Failed(
                    [Problem("--report", "unwritable", f"cannot write the report: {exc}")]
                ) from None
            return [md_path, csv_path, png_path]

        report_paths = stages.run("writing the report", write_report)
        staged.publish()
        description = source.description
    return rows, [out, features_path, *report_paths], description
