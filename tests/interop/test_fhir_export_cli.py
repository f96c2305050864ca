"""``trdnav fhir export``: from history files (stdout, --out FILE, --out FOLDER) and from the
clinic database (--database-url --patient, audited); invalid input exits 2 naming what is wrong."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import select
from typer.testing import CliRunner

from trdnav.cli import app
from trdnav.history_files import load_history
from trdnav.knowledge.load import Knowledge
from trdnav.storage import models as m
from trdnav.storage import records
from trdnav.storage.engine import make_engine, make_sessionmaker
from trdnav.storage.migrations import upgrade

TODAY = date(2024, 6, 1)
EXAMPLES = Path(__file__).parents[2] / "examples"
runner = CliRunner()


def example(prefix: str) -> str:
    return str(next(EXAMPLES.glob(f"{prefix}*.yaml")))


def patient_ids(bundle: dict[str, object]) -> list[str]:
    entries = bundle["entry"]
    assert isinstance(entries, list)
    return [
        i["value"]
        for e in entries
        if e["resource"]["resourceType"] == "Patient"
        for i in e["resource"]["identifier"]
    ]


def test_one_file_prints_its_bundle() -> None:
    result = runner.invoke(app, ["fhir", "export", example("10")])
    assert result.exit_code == 0, result.output
    bundle = json.loads(result.stdout)
    Bundle.model_validate(bundle)
    assert bundle["type"] == "collection" and patient_ids(bundle) == ["EX10"]


def test_out_writes_the_bundle_to_a_file(tmp_path: Path) -> None:
    target = tmp_path / "bundle.json"
    result = runner.invoke(app, ["fhir", "export", example("03"), "--out", str(target)])
    assert result.exit_code == 0, result.output
    assert patient_ids(json.loads(target.read_text(encoding="utf-8"))) == ["EX03"]


def test_several_files_need_a_folder_and_write_one_bundle_each(tmp_path: Path) -> None:
    files = [example("01"), example("02")]
    refused = runner.invoke(app, ["fhir", "export", *files])
    assert refused.exit_code == 2
    assert "--out" in refused.output and "several files" in refused.output
    result = runner.invoke(app, ["fhir", "export", *files, "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["EX01.fhir.json", "EX02.fhir.json"]


def test_an_invalid_file_exits_2_naming_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    text = Path(example("01")).read_text(encoding="utf-8").replace("sertraline", "sertralinne")
    bad.write_text(text, encoding="utf-8")
    result = runner.invoke(app, ["fhir", "export", str(bad)])
    assert result.exit_code == 2
    assert "bad.yaml" in result.output and "treatments[0].drug" in result.output
    assert "Traceback" not in result.output


def _stored(tmp_path: Path, kb: Knowledge) -> str:
    url = f"sqlite:///{tmp_path / 'clinic.db'}"
    upgrade(url)
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            history = load_history(Path(example("10")), kb, TODAY)
            records.save(session, history, kb, TODAY, "fixture")
    finally:
        engine.dispose()
    return url


def _audit(url: str) -> list[tuple[str, str, str | None]]:
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            rows = session.execute(
                select(m.AuditEvent.action, m.AuditEvent.entity, m.AuditEvent.entity_id).order_by(
                    m.AuditEvent.id
                )
            )
            return [(a, e, i) for a, e, i in rows]
    finally:
        engine.dispose()


def test_a_stored_patient_is_exported_and_the_export_audited(tmp_path: Path, kb: Knowledge) -> None:
    url = _stored(tmp_path, kb)
    args = ["fhir", "export", "--database-url", url, "--patient", "EX10", "--today", "2024-06-01"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    bundle = json.loads(result.stdout)
    Bundle.model_validate(bundle)
    assert patient_ids(bundle) == ["EX10"]
    audit = _audit(url)
    assert ("read", "patient", "EX10") in audit
    assert audit[-1] == ("export_fhir", "patient", "EX10")


def test_an_unknown_stored_patient_exits_2(tmp_path: Path, kb: Knowledge) -> None:
    url = _stored(tmp_path, kb)
    result = runner.invoke(app, ["fhir", "export", "--database-url", url, "--patient", "NOPE"])
    assert result.exit_code == 2
    assert "no patient 'NOPE'" in result.output and "Traceback" not in result.output
    assert ("export_fhir", "patient", "NOPE") not in _audit(url)


def test_patient_without_a_database_and_files_with_patient_are_refused(tmp_path: Path) -> None:
    no_db = runner.invoke(
        app, ["fhir", "export", "--patient", "EX10"], env={"TRDNAV_DATABASE_URL": ""}
    )
    assert no_db.exit_code == 2 and "--database-url" in no_db.output
    both = runner.invoke(
        app, ["fhir", "export", example("10"), "--patient", "EX10", "--database-url", "sqlite://"]
    )
    assert both.exit_code == 2 and "not both" in both.output
    nothing = runner.invoke(app, ["fhir", "export"], env={"TRDNAV_DATABASE_URL": ""})
    assert nothing.exit_code == 2 and "history files" in nothing.output
