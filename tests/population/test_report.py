"""The attrition report: Markdown (golden file), the counts and shares it shows, the parameters
with their verified flags, and a PNG chart that is really drawn.

Regenerate the golden Markdown after an intended change with ``TRDNAV_UPDATE_GOLDEN=1`` and review
the diff (the convention of tests/cli/test_examples_golden.py).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trdnav.knowledge.load import Knowledge
from trdnav.population.report import (
    NOTICE,
    AttritionRow,
    ParameterRow,
    attrition_chart,
    attrition_csv,
    attrition_markdown,
    attrition_rows,
    parameter_rows,
    removed_and_share,
)

GOLDEN = Path(__file__).parents[1] / "golden" / "population"

ROWS = [
    AttritionRow(1, "persons in `person`", 5000),
    AttritionRow(2, "with an MDD diagnosis", 1210),
    AttritionRow(3, "without exclusion diagnoses", 1105),
    AttritionRow(4, "with an antidepressant era in an episode", 990),
    AttritionRow(5, "with an adequate trial", 760),
    AttritionRow(6, "with 2 adequate trials", 402),
    AttritionRow(7, "with 2 failed adequate trials", 318),
    AttritionRow(8, "with a following step (index date)", 301),
    AttritionRow(9, "index in an observation period", 299),
    AttritionRow(10, "adult at index", 297),
]
PARAMETERS = [
    ParameterRow("cohort_definition_id", "1", True, ("trdnav_conventions",)),
    ParameterRow("era_persistence_days", "30", True, ("ohdsi_drug_era_logic",)),
    ParameterRow("min_weeks_at_adequate_dose", "6", False, ("ema_2013", "chandler_2010_atrq")),
    ParameterRow("count_augmentation_as_trial", "true", False, ("trdnav_conventions",)),
    ParameterRow("phq9_to_msm_severity", "0–4: 1; 5–9: 2", False, ("kroenke_2001",)),
]


def _markdown() -> str:
    return attrition_markdown(
        ROWS,
        kb_version="2026.12-test",
        parameters=PARAMETERS,
        source="Parquet folder omop/",
        backend="duckdb",
        generated="2026-12-01 10:00 UTC",
    )


def test_the_attrition_markdown_matches_its_golden_file() -> None:
    got = _markdown()
    golden = GOLDEN / "attrition.md"
    if os.environ.get("TRDNAV_UPDATE_GOLDEN"):
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(got, encoding="utf-8")
    assert golden.exists(), f"missing golden file {golden}; run with TRDNAV_UPDATE_GOLDEN=1"
    assert got == golden.read_text(encoding="utf-8")


def test_the_markdown_shows_the_notice_version_counts_and_unverified_parameters() -> None:
    text = _markdown()
    assert NOTICE in text
    assert "Knowledge base: version 2026.12-test" in text
    assert "| 2 | with an MDD diagnosis | 1,210 | 3,790 | 24.2 % |" in text
    assert "| 1 | persons in `person` | 5,000 | — | — |" in text
    assert "| min_weeks_at_adequate_dose | 6 | no | ema_2013, chandler_2010_atrq |" in text
    assert "| era_persistence_days | 30 | yes | ohdsi_drug_era_logic |" in text
    assert "Cohort: 297 persons" in text


def test_a_pipe_in_a_criterion_does_not_break_the_table() -> None:
    text = attrition_markdown(
        [AttritionRow(1, "a | b", 3)], kb_version="x", parameters=[], chart=None
    )
    assert "| 1 | a \\| b | 3 | — | — |" in text
    assert "![" not in text


@given(st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=12))
def test_removed_and_share_follow_from_the_counts(counts: list[int]) -> None:
    rows = [AttritionRow(i + 1, f"c{i}", n) for i, n in enumerate(counts)]
    got = removed_and_share(rows)
    assert got[0] == (None, None)
    for (removed, share), before, after in zip(got[1:], counts[:-1], counts[1:], strict=True):
        assert removed == before - after
        if before == 0:
            assert share is None
        else:
            assert share == pytest.approx(100.0 * after / before)


def test_the_knowledge_base_parameters_are_listed_with_their_verified_flags(kb: Knowledge) -> None:
    rows = parameter_rows(kb.population.parameters)
    params = kb.population.parameters
    by_name = {r.name: r for r in rows}
    assert list(by_name) == list(type(params).model_fields)
    assert by_name["era_persistence_days"].value == str(params.era_persistence_days.value)
    assert by_name["era_persistence_days"].verified is params.era_persistence_days.verified
    assert by_name["unknown_dose_is_adequate"].value in ("true", "false")
    first_band = params.phq9_to_msm_severity.bands[0]
    assert by_name["phq9_to_msm_severity"].value.startswith(
        f"{first_band.min}–{first_band.max}: {first_band.points}"
    )
    assert by_name["min_failed_trials"].sources == tuple(params.min_failed_trials.source)


def test_attrition_rows_come_from_tables_mappings_objects_and_tuples() -> None:
    expected = [AttritionRow(1, "persons in `person`", 10), AttritionRow(2, "with MDD", 4)]
    table = pa.table({"step": [2, 1], "criterion": ["with MDD", "persons in `person`"],
                      "persons": [4, 10]})  # fmt: skip
    assert attrition_rows(table) == expected
    assert attrition_rows(table.to_pylist()) == expected
    assert attrition_rows([(2, "with MDD", 4), (1, "persons in `person`", 10)]) == expected
    assert attrition_rows(list(reversed(expected))) == expected


def test_the_attrition_csv_has_the_counts_and_the_shares() -> None:
    lines = attrition_csv([*ROWS[:2], AttritionRow(3, 'with "quotes", commas', 0)]).splitlines()
    assert lines == [
        "step,criterion,persons,removed,percent_of_previous",
        "1,persons in `person`,5000,,",
        "2,with an MDD diagnosis,1210,3790,24.2",
        '3,"with ""quotes"", commas",0,1210,0.0',
    ]


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_the_chart_is_a_png_with_one_bar_per_step(tmp_path: Path) -> None:
    path = tmp_path / "attrition.png"
    attrition_chart(ROWS, path)
    width, height = _png_size(path)
    assert width == 800
    assert path.stat().st_size > 10_000  # ten labelled bars, not an empty canvas
    few = tmp_path / "few.png"
    attrition_chart(ROWS[:3], few)
    assert _png_size(few)[1] < height  # the height follows the number of steps


def test_the_chart_is_drawn_when_everyone_is_removed(tmp_path: Path) -> None:
    path = tmp_path / "attrition.png"
    attrition_chart([AttritionRow(1, "persons in `person`", 0)], path)
    assert _png_size(path)[0] == 800


def test_the_chart_bytes_do_not_change_between_runs(tmp_path: Path) -> None:
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    attrition_chart(ROWS, a)
    attrition_chart(ROWS, b)
    assert a.read_bytes() == b.read_bytes()
