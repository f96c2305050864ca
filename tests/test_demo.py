"""The demo data (`trdnav demo`): the shifted examples and 30 generated journeys, as of today."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from itertools import pairwise
from typing import Any

import pytest
from sqlalchemy import func, select

from trdnav.core.assessment import Assessment
from trdnav.demo import _shift, demo_data, example_data, generated_data, load_demo
from trdnav.knowledge.load import Knowledge
from trdnav.storage import models as m
from trdnav.storage import records
from trdnav.storage.engine import make_engine, make_sessionmaker

TODAY = date(2024, 6, 1)


@pytest.fixture(scope="module")
def generated() -> list[dict[str, Any]]:
    return generated_data(TODAY)


@pytest.fixture(scope="module")
def assessed(generated: list[dict[str, Any]], kb: Knowledge) -> list[Assessment]:
    return [
        records.assess_as_of(records.validate(data, kb, TODAY), kb, TODAY) for data in generated
    ]


def _dates(value: Any) -> list[date]:
    if isinstance(value, dict):
        return [d for v in value.values() for d in _dates(v)]
    if isinstance(value, list):
        return [d for v in value for d in _dates(v)]
    if isinstance(value, str) and len(value) == 10 and value[4] == "-" and value[7] == "-":
        return [date.fromisoformat(value)]
    return []


def test_the_demo_is_the_same_on_every_run_for_a_given_today() -> None:
    assert demo_data(TODAY) == demo_data(TODAY)


def test_every_demo_date_moves_with_today() -> None:
    later = TODAY + timedelta(days=10)
    assert demo_data(later) == _shift(demo_data(TODAY), 10)


def test_the_demo_has_the_examples_and_thirty_generated_patients(
    generated: list[dict[str, Any]],
) -> None:
    ids = [d["patient"]["id"] for d in demo_data(TODAY)]
    assert len(ids) == len(set(ids))
    assert [d["patient"]["id"] for d in generated] == [f"SY{n:02d}" for n in range(1, 31)]
    assert ids == [d["patient"]["id"] for d in example_data(TODAY)] + ids[-30:]


@pytest.mark.parametrize("today", [TODAY, date(2028, 2, 29), date(2031, 1, 1)])
def test_every_demo_history_validates(today: date, kb: Knowledge) -> None:
    for data in demo_data(today):
        history = records.validate(data, kb, today)  # raises InputError naming the field
        assert max(_dates(data)) <= today, history.patient.id


def test_the_generated_patients_cover_trd_not_trd_and_indeterminate(
    assessed: list[Assessment],
) -> None:
    statuses = Counter(a.trd.status for a in assessed)
    assert {"trd", "not_trd", "indeterminate"} <= set(statuses)
    assert statuses["trd"] >= 10  # a TRD clinic's list is mostly TRD


def test_some_generated_patients_have_a_suicide_risk_alert_from_phq9_item_9(
    assessed: list[Assessment], generated: list[dict[str, Any]]
) -> None:
    at_risk = [a.patient_id for a in assessed if any(x.code == "suicide_risk" for x in a.alerts)]
    positive_item9 = [
        d["patient"]["id"]
        for d in generated
        if any(x["instrument"] == "PHQ-9" and x["items"][8] > 0 for x in d["measurements"])
    ]
    assert len(at_risk) >= 2
    assert set(at_risk) == set(positive_item9)


def test_some_generated_patients_have_an_overdue_measure(assessed: list[Assessment]) -> None:
    overdue = [a.patient_id for a in assessed if any(d.status == "overdue" for d in a.schedule)]
    assert len(overdue) >= 3


def test_the_journeys_include_augmentation_esketamine_ect_and_rtms(
    generated: list[dict[str, Any]],
) -> None:
    treatments = [t for d in generated for t in d["treatments"]]
    kinds = Counter(t["type"] for t in treatments)
    assert kinds["esketamine"] >= 2 and kinds["ect"] >= 2 and kinds["rtms"] >= 2
    assert any("augments" in t for t in treatments)
    assert any("response_lost_on" in t for t in treatments)


def test_phq9_forms_are_two_to_four_weeks_apart_and_trends_vary(
    generated: list[dict[str, Any]],
) -> None:
    improved, worsened = [], []
    for d in generated:
        phq9 = [x for x in d["measurements"] if x["instrument"] == "PHQ-9"]
        days = [date.fromisoformat(x["date"]) for x in phq9]
        gaps = [(b - a).days for a, b in pairwise(days)]
        assert all(1 <= g <= 28 for g in gaps), d["patient"]["id"]
        assert all(14 <= g for g in gaps[:-1]), d["patient"]["id"]  # the last may be recent
        totals = [sum(x["items"]) for x in phq9]
        improved.append(totals[0] - totals[-1])
        worsened.append(totals[-1] - min(totals))
    assert sum(x >= 8 for x in improved) >= 5  # clear responses ...
    assert sum(x >= 8 for x in worsened) >= 2  # ... and relapses


def test_loading_the_demo_stores_every_patient_with_its_list_summary(db_url: str) -> None:
    count = load_demo(db_url, TODAY)
    assert count == len(demo_data(TODAY))
    engine = make_engine(db_url)
    try:
        with make_sessionmaker(engine)() as session:
            assert session.scalar(select(func.count()).select_from(m.Patient)) == count
            assert session.scalar(select(func.count()).select_from(m.PatientSummary)) == count
    finally:
        engine.dispose()
