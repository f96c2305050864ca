"""Rules 1-11 of docs/population.md on DuckDB: one hand-made person per rule, known answers.

Every scenario of :data:`tests.population.fixtures.SCENARIOS` is one person in one database; the
phenotype runs once for the module and each test looks at its persons.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from tests.population.conftest import Backend
from tests.population.fixtures import SCENARIOS, Scenario, all_scenarios, d, scenario_pid
from trdnav.knowledge.load import Knowledge
from trdnav.population.phenotype import PhenotypeResult, criteria, run_phenotype


@pytest.fixture(scope="module")
def result(kb: Knowledge) -> PhenotypeResult:
    from tests.population.conftest import _duckdb

    backend: Backend = _duckdb()
    return run_phenotype(backend.omop(all_scenarios().tables()), kb)


def rows(table: Any, pid: int | None = None, key: str = "person_id") -> list[dict[str, Any]]:
    if pid is not None:
        table = table.filter(table[key] == pid)
    return table.to_pyarrow().to_pylist()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_index_date_and_cohort_entry(result: PhenotypeResult, scenario: Scenario) -> None:
    pid = scenario_pid(scenario.name)
    found = rows(result.candidates, pid)
    expected = d(scenario.index) if scenario.index is not None else None
    assert (found[0]["index_date"] if found else None) == expected
    cohort = rows(result.cohort, pid, key="subject_id")
    assert bool(cohort) == (scenario.reaches == 10)


def test_cohort_layout_and_end_date(result: PhenotypeResult, kb: Knowledge) -> None:
    row = rows(result.cohort, scenario_pid("base"), key="subject_id")[0]
    assert row == {
        "cohort_definition_id": kb.population.parameters.cohort_definition_id.value,
        "subject_id": scenario_pid("base"),
        "cohort_start_date": d(120),
        "cohort_end_date": date(2030, 12, 31),
    }
    ids = [r["subject_id"] for r in result.cohort.order_by("subject_id").to_pyarrow().to_pylist()]
    assert len(ids) == len(set(ids)) == sum(s.reaches == 10 for s in SCENARIOS)


def test_attrition_counts(result: PhenotypeResult, kb: Knowledge) -> None:
    table = result.attrition.to_pyarrow().to_pylist()
    assert [r["step"] for r in table] == list(range(1, 11))
    assert [r["criterion_id"] for r in table] == [c.criterion_id for c in criteria(kb)]
    assert [r["criterion_id"] for r in table] == [
        "persons",
        "mdd_diagnosis",
        "no_exclusion",
        "antidepressant_era",
        "adequate_trial",
        "adequate_trials",
        "failed_trials",
        "index_date",
        "in_observation",
        "adult",
    ]
    expected = [sum(s.reaches >= step for s in SCENARIOS) for step in range(1, 11)]
    assert [r["persons"] for r in table] == expected
    assert all(r["criterion"] for r in table)


# --- rule 3: episodes ----------------------------------------------------------------------------


def episodes_of(result: PhenotypeResult, name: str) -> list[tuple[date, date]]:
    got = rows(result.episodes.order_by("episode_id"), scenario_pid(name))
    return [(r["episode_start"], r["episode_end"]) for r in got]


def test_episode_gap_of_365_days_is_one_episode(result: PhenotypeResult) -> None:
    assert episodes_of(result, "episode_gap_365_one_episode") == [(d(0), d(365 + 365))]


def test_episode_gap_of_366_days_starts_a_new_episode(result: PhenotypeResult) -> None:
    assert episodes_of(result, "episode_gap_366_two_episodes") == [
        (d(0), d(365)),
        (d(366), d(366 + 365)),
    ]


def test_episode_end_is_cut_at_the_observation_period(result: PhenotypeResult) -> None:
    assert episodes_of(result, "episode_cut_at_observation_end") == [(d(0), d(119))]
    # the last diagnosis in no observation period: not cut
    assert episodes_of(result, "index_outside_observation") == [(d(0), d(365))]


# --- rules 5-7: exposures, eras, adequacy --------------------------------------------------------


def test_exposure_end_from_end_date_days_supply_or_default(result: PhenotypeResult) -> None:
    got = rows(result.exposures.order_by("exposure_start"), scenario_pid("exposure_ends"))
    assert [(r["exposure_start"], r["exposure_end"]) for r in got] == [
        (d(0), d(10)),  # drug_exposure_end_date (the duplicate row counts once)
        (d(100), d(119)),  # end before start: start + days_supply - 1
        (d(200), d(229)),  # neither: start + default_days_supply - 1
        (d(300), d(329)),  # days_supply 0: the default
    ]
    assert [r["daily_dose"] for r in got] == [50.0, 50.0, None, None]


@pytest.mark.parametrize(
    ("name", "dose"),
    [
        ("dose_from_drug_strength", 50.0),  # 120 x 25 mg / 60 days
        ("dose_from_concept_name", 50.0),  # no drug_strength row: "25 MG" from the name
        ("dose_below_minimum", 25.0),
        ("unknown_dose_adequate", None),
    ],
)
def test_daily_dose(result: PhenotypeResult, name: str, dose: float | None) -> None:
    got = rows(
        result.exposures.filter(result.exposures.ingredient == "sertraline"), scenario_pid(name)
    )
    assert [r["daily_dose"] for r in got] == [dose]


def sertraline_eras(result: PhenotypeResult, name: str) -> list[dict[str, Any]]:
    e = result.eras.filter(result.eras.ingredient == "sertraline").order_by("era_start")
    return rows(e, scenario_pid(name))


def test_era_persistence_window(result: PhenotypeResult) -> None:
    joined = sertraline_eras(result, "era_gap_30_joins")
    assert [(r["era_start"], r["era_end"]) for r in joined] == [(d(0), d(54 + 24))]
    assert joined[0]["adequacy_date"] == d(41)
    split = sertraline_eras(result, "era_gap_31_splits")
    assert [(r["era_start"], r["era_end"]) for r in split] == [(d(0), d(24)), (d(55), d(79))]
    assert [r["adequacy_date"] for r in split] == [None, None]


def test_adequate_duration_boundary(result: PhenotypeResult) -> None:
    assert sertraline_eras(result, "adequate_42_days")[0]["adequacy_date"] == d(41)
    assert sertraline_eras(result, "inadequate_41_days")[0]["adequacy_date"] is None


def test_adequate_dose_starts_at_the_first_adequate_exposure(result: PhenotypeResult) -> None:
    era = sertraline_eras(result, "titration_start")
    assert len(era) == 1
    assert era[0]["era_start"] == d(0)
    assert era[0]["adequate_dose_start"] == d(14)
    assert era[0]["era_dose"] == 50.0
    assert era[0]["adequacy_date"] is None  # would need the era to reach d55


def test_dose_below_minimum_is_not_adequate(result: PhenotypeResult) -> None:
    era = sertraline_eras(result, "dose_below_minimum")[0]
    assert (era["era_dose"], era["adequate_dose_start"], era["adequacy_date"]) == (25.0, None, None)
    assert era["dose_unknown"] is False


def test_unknown_dose_is_judged_on_duration(result: PhenotypeResult) -> None:
    era = sertraline_eras(result, "unknown_dose_adequate")[0]
    assert era["dose_unknown"] is True
    assert era["adequacy_date"] == d(41)


def test_lithium_without_a_minimum_dose_is_judged_on_duration(result: PhenotypeResult) -> None:
    e = result.eras.filter(result.eras.ingredient == "lithium")
    era = rows(e, scenario_pid("lithium_augmentation"))[0]
    assert (era["era_dose"], era["dose_unknown"], era["adequacy_date"]) == (900.0, True, d(101))


# --- rules 8-10: steps, failures, index ----------------------------------------------------------


def steps_of(result: PhenotypeResult, name: str) -> list[tuple[str, date, bool]]:
    s = result.steps.order_by("step_start", "step_key")
    return [(r["step_key"], r["step_start"], r["failed"]) for r in rows(s, scenario_pid(name))]


def test_augmentation_counts_only_while_an_antidepressant_runs(result: PhenotypeResult) -> None:
    assert steps_of(result, "augmentation_during_antidepressant") == [
        ("sertraline", d(0), True),
        ("aripiprazole", d(60), True),
        ("citalopram", d(130), False),
    ]
    assert steps_of(result, "augmentation_without_antidepressant") == [
        ("sertraline", d(70), True),
        ("citalopram", d(140), False),
    ]


def test_restarting_the_same_ingredient_is_not_a_new_step(result: PhenotypeResult) -> None:
    assert steps_of(result, "same_ingredient_restart") == [
        ("sertraline", d(0), True),
        ("citalopram", d(60), False),
    ]
    assert len(sertraline_eras(result, "same_ingredient_restart")) == 2


def test_failure_needs_a_later_step(result: PhenotypeResult) -> None:
    assert steps_of(result, "no_later_step") == [
        ("sertraline", d(0), True),
        ("citalopram", d(60), False),
    ]


def test_simultaneous_trials_rank_by_ingredient(result: PhenotypeResult) -> None:
    s = rows(result.steps.order_by("step_key"), scenario_pid("simultaneous_trials"))
    assert [(r["step_key"], r["failed_rank"]) for r in s] == [
        ("citalopram", 1),
        ("sertraline", 2),
        ("venlafaxine", None),
    ]


@pytest.mark.parametrize(
    ("name", "modality"),
    [
        ("ect_concept", "ect"),
        ("rtms_source_value", "rtms"),
        ("esketamine_hcpcs", "esketamine"),
        ("esketamine_drug", "esketamine"),
    ],
)
def test_procedures_and_sessions_are_steps(
    result: PhenotypeResult, name: str, modality: str
) -> None:
    steps = steps_of(result, name)
    assert steps[-1] == (modality, d(130), False)
    got = rows(result.steps.filter(result.steps.step_key == modality), scenario_pid(name))
    assert got[0]["is_trial"] is False
    assert got[0]["step_kind"] == modality


def test_esketamine_exposure_is_a_session_not_an_era(result: PhenotypeResult) -> None:
    assert rows(result.eras.filter(result.eras.ingredient == "esketamine")) == []


def test_treatment_started_before_the_episode(result: PhenotypeResult) -> None:
    inside = steps_of(result, "drug_30_days_before_episode")
    outside = steps_of(result, "drug_31_days_before_episode")
    assert [s[0] for s in inside] == ["sertraline", "citalopram", "venlafaxine"]
    assert [s[0] for s in outside] == ["citalopram", "venlafaxine"]


# --- rule 11 and features ------------------------------------------------------------------------


def test_candidates_carry_age_and_observation(result: PhenotypeResult) -> None:
    def cand(name: str) -> tuple[int, bool, bool]:
        r = rows(result.candidates, scenario_pid(name))[0]
        return r["age"], r["op_end"] is not None, r["in_cohort"]

    assert cand("age_17_at_index") == (17, True, False)
    assert cand("age_18_on_birthday") == (18, True, True)
    assert cand("age_17_day_before_birthday") == (17, True, False)
    assert cand("index_outside_observation")[1:] == (False, False)


def features_of(result: PhenotypeResult, name: str) -> dict[str, Any]:
    found = rows(result.features, scenario_pid(name), key="subject_id")
    assert len(found) == 1
    return found[0]


def test_features_columns(result: PhenotypeResult) -> None:
    assert result.features.columns == (
        "subject_id",
        "index_date",
        "episode_start",
        "episode_months_to_index",
        "trials_to_index",
        "adequate_trials_to_index",
        "failed_adequate_trials",
        "failed_antidepressants",
        "antidepressant_classes_tried",
        "augmentation_used",
        "dose_unknown_trials",
        "ect_to_index",
        "ect_after_index",
        "rtms_to_index",
        "rtms_after_index",
        "esketamine_to_index",
        "esketamine_after_index",
        "phq9_before_index",
        "msm_duration_points",
        "msm_failed_points",
        "msm_augmentation_points",
        "msm_ect_points",
        "msm_severity_points",
        "msm_partial_score",
        "msm_score",
        "msm_band",
    )
    n = result.features.count().to_pyarrow().as_py()
    assert n == sum(s.reaches == 10 for s in SCENARIOS)


def test_features_without_phq9(result: PhenotypeResult) -> None:
    f = features_of(result, "base")
    assert f["index_date"] == d(120)
    assert f["episode_start"] == d(0)
    assert f["episode_months_to_index"] == 3
    assert (f["trials_to_index"], f["adequate_trials_to_index"], f["failed_adequate_trials"]) == (
        2,
        2,
        2,
    )
    assert f["failed_antidepressants"] == 2
    assert f["antidepressant_classes_tried"] == 1  # sertraline and citalopram: both SSRIs
    assert f["augmentation_used"] is False
    assert f["dose_unknown_trials"] == 0
    assert f["phq9_before_index"] is None
    assert (f["msm_duration_points"], f["msm_failed_points"]) == (1, 1)
    assert (f["msm_augmentation_points"], f["msm_ect_points"]) == (0, 0)
    assert f["msm_partial_score"] == 2
    assert (f["msm_severity_points"], f["msm_score"], f["msm_band"]) == (None, None, None)


def test_features_with_phq9_in_and_out_of_the_window(result: PhenotypeResult) -> None:
    inside = features_of(result, "phq9_in_window")
    assert (inside["phq9_before_index"], inside["msm_severity_points"]) == (22.0, 4)
    assert (inside["msm_score"], inside["msm_band"]) == (6, "mild")
    outside = features_of(result, "phq9_outside_window")
    assert (outside["phq9_before_index"], outside["msm_score"]) == (None, None)


def test_psychotic_features_give_the_highest_severity(result: PhenotypeResult) -> None:
    f = features_of(result, "psychotic_features")
    assert (f["phq9_before_index"], f["msm_severity_points"], f["msm_score"]) == (12.0, 5, 7)
    assert f["msm_band"] == "moderate"


def test_maudsley_with_augmentation_ect_and_a_long_episode(result: PhenotypeResult) -> None:
    f = features_of(result, "maudsley_full")
    assert f["episode_months_to_index"] == 26
    assert f["augmentation_used"] is True
    assert (f["ect_to_index"], f["ect_after_index"]) == (True, False)
    assert (f["trials_to_index"], f["failed_adequate_trials"], f["failed_antidepressants"]) == (
        2,
        2,
        1,
    )
    points = [
        f["msm_duration_points"],
        f["msm_severity_points"],
        f["msm_failed_points"],
        f["msm_augmentation_points"],
        f["msm_ect_points"],
    ]
    assert points == [3, 4, 1, 1, 1]
    assert (f["msm_partial_score"], f["msm_score"], f["msm_band"]) == (6, 10, "moderate")


def test_procedure_after_index(result: PhenotypeResult) -> None:
    f = features_of(result, "ect_concept")
    assert (f["ect_to_index"], f["ect_after_index"]) == (False, True)
    assert f["msm_ect_points"] == 0


def test_unknown_dose_trials_are_counted(result: PhenotypeResult) -> None:
    assert features_of(result, "unknown_dose_adequate")["dose_unknown_trials"] == 1
