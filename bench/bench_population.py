"""Benchmark: the population TRD phenotype on DuckDB, synthetic OMOP sets of 100k and 1M persons.

For each size, a synthetic OMOP set (``trdnav.population.synth.generate_omop``, seed 7) is built
once and cached under ``$TRDNAV_BENCH_DIR`` (default: ``trdnav-bench-population`` in the temporary
directory); a manifest with a digest of the generator's code and the knowledge base decides whether
it can be reused. Then, each in its own process (peak memory is the process's maximum resident
set, read with ``wait4``):

- **phenotype**: what ``trdnav cohort`` does on DuckDB — open the Parquet folder, check the tables,
  run the phenotype, write the cohort and the features as Parquet, compute the attrition — with
  DuckDB limited to 2 threads (``SET threads=2``);
- **floor**: one DuckDB pass over the six ``drug_exposure`` columns the phenotype reads, grouped
  per person and drug (the grouping eras start from), kept inside DuckDB: no phenotype does less;
- **pandas** (on the smallest set, 100k): the same definition in plain pandas
  (``bench/population_pandas.py``), its cohort compared row by row with the phenotype's; both
  are scored against the ground truth.

Targets (issue 7): 1,000,000 persons in at most 60 s end to end (the whole process, imports
included) with peak memory under 4 GB; 1M/100k time no worse than 12×. Prints a table; exits 1 if
a target is missed, so that ``make bench`` makes a regression visible. ``TRDNAV_BENCH_10M=1`` adds
10,000,000 persons (reported, no target). Options: ``--sizes``, ``--rebuild``, ``--no-pandas``,
``--json PATH`` (docs/benchmarks-population.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CACHE = Path(
    os.environ.get("TRDNAV_BENCH_DIR") or Path(tempfile.gettempdir()) / "trdnav-bench-population"
)
SEED = 7
THREADS = 2
SIZES = [100_000, 1_000_000]
SIZE_10M = 10_000_000
TARGET_SIZE = 1_000_000
TARGET_SECONDS = 60.0
TARGET_PEAK_MB = 4_000.0
TARGET_SCALING = 12.0
FLOOR_RUNS = 3
PHENOTYPE_RUNS = 2  # the faster of two runs (a shared machine's load moves single runs)
TILE_FACTOR = SIZE_10M // TARGET_SIZE
PERSON_TABLES = (
    "person",
    "observation_period",
    "condition_occurrence",
    "drug_exposure",
    "procedure_occurrence",
    "measurement",
    "ground_truth",
)
DE_COLUMNS = (
    "person_id",
    "drug_concept_id",
    "drug_exposure_start_date",
    "drug_exposure_end_date",
    "quantity",
    "days_supply",
)
GENERATOR_SOURCES = ("src/trdnav/population/synth",)
RESULT_PREFIX = "RESULT "


# ---------------------------------------------------------------------------------------------
# workers: each runs in its own process and prints one RESULT line of JSON


def _worker_generate(out: Path, persons: int) -> dict[str, Any]:
    from trdnav.population.synth import generate_omop

    t0 = time.perf_counter()
    generate_omop(out, persons, SEED, overwrite=True, workers=THREADS)
    return {"seconds": time.perf_counter() - t0}


def _worker_phenotype(omop: Path, out: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    import pyarrow.parquet as pq

    from trdnav.errors import InputError
    from trdnav.knowledge.load import default_knowledge
    from trdnav.population.backends import open_omop
    from trdnav.population.phenotype import run_phenotype
    from trdnav.population.schema import check_tables, omop_tables

    kb = default_knowledge()
    t_import = time.perf_counter() - t0
    t1 = time.perf_counter()
    source = open_omop(str(omop))
    source.con.raw_sql(f"SET threads={THREADS}")
    tables = source.tables
    problems = check_tables(tables)
    if problems:
        raise InputError(problems)
    result = run_phenotype(omop_tables(tables), kb)
    cohort = result.cohort.to_pyarrow()
    pq.write_table(cohort, out / "cohort.parquet")
    features = result.features.to_pyarrow()
    pq.write_table(features, out / "features.parquet")
    attrition = result.attrition
    rows = attrition.to_pyarrow().to_pylist() if hasattr(attrition, "to_pyarrow") else attrition
    work = time.perf_counter() - t1
    return {
        "seconds": work,
        "import_seconds": t_import,
        "cohort": cohort.num_rows,
        "features": features.num_rows,
        "attrition": [_plain(r) for r in rows],
    }


def _plain(row: Any) -> Any:
    if isinstance(row, dict):
        return {k: _plain(v) for k, v in row.items()}
    if isinstance(row, tuple | list):
        return [_plain(v) for v in row]
    if isinstance(row, int | float | str) or row is None:
        return row
    return str(row)


def floor_sql(path: Path) -> str:
    cols = ", ".join(DE_COLUMNS)
    return (
        "CREATE OR REPLACE TEMP TABLE floor AS "  # noqa: S608 - the path is our own cache's
        "SELECT person_id, drug_concept_id, min(drug_exposure_start_date) AS first_start, "
        "max(drug_exposure_end_date) AS last_end, sum(quantity) AS quantity, "
        "sum(days_supply) AS days_supply, count(*) AS exposures "
        f"FROM (SELECT {cols} FROM read_parquet('{path}')) "
        "GROUP BY person_id, drug_concept_id"
    )


def _worker_floor(omop: Path) -> dict[str, Any]:
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads={THREADS}")
    sql = floor_sql(omop / "drug_exposure.parquet")
    best = float("inf")
    for _ in range(FLOOR_RUNS):
        t0 = time.perf_counter()
        con.execute(sql)
        best = min(best, time.perf_counter() - t0)
    row = con.execute("SELECT count(*), sum(exposures) FROM floor").fetchone()
    assert row is not None  # noqa: S101 - an aggregate always returns a row
    return {"seconds": best, "groups": int(row[0]), "exposures": int(row[1] or 0)}


def _worker_tile(source: Path, factor: int, folder: Path) -> dict[str, Any]:
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads={THREADS}")
    for path in sorted(source.glob("*.parquet")):
        name = path.stem
        if name not in PERSON_TABLES:
            shutil.copyfile(path, folder / path.name)
            continue
        columns = [
            r[0]
            for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()  # noqa: S608
        ]
        shifted = sorted({"person_id", *([f"{name}_id"] if f"{name}_id" in columns else [])})
        spans = {
            c: con.execute(f"SELECT max({c}) FROM read_parquet('{path}')").fetchone()[0]  # noqa: S608
            for c in shifted
        }
        replace = ", ".join(f"{c} + k * {spans[c]} AS {c}" for c in shifted)
        con.execute(
            f"COPY (SELECT * REPLACE ({replace}) FROM range({factor}) t(k), "  # noqa: S608
            f"read_parquet('{path}')) TO '{folder / path.name}' (FORMAT parquet)"
        )
    return {"tables": len(list(folder.glob("*.parquet")))}


def _worker_agreement(omop: Path, cohort: Path, pandas_cohort: Path | None) -> dict[str, Any]:
    out: dict[str, Any] = {"agreement": agreement(cohort, omop)}
    if pandas_cohort is not None:
        out["pandas_agreement"] = agreement(pandas_cohort, omop)
        out["comparison"] = compare_cohorts(cohort, pandas_cohort)
    return out


def worker_main(argv: list[str]) -> int:
    kind, omop = argv[0], Path(argv[1])
    if kind == "generate":
        result = _worker_generate(omop, int(argv[2]))
    elif kind == "phenotype":
        result = _worker_phenotype(omop, Path(argv[2]))
    elif kind == "floor":
        result = _worker_floor(omop)
    elif kind == "tile":
        result = _worker_tile(omop, int(argv[2]), Path(argv[3]))
    elif kind == "agreement":
        result = _worker_agreement(omop, Path(argv[2]), Path(argv[3]) if len(argv) > 3 else None)
    else:
        raise SystemExit(f"unknown worker {kind!r}")
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


# ---------------------------------------------------------------------------------------------
# the parent: runs each worker as a child process and reads its figures


@dataclass(frozen=True)
class Run:
    figures: dict[str, Any]
    wall_seconds: float
    peak_mb: float
    output: str


def _on_cores(n: int) -> None:
    """Keep the calling (child) process on ``n`` CPUs, so it cannot use more than ``n`` cores."""
    os.sched_setaffinity(0, set(sorted(os.sched_getaffinity(0))[:n]))


def run_child(
    args: list[str], timeout: float, *, cores: int | None = None, result: bool = True
) -> Run:
    """Run a Python child; its wall time, its own peak RSS (``wait4``) and its RESULT line
    (required when ``result``). ``cores``: the CPUs the child may run on."""
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and script
        [sys.executable, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env=env,
        preexec_fn=None if cores is None else lambda: _on_cores(cores),
    )
    assert proc.stdout is not None  # noqa: S101
    chunks: list[str] = []
    reader = threading.Thread(target=lambda: chunks.append(proc.stdout.read()), daemon=True)
    reader.start()
    deadline = t0 + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.perf_counter() > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.02)
    reader.join(timeout=10)
    output = "".join(chunks)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    figures: dict[str, Any] = {}
    for line in output.splitlines():
        if line.startswith(RESULT_PREFIX):
            figures = json.loads(line[len(RESULT_PREFIX) :])
    if proc.returncode != 0 or (result and not figures):
        raise SystemExit(f"{' '.join(args)} failed (exit {proc.returncode}):\n{output[-4000:]}")
    return Run(figures, wall, usage.ru_maxrss / 1024, output)  # ru_maxrss: KiB on Linux


def generator_key() -> str:
    """Digest of the generator's code and the knowledge base (its files, MANIFEST.yaml with the
    kb_version among them): a change to either rebuilds. Nothing is imported: the driver stays
    small, because a child's peak RSS starts from its parent's size at fork."""
    h = hashlib.sha256()
    for source in GENERATOR_SOURCES:
        for path in sorted((ROOT / source).rglob("*.py")):
            h.update(path.relative_to(ROOT).as_posix().encode())
            h.update(path.read_bytes())
    for path in sorted((ROOT / "src/trdnav/knowledge/data").rglob("*.yaml")):
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*.parquet"))


def reuse_or_clear(folder: Path, wanted: dict[str, Any], rebuild: bool) -> dict[str, Any] | None:
    """The manifest of the cached set in ``folder`` when it matches ``wanted`` (and not
    ``rebuild``); otherwise None, with ``folder`` emptied for a new build."""
    manifest_path = folder / "bench-manifest.json"
    if manifest_path.exists() and not rebuild:
        manifest: dict[str, Any] = json.loads(manifest_path.read_text())
        if {k: manifest.get(k) for k in wanted} == wanted:
            return manifest
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return None


def write_manifest(folder: Path, wanted: dict[str, Any], run: Run) -> dict[str, Any]:
    """Write the cached set's ``bench-manifest.json``: ``wanted`` plus how its build went."""
    manifest = {
        **wanted,
        "generate_seconds": run.wall_seconds,
        "generate_peak_mb": run.peak_mb,
        "bytes": folder_bytes(folder),
        "tables": {p.stem: p.stat().st_size for p in sorted(folder.glob("*.parquet"))},
    }
    (folder / "bench-manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def dataset(persons: int, key: str, rebuild: bool) -> tuple[Path, dict[str, Any]]:
    """The cached synthetic set of ``persons`` (built when missing, stale or ``rebuild``)."""
    folder = CACHE / f"omop-{persons}-seed{SEED}"
    wanted = {"persons": persons, "seed": SEED, "key": key}
    cached = reuse_or_clear(folder, wanted, rebuild)
    if cached is not None:
        return folder, cached
    print(f"generating {persons:,} persons into {folder} …", flush=True)
    run = run_child(
        [str(Path(__file__)), "--worker", "generate", str(folder), str(persons)],
        timeout=4 * 3600,
    )
    return folder, write_manifest(folder, wanted, run)


def tiled_dataset(
    source: Path, factor: int, key: str, rebuild: bool
) -> tuple[Path, dict[str, Any]]:
    """``factor`` copies of the ``source`` set with person ids (and row ids) shifted per copy.

    Generating 10M persons takes about an hour on 2 cores; the phenotype does not care whether
    persons are new draws or copies with other ids (each person is processed on their own), so the
    10M set is the 1M set ten times: the same rows, exposures per person and cohort share.
    """

    src_manifest = json.loads((source / "bench-manifest.json").read_text())
    persons = src_manifest["persons"] * factor
    folder = CACHE / f"omop-{persons}-seed{SEED}-tiled"
    wanted = {"persons": persons, "seed": SEED, "key": key, "tiled_from": src_manifest["persons"]}
    cached = reuse_or_clear(folder, wanted, rebuild)
    if cached is not None:
        return folder, cached
    print(f"tiling {source} {factor}× into {folder} …", flush=True)
    run = run_child(
        [str(Path(__file__)), "--worker", "tile", str(source), str(factor), str(folder)],
        timeout=3600,
    )
    return folder, write_manifest(folder, wanted, run)


def compare_cohorts(ours: Path, theirs: Path) -> dict[str, Any]:
    """Row-by-row comparison of two cohort files (subject, start and end date)."""
    import pyarrow.parquet as pq

    def rows(path: Path) -> dict[int, tuple[str, str]]:
        t = pq.read_table(path, columns=["subject_id", "cohort_start_date", "cohort_end_date"])
        return {
            int(s): (str(a)[:10], str(b)[:10])
            for s, a, b in zip(*(t.column(i).to_pylist() for i in range(3)), strict=True)
        }

    a, b = rows(ours), rows(theirs)
    both = a.keys() & b.keys()
    exact = sum(a[s] == b[s] for s in both)
    start_differs = sorted(s for s in both if a[s][0] != b[s][0])
    end_differs = sorted(s for s in both if a[s][0] == b[s][0] and a[s][1] != b[s][1])
    return {
        "phenotype": len(a),
        "pandas": len(b),
        "exact": exact,
        "start_differs": len(start_differs),
        "end_differs": len(end_differs),
        "only_phenotype": sorted(a.keys() - b.keys())[:20],
        "only_pandas": sorted(b.keys() - a.keys())[:20],
        "n_only_phenotype": len(a.keys() - b.keys()),
        "n_only_pandas": len(b.keys() - a.keys()),
        "start_differs_examples": start_differs[:20],
    }


def agreement(cohort_path: Path, omop: Path) -> dict[str, Any]:
    import pyarrow.parquet as pq

    from trdnav.population.evaluate import evaluate_cohort

    truth = pq.read_table(omop / "ground_truth.parquet")
    return evaluate_cohort(pq.read_table(cohort_path), truth).as_dict()


def measure(persons: int, key: str, args: argparse.Namespace, with_pandas: bool) -> dict[str, Any]:
    if persons > TARGET_SIZE and os.environ.get("TRDNAV_BENCH_10M") != "generate":
        source, _ = dataset(TARGET_SIZE, key, False)
        folder, manifest = tiled_dataset(source, persons // TARGET_SIZE, key, args.rebuild)
    else:
        folder, manifest = dataset(persons, key, args.rebuild)
    out = CACHE / f"run-{persons}"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    me = str(Path(__file__))
    floor = run_child([me, "--worker", "floor", str(folder)], timeout=3600)
    pheno = run_child([me, "--worker", "phenotype", str(folder), str(out)], timeout=3 * 3600)
    command = [
        "-m",
        "trdnav",
        "cohort",
        "--omop",
        str(folder),
        "--out",
        str(out / "trd_cohort.parquet"),
        "--report",
        str(out / "report"),
    ]
    runs = []
    for _ in range(PHENOTYPE_RUNS if persons <= TARGET_SIZE else 1):
        shutil.rmtree(out / "report", ignore_errors=True)
        for old in out.glob("trd_cohort*"):
            old.unlink()
        runs.append(run_child(command, timeout=3 * 3600, cores=THREADS, result=False))
    cli = min(runs, key=lambda r: r.wall_seconds)
    result: dict[str, Any] = {
        "persons": persons,
        "data_bytes": manifest["bytes"],
        "bytes_per_person": manifest["bytes"] / persons,
        "generate_seconds": manifest["generate_seconds"],
        "tiled_from": manifest.get("tiled_from"),
        "generate_peak_mb": manifest["generate_peak_mb"],
        "seconds": pheno.figures["seconds"],
        "work_peak_mb": pheno.peak_mb,
        "import_seconds": pheno.figures["import_seconds"],
        "wall_seconds": cli.wall_seconds,
        "peak_mb": max(r.peak_mb for r in runs),
        "runs_wall_seconds": [r.wall_seconds for r in runs],
        "persons_per_second": persons / cli.wall_seconds,
        "cohort": pheno.figures["cohort"],
        "attrition": pheno.figures["attrition"],
        "floor_seconds": floor.figures["seconds"],
        "floor_peak_mb": floor.peak_mb,
        "floor_groups": floor.figures["groups"],
        "exposures": floor.figures["exposures"],
        "ratio_to_floor": pheno.figures["seconds"] / floor.figures["seconds"],
    }
    if with_pandas:
        pandas_out = out / "cohort_pandas.parquet"
        pandas = run_child(
            [str(HERE / "population_pandas.py"), "--omop", str(folder), "--out", str(pandas_out)],
            timeout=3 * 3600,
        )
        result["pandas"] = {
            "seconds": pandas.figures["seconds"],
            "wall_seconds": pandas.wall_seconds,
            "peak_mb": pandas.peak_mb,
            "cohort": pandas.figures["cohort"],
        }
    scores = run_child(
        [me, "--worker", "agreement", str(folder), str(out / "trd_cohort.parquet")]
        + ([str(out / "cohort_pandas.parquet")] if with_pandas else []),
        timeout=3600,
    ).figures
    result["agreement"] = scores["agreement"]
    if with_pandas:
        result["pandas"]["agreement"] = scores["pandas_agreement"]
        result["pandas"]["comparison"] = scores["comparison"]
    return result


def _fmt_share(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def report(results: list[dict[str, Any]]) -> list[str]:
    """Print the table; return the missed targets."""
    print()
    print(
        "| persons | exposures | data MB | phenotype work s | trdnav cohort s | persons/s "
        "| peak MB | floor s | ratio | cohort | sensitivity | PPV |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        a = r["agreement"]
        print(
            f"| {r['persons']:,} | {r['exposures']:,} | {r['data_bytes'] / 1e6:,.0f} "
            f"| {r['seconds']:.2f} | {r['wall_seconds']:.2f} | {r['persons_per_second']:,.0f} "
            f"| {r['peak_mb']:,.0f} | {r['floor_seconds']:.3f} | {r['ratio_to_floor']:.1f}× "
            f"| {r['cohort']:,} | {_fmt_share(a['sensitivity'])} | {_fmt_share(a['ppv'])} |"
        )
    print()
    for r in results:
        a = r["agreement"]
        print(
            f"{r['persons']:,} persons: generated in {r['generate_seconds']:.0f} s "
            f"(peak {r['generate_peak_mb']:,.0f} MB), {r['bytes_per_person']:.0f} bytes/person; "
            f"phenotype imports {r['import_seconds']:.2f} s, in-process peak "
            f"{r['work_peak_mb']:,.0f} MB; trdnav cohort runs "
            f"{', '.join(f'{w:.1f}' for w in r['runs_wall_seconds'])} s; "
            f"floor peak {r['floor_peak_mb']:,.0f} "
            f"MB; index date exact {_fmt_share(a['index_exact'])}, within ±{a['window_days']} d "
            f"{_fmt_share(a['index_within_window'])}, median |Δ| {a['index_median_abs_days']} d"
        )
        attrition = "; ".join(
            f"{row['step'] if isinstance(row, dict) else row[0]} "
            f"{row['persons'] if isinstance(row, dict) else row[-1]:,}"
            for row in r["attrition"]
        )
        print(f"  attrition: {attrition}")
        if "pandas" in r:
            pd_ = r["pandas"]
            c = pd_["comparison"]
            pa_ = pd_["agreement"]
            print(
                f"  pandas baseline: {pd_['seconds']:.2f} s work, {pd_['wall_seconds']:.2f} s "
                f"end to end ({pd_['wall_seconds'] / r['wall_seconds']:.1f}× trdnav cohort), peak "
                f"{pd_['peak_mb']:,.0f} MB ({pd_['peak_mb'] / r['peak_mb']:.1f}×); cohort "
                f"{c['pandas']:,} vs {c['phenotype']:,}: {c['exact']:,} identical rows, "
                f"{c['start_differs']} with another start, {c['end_differs']} with another end, "
                f"{c['n_only_phenotype']} only in the phenotype, {c['n_only_pandas']} only in "
                f"pandas; sensitivity {_fmt_share(pa_['sensitivity'])}, PPV "
                f"{_fmt_share(pa_['ppv'])}"
            )
            for label in ("only_phenotype", "only_pandas", "start_differs_examples"):
                if c[label]:
                    print(f"    {label}: {c[label]}")
    missed: list[str] = []
    by_size = {r["persons"]: r for r in results}
    big = by_size.get(TARGET_SIZE)
    if big is not None:
        ok = big["wall_seconds"] <= TARGET_SECONDS
        print(
            f"target: {TARGET_SIZE:,} persons in ≤ {TARGET_SECONDS:.0f} s end to end: "
            f"{big['wall_seconds']:.1f} s {'met' if ok else 'MISSED'}"
        )
        if not ok:
            missed.append("time")
        ok = big["peak_mb"] < TARGET_PEAK_MB
        print(
            f"target: peak memory < {TARGET_PEAK_MB:,.0f} MB: {big['peak_mb']:,.0f} MB "
            f"{'met' if ok else 'MISSED'}"
        )
        if not ok:
            missed.append("memory")
        small = by_size.get(SIZES[0])
        if small is not None:
            scaling = big["seconds"] / small["seconds"]
            ok = scaling <= TARGET_SCALING
            print(
                f"target: {SIZES[0]:,} → {TARGET_SIZE:,} persons no worse than "
                f"{TARGET_SCALING:.0f}×: {scaling:.1f}× {'met' if ok else 'MISSED'} "
                f"(end to end: {big['wall_seconds'] / small['wall_seconds']:.1f}×)"
            )
            if not ok:
                missed.append("scaling")
        if "bytes_per_person" in big:
            est = big["bytes_per_person"] * SIZE_10M
            free = shutil.disk_usage(CACHE).free
            print(
                f"10,000,000 persons would take about {est / 1e9:.1f} GB of Parquet "
                f"({free / 1e9:.0f} GB free under {CACHE}) and about "
                f"{big['generate_seconds'] * 10 / 60:.0f} min to generate"
            )
    return missed


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        return worker_main(sys.argv[2:])
    parser = argparse.ArgumentParser(description="population phenotype benchmark")
    parser.add_argument("--sizes", type=int, nargs="+", help="persons per data set")
    parser.add_argument("--rebuild", action="store_true", help="regenerate the cached data sets")
    parser.add_argument("--no-pandas", action="store_true", help="skip the pandas baseline")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    sizes = args.sizes or [*SIZES, *([SIZE_10M] if os.environ.get("TRDNAV_BENCH_10M") else [])]
    CACHE.mkdir(parents=True, exist_ok=True)
    key = generator_key()
    results = []
    for persons in sizes:
        print(f"{persons:,} persons …", flush=True)
        with_pandas = persons == min(sizes) and not args.no_pandas
        results.append(measure(persons, key, args, with_pandas))
    missed = report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(benchmark driver peak {own:,.0f} MB; DuckDB {THREADS} threads; cache {CACHE})")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
