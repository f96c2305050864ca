"""Recent assessments are shared by requests for the same record version and day — never stale."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from trdnav.core.assessment import Assessment
from trdnav.core.history import History
from trdnav.history_files import load_history as load_file
from trdnav.knowledge.load import Knowledge
from trdnav.storage import records
from trdnav.storage.engine import make_engine, make_sessionmaker
from trdnav.storage.migrations import upgrade

from .conftest import EXAMPLES

TODAY = date(2024, 6, 1)


@pytest.fixture
def assessments(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """A fresh memo; yields the patient ids that were actually assessed, in order."""
    calls: list[str] = []
    real = records.assess_as_of

    def counting(history: History, *args: Any, **kw: Any) -> Assessment:
        calls.append(history.patient.id)
        return real(history, *args, **kw)

    monkeypatch.setattr(records, "_assessments", records.AssessmentMemo(size=4))
    monkeypatch.setattr(records, "assess_as_of", counting)
    yield calls


def _example(kb: Knowledge, name: str) -> History:
    return load_file(next(p for p in EXAMPLES if p.name.startswith(name)), kb, TODAY)


def test_the_same_record_version_on_the_same_day_is_assessed_once(
    session: Session, kb: Knowledge, assessments: list[str]
) -> None:
    records.save(session, _example(kb, "10"), kb, TODAY, "alice")
    first = records.load(session, "EX10", kb, TODAY, "alice")
    second = records.load(session, "EX10", kb, TODAY, "bob")
    assert second.assessment == first.assessment
    assert assessments == ["EX10"]  # the save's assessment served both reads


def test_a_new_version_a_new_day_or_another_locale_is_assessed_afresh(
    session: Session, kb: Knowledge, assessments: list[str]
) -> None:
    records.save(session, _example(kb, "10"), kb, TODAY, "alice")
    tomorrow = records.load(session, "EX10", kb, TODAY + timedelta(days=1), "alice")
    assert tomorrow.assessment.assessed_on == TODAY + timedelta(days=1)
    records.load(session, "EX10", kb, TODAY, "alice", locale="en-GB")

    def add_form(data: records.HistoryData) -> None:
        data["measurements"].append(
            {"instrument": "PHQ-9", "date": "2024-05-31", "items": [1, 1, 1, 1, 1, 1, 1, 1, 2]}
        )

    records.change(session, "EX10", add_form, kb, TODAY, "alice", expected_version=1)
    after = records.load(session, "EX10", kb, TODAY, "alice")
    assert after.version == 2
    assert after.assessment == records.assess_as_of(after.history, kb, TODAY)
    assert assessments.count("EX10") == 5  # save, tomorrow, en-GB, change, the check above


def test_another_database_with_the_same_id_and_version_gets_its_own_assessment(
    session: Session, kb: Knowledge, tmp_path: Path, assessments: list[str]
) -> None:
    ex10 = _example(kb, "10")
    records.save(session, ex10, kb, TODAY, "alice")
    here = records.load(session, "EX10", kb, TODAY, "alice")
    # the same id at version 1 elsewhere, without the measurements (and so without their alert)
    other_url = f"sqlite:///{tmp_path / 'other.db'}"
    upgrade(other_url)
    engine = make_engine(other_url)
    try:
        with make_sessionmaker(engine)() as other:
            bare = ex10.model_copy(update={"measurements": ()})
            records.save(other, bare, kb, TODAY, "alice")
            records._assessments.put(  # as if only the first database had been read
                ("EX10", 1, TODAY, None), here.history, kb, here.assessment
            )
            there = records.load(other, "EX10", kb, TODAY, "alice")
    finally:
        engine.dispose()
    assert there.version == here.version == 1
    assert any(a.code == "suicide_risk" for a in here.assessment.alerts)
    assert not any(a.code == "suicide_risk" for a in there.assessment.alerts)
    assert there.assessment == records.assess_as_of(bare, kb, TODAY)


def test_the_memo_keeps_only_the_most_recent_records(kb: Knowledge) -> None:
    memo = records.AssessmentMemo(size=2)
    histories = [_example(kb, n) for n in ("01", "02", "03")]
    done = [records.assess_as_of(h, kb, TODAY) for h in histories]
    for h, a in zip(histories, done, strict=True):
        memo.put((h.patient.id, 1, TODAY, None), h, kb, a)
    assert memo.get(("EX01", 1, TODAY, None), histories[0], kb) is None
    assert memo.get(("EX03", 1, TODAY, None), histories[2], kb) is done[2]
    assert memo.get(("EX03", 1, TODAY, None), histories[1], kb) is None  # another history
