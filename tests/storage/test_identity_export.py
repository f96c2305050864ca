"""`trdnav export` leaves identity out of history files unless `--with-identity`; `trdnav import`
reads it back (on SQLite: the store's identity code runs on both engines in test_identity.py)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from trdnav.cli_db import register
from trdnav.history_files import load_history as load_file
from trdnav.identity import Identifier, PatientIdentity
from trdnav.knowledge.load import Knowledge
from trdnav.storage.engine import make_engine, make_sessionmaker
from trdnav.storage.identity import load_identity, save_identity
from trdnav.storage.repository import save_history

from .conftest import EXAMPLES

TODAY = date(2024, 6, 1)
SAM = PatientIdentity(
    given=("Sam",),
    family="Sampleton",
    birth_date=date(1975, 3, 2),
    mrn="DEMO-100001",
    identifiers=(Identifier(system="urn:trdnav:demo:mrn", value="DEMO-100001", type="MR"),),
)


def _app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """test app"""

    register(app)
    return app


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_export_leaves_identity_out_unless_asked_and_import_reads_it_back(
    db_url: str, kb: Knowledge, tmp_path: Path
) -> None:
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as session:
            history = load_file(next(p for p in EXAMPLES if p.name.startswith("10")), kb, TODAY)
            pid = save_history(session, history, "fixture")
            save_identity(session, pid, SAM)
    finally:
        engine.dispose()
    runner, app, opt = CliRunner(), _app(), ["--database-url", db_url]

    plain = tmp_path / "plain"
    result = runner.invoke(app, ["export", "--out", str(plain), pid, *opt])
    assert result.exit_code == 0, result.output
    text = (plain / f"{pid}.yaml").read_text(encoding="utf-8")
    for part in ("identity", "Sampleton", "DEMO-100001", "1975-03-02"):
        assert part not in text
    assert load_file(plain / f"{pid}.yaml", kb, TODAY) == history  # still a history file

    full = tmp_path / "full"
    result = runner.invoke(app, ["export", "--with-identity", "--out", str(full), pid, *opt])
    assert result.exit_code == 0, result.output
    data = yaml.safe_load((full / f"{pid}.yaml").read_text(encoding="utf-8"))
    assert next(iter(data)) == "identity"
    assert data["identity"] == {
        "given": ["Sam"],
        "family": "Sampleton",
        "birth_date": "1975-03-02",
        "mrn": "DEMO-100001",
        "identifiers": [{"system": "urn:trdnav:demo:mrn", "value": "DEMO-100001", "type": "MR"}],
    }

    other = f"sqlite:///{tmp_path / 'other.db'}"
    result = runner.invoke(app, ["import", str(full / f"{pid}.yaml"), "--database-url", other])
    assert result.exit_code == 0, result.output
    engine = make_engine(other)
    try:
        with make_sessionmaker(engine)() as session:
            assert load_identity(session, pid) == SAM
    finally:
        engine.dispose()


def test_import_reports_identity_and_history_problems_together(tmp_path: Path) -> None:
    source = next(p for p in EXAMPLES if p.name.startswith("10"))
    data = yaml.safe_load(source.read_text(encoding="utf-8"))
    data["identity"] = {"family": "Testwood", "birth_date": "2999-01-01"}
    data["episode"]["severity"] = "enormous"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'bad.db'}"
    result = CliRunner().invoke(_app(), ["import", str(path), "--database-url", url])
    assert result.exit_code == 2
    assert "identity.birth_date" in result.output and "episode.severity" in result.output
    assert "Traceback" not in result.output
