"""The course commands on both databases: protocols, a course's summary, clinic outcomes."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

from typer.testing import CliRunner

from trdnav.cli import app
from trdnav.core.courses.model import SessionRecord, Vitals
from trdnav.knowledge.load import Knowledge
from trdnav.storage.engine import make_engine, make_sessionmaker

from .conftest import store_examples
from .test_courses import active_course

runner = CliRunner()


def test_protocols_lists_every_template_with_its_label_status_and_verification(
    kb: Knowledge,
) -> None:
    result = runner.invoke(app, ["protocols", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["id"]: r for r in json.loads(result.output)}
    assert set(rows) == set(kb.protocols)
    assert rows["ketamine_iv"]["label"] == "off-label"
    assert rows["esketamine_trd"]["label"] == "on-label"
    assert all(isinstance(r["verified"], bool) for r in rows.values())
    table = runner.invoke(app, ["protocols"])
    assert table.exit_code == 0 and "ketamine_iv" in table.output


def test_course_report_writes_the_summary_and_names_an_unknown_course(
    db_url: str, kb: Knowledge, tmp_path: Path
) -> None:
    (pid,) = store_examples(db_url, kb, "10")
    course = active_course(db_url, kb, pid, "ketamine")
    out = tmp_path / "course.html"
    args = ["course", "report", course.id, "--out", str(out), "--database-url", db_url]
    result = runner.invoke(app, [*args, "--today", "2024-06-01"])
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert course.id in html and "<html" in html.lower()
    missing = runner.invoke(
        app, ["course", "report", "C-NONE", "--out", str(out), "--database-url", db_url]
    )
    assert missing.exit_code == 2 and "C-NONE" in missing.output


def test_outcomes_counts_the_courses_with_a_session_given(db_url: str, kb: Knowledge) -> None:
    from trdnav.storage import courses as store

    (pid,) = store_examples(db_url, kb, "10")
    course = active_course(db_url, kb, pid, "ketamine")
    at = datetime(2024, 6, 3, 9, 0, tzinfo=UTC)
    given = SessionRecord(
        number=1,
        status="done",
        on=date(2024, 6, 3),
        weight_kg=80,
        dose_mg=40,
        pre_vitals=Vitals(at=at, systolic=120, diastolic=80, heart_rate=70),
    )
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as db:
            store.save_course(db, course.model_copy(update={"sessions": (given,)}), "t", 1)
    finally:
        engine.dispose()
    result = runner.invoke(app, ["outcomes", "--json", "--database-url", db_url])
    assert result.exit_code == 0, result.output
    rates = {r["treatment"]: r for r in json.loads(result.output)["rates"]}
    assert set(rates) == {"ketamine"} and rates["ketamine"]["courses"] == 1
    # a course with no session given is not counted
    active_course(db_url, kb, pid, "esketamine")
    again = runner.invoke(app, ["outcomes", "--json", "--database-url", db_url])
    assert {r["treatment"] for r in json.loads(again.output)["rates"]} == {"ketamine"}
