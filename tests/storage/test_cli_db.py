from __future__ import annotations

from datetime import date
from pathlib import Path

import typer
import yaml
from sqlalchemy import func, select
from typer.testing import CliRunner

from trdnav.cli_db import register
from trdnav.history_files import load_history as load_file
from trdnav.knowledge.load import default_knowledge
from trdnav.storage import models as m
from trdnav.storage.engine import make_engine, make_sessionmaker

from .conftest import EXAMPLES


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """test app"""

    register(app)
    return app


def _count(url: str) -> int:
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            return session.scalar(select(func.count()).select_from(m.Patient)) or 0
    finally:
        engine.dispose()


def test_import_export_backup_restore_from_the_command_line(db_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    app, opt = _app(), ["--database-url", db_url]
    assert runner.invoke(app, ["db", "upgrade", *opt]).exit_code == 0
    files = [str(p) for p in EXAMPLES[:3]]
    result = runner.invoke(app, ["import", *files, *opt])
    assert result.exit_code == 0, result.output
    assert _count(db_url) == 3
    out = tmp_path / "out"
    result = runner.invoke(app, ["export", "--out", str(out), *opt])
    assert result.exit_code == 0, result.output
    exported = sorted(out.glob("*.yaml"))
    assert len(exported) == 3
    # an exported file holds the same history as the imported one
    kb = default_knowledge()
    originals = {
        h.patient.id: h for h in (load_file(p, kb, date(2024, 6, 1)) for p in EXAMPLES[:3])
    }
    for path in exported:
        again = load_file(path, kb, date(2024, 6, 1))
        assert again.model_dump() == originals[again.patient.id].model_dump()
    # an exported file is a valid history file again
    assert runner.invoke(app, ["import", str(exported[0]), *opt]).exit_code == 0
    if db_url.startswith("sqlite"):
        backup_file = tmp_path / "b.db"
        assert runner.invoke(app, ["backup", str(backup_file), *opt]).exit_code == 0
        assert runner.invoke(app, ["restore", str(backup_file), *opt]).exit_code == 0
        assert _count(db_url) == 3


def test_importing_a_bad_file_exits_2_names_the_field_and_stores_nothing(
    db_url: str, tmp_path: Path
) -> None:
    data = yaml.safe_load(EXAMPLES[0].read_text(encoding="utf-8"))
    data["treatments"][0]["adherence"] = 7
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data), encoding="utf-8")
    result = CliRunner().invoke(_app(), ["import", str(bad), "--database-url", db_url])
    assert result.exit_code == 2
    assert "bad.yaml" in result.output and "treatments[0].adherence" in result.output
    assert _count(db_url) == 0
