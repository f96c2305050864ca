"""Payer policies as data (issue 15): every packaged policy loads cleanly against the knowledge
base's ids, and every defect of a policy file is reported with the file and the field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import trdnav.knowledge.payers
from trdnav.core.history import Diagnosis
from trdnav.errors import KnowledgeError, Problem
from trdnav.knowledge.load import Knowledge, load_knowledge
from trdnav.knowledge.payers import (
    AugmentationTrials,
    BaselineSeverity,
    ConcurrentTreatment,
    CourseLimit,
    Exclusions,
    FailedTrials,
    PayerPolicy,
    load_payers,
)

PACKAGED = Path(trdnav.knowledge.payers.__file__).parent / "data" / "payers"
ENCODED = {
    "medicare_lcd_l34998": "rtms",
    "ambetter_cp_bh_200": "rtms",
    "florida_blue_mp_170": "rtms",
    "cigna_spravato": "esketamine",
    "qualchoice_spravato": "esketamine",
    "typical_rtms": "rtms",
    "typical_esketamine": "esketamine",
}


def _ids(kb: Knowledge) -> dict[str, Any]:
    return {
        "instruments": set(kb.instruments),
        "conditions": set(kb.conditions),
        "diagnoses": {d.value for d in Diagnosis},
        "agents": set(kb.drugs) | set(kb.classes),
        "bibliography": set(kb.bibliography),
    }


def _load(
    folder: Path, kb: Knowledge, *, clinic: bool = False
) -> tuple[dict[str, PayerPolicy], list[Problem]]:
    problems: list[Problem] = []
    return load_payers(folder, problems, clinic=clinic, **_ids(kb)), problems


def _policy(pid: str = "acme_rtms", **overrides: Any) -> dict[str, Any]:
    """A minimal valid policy; ``overrides`` replace top-level keys."""
    raw: dict[str, Any] = {
        "id": pid,
        "payer": "Acme Health",
        "policy_number": "BH-1",
        "name": "TMS for depression",
        "treatment": "rtms",
        "version": "2025-01",
        "source": ["clinic_local_policy"],
        "verified": False,
        "criteria": [
            {
                "id": "two_trials",
                "type": "failed_trials",
                "text": "Two failed antidepressant trials",
                "min_count": 2,
                "min_weeks": 6,
            }
        ],
    }
    raw.update(overrides)
    return raw


def _write(folder: Path, raw: dict[str, Any], name: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name or raw['id']}.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _criterion(**fields: Any) -> dict[str, Any]:
    return {"id": "c1", "text": "what the policy says", **fields}


def _with(criterion: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    """The minimal policy with ``criterion`` added after its valid one (``criteria.1``): with no
    valid criterion left, pydantic adds a second problem, 'criteria: at least 1 item'."""
    base = _policy(**overrides)
    return {**base, "criteria": [*base["criteria"], criterion]}


# --- the packaged policies ------------------------------------------------------------------------


def test_every_packaged_policy_loads_without_a_problem(kb):
    policies, problems = _load(PACKAGED, kb)
    assert problems == []
    assert {pid: p.treatment for pid, p in policies.items()} == ENCODED


def test_the_knowledge_base_exposes_the_packaged_policies(kb):
    assert set(kb.payers) == set(ENCODED)
    assert not any(p.clinic for p in kb.payers.values())


def test_there_are_two_payer_policies_and_one_typical_set_per_treatment(kb):
    for treatment in ("rtms", "esketamine"):
        mine = [p for p in kb.payers.values() if p.treatment == treatment]
        assert sum(p.typical for p in mine) == 1
        assert sum(not p.typical for p in mine) >= 2
    assert kb.payers["medicare_lcd_l34998"].policy_number == "L34998"


@pytest.mark.parametrize("pid", sorted(ENCODED))
def test_each_policy_states_its_provenance(kb, pid):
    policy = kb.payers[pid]
    assert policy.version.strip()
    assert policy.source and all(key in kb.bibliography for key in policy.source)
    if policy.verified:
        # read in the original: the address and the section it was read at
        assert policy.checked_against and "http" in policy.checked_against
        assert policy.url
    else:
        # what could be read, and what could not, is said
        assert policy.note and len(policy.note) > 40
    for c in policy.criteria:
        assert c.section, f"{pid}.{c.id}: say where in the policy"
    if policy.typical:
        assert "typical" in policy.name.lower() and "not a payer" in policy.payer


@pytest.mark.parametrize("pid", sorted(ENCODED))
def test_each_policy_says_what_it_left_out(kb, pid):
    assert kb.payers[pid].left_out, f"{pid}: name what the vocabulary could not express"


def test_the_esketamine_policies_use_the_25_percent_rule_where_the_policy_states_it(kb):
    cigna = next(c for c in kb.payers["cigna_spravato"].criteria if isinstance(c, FailedTrials))
    assert cigna.failure.max_improvement_pct == 25
    assert (cigna.min_count, cigna.min_classes, cigna.min_weeks) == (2, 2, 6)
    assert cigna.window.scope == "current_episode"


def test_qualchoice_is_encoded_as_printed(kb):
    policy = kb.payers["qualchoice_spravato"]
    severity = next(c for c in policy.criteria if isinstance(c, BaselineSeverity))
    assert severity.within_days == 28
    assert [(t.instrument, t.min_total, t.inclusive) for t in severity.thresholds] == [
        ("phq9", 15, False)
    ]
    augment = next(c for c in policy.criteria if isinstance(c, AugmentationTrials))
    assert augment.min_count == 2
    assert set(augment.agents) == {
        "atypical_antipsychotic",
        "lithium",
        "thyroid_hormone",
        "buspirone",
    }
    concurrent = next(c for c in policy.criteria if isinstance(c, ConcurrentTreatment))
    assert concurrent.requires_oral_antidepressant and concurrent.oral_antidepressant_not_failed


def test_florida_blue_asks_for_80_percent_adherence_and_six_weeks(kb):
    trials = next(
        c for c in kb.payers["florida_blue_mp_170"].criteria if isinstance(c, FailedTrials)
    )
    assert (trials.min_weeks, trials.min_adherence, trials.min_classes) == (6, 0.8, 2)


def test_ambetter_bars_no_concurrent_ketamine_and_limits_the_course(kb):
    policy = kb.payers["ambetter_cp_bh_200"]
    assert not any(isinstance(c, ConcurrentTreatment) and c.barred for c in policy.criteria)
    limit = next(c for c in policy.criteria if isinstance(c, CourseLimit))
    assert limit.max_sessions == 36
    exclusions = [c for c in policy.criteria if isinstance(c, Exclusions)]
    assert "psychosis_history" not in {t for c in exclusions for t in c.conditions}


# --- load defects, each with its file and field ---------------------------------------------------


def _only(problems: list[Problem], code: str) -> Problem:
    found = [p for p in problems if p.code == code]
    assert len(found) == 1, [p.render() for p in problems]
    return found[0]


def test_a_clean_policy_file_loads(kb, tmp_path):
    _write(tmp_path, _policy())
    policies, problems = _load(tmp_path, kb)
    assert problems == []
    assert set(policies) == {"acme_rtms"} and not policies["acme_rtms"].clinic


def test_a_bad_type_names_the_file_and_the_field(kb, tmp_path):
    raw = _with(_criterion(type="failed_trials", min_count="two", min_weeks=6))
    path = _write(tmp_path, raw)
    policies, problems = _load(tmp_path, kb)
    assert policies == {}
    problem = _only(problems, "invalid")
    assert problem.file == str(path)
    assert problem.loc == "criteria.1.failed_trials.min_count"


def test_an_unknown_criterion_type_is_reported(kb, tmp_path):
    path = _write(tmp_path, _with(_criterion(type="phase_of_moon")))
    _, problems = _load(tmp_path, kb)
    problem = _only(problems, "invalid")
    assert (problem.file, problem.loc) == (str(path), "criteria.1")


def test_an_unknown_field_is_reported(kb, tmp_path):
    path = _write(tmp_path, _policy(efective_from="2025-01-01"))
    _, problems = _load(tmp_path, kb)
    problem = _only(problems, "invalid")
    assert (problem.file, problem.loc) == (str(path), "efective_from")


def test_an_unknown_instrument_is_reported(kb, tmp_path):
    raw = _policy(
        criteria=[
            _criterion(
                type="baseline_severity",
                thresholds=[{"instrument": "beck_99", "min_total": 20}],
                within_days=30,
            )
        ]
    )
    path = _write(tmp_path, raw)
    policies, problems = _load(tmp_path, kb)
    problem = _only(problems, "unknown_instrument")
    assert (problem.file, problem.loc) == (str(path), "criteria.c1.thresholds")
    assert "beck_99" in problem.message
    assert "acme_rtms" in policies  # loaded, but reported: load_knowledge refuses it


def test_an_unknown_failure_instrument_is_reported(kb, tmp_path):
    raw = _policy(
        criteria=[
            _criterion(
                type="failed_trials",
                min_count=2,
                min_weeks=6,
                failure={"max_improvement_pct": 25, "instruments": ["phq_nine"]},
            )
        ]
    )
    path = _write(tmp_path, raw)
    _, problems = _load(tmp_path, kb)
    problem = _only(problems, "unknown_instrument")
    assert (problem.file, problem.loc) == (str(path), "criteria.c1.failure.instruments")


def test_an_unknown_condition_is_reported(kb, tmp_path):
    raw = _policy(criteria=[_criterion(type="exclusions", conditions=["epilepsy_ish"])])
    path = _write(tmp_path, raw)
    _, problems = _load(tmp_path, kb)
    problem = _only(problems, "unknown_condition")
    assert (problem.file, problem.loc) == (str(path), "criteria.c1.conditions")
    assert "epilepsy_ish" in problem.message


def test_an_unknown_diagnosis_is_reported(kb, tmp_path):
    raw = _policy(criteria=[_criterion(type="exclusions", diagnoses=["schizophrenia"])])
    path = _write(tmp_path, raw)
    _, problems = _load(tmp_path, kb)
    problem = _only(problems, "unknown_diagnosis")
    assert (problem.file, problem.loc) == (str(path), "criteria.c1.diagnoses")


def test_an_unknown_augmentation_agent_is_reported(kb, tmp_path):
    raw = _policy(
        criteria=[_criterion(type="augmentation_trials", min_count=1, min_weeks=4, agents=["T3"])]
    )
    path = _write(tmp_path, raw)
    _, problems = _load(tmp_path, kb)
    problem = _only(problems, "unknown_agent")
    assert (problem.file, problem.loc) == (str(path), "criteria.c1.agents")


def test_an_unknown_citation_is_reported(kb, tmp_path):
    path = _write(tmp_path, _policy(source=["acme_2025_policy"]))
    _, problems = _load(tmp_path, kb)
    problem = _only(problems, "unknown_citation")
    assert (problem.file, problem.loc) == (str(path), "source")
    assert "acme_2025_policy" in problem.message


def test_an_id_that_is_not_the_file_name_is_reported(kb, tmp_path):
    path = _write(tmp_path, _policy("acme_rtms"), name="acme_tms")
    _, problems = _load(tmp_path, kb)
    problem = _only(problems, "id_mismatch")
    assert (problem.file, problem.loc) == (str(path), "id")
    assert "acme_tms" in problem.message


def test_a_lookback_without_years_is_reported(kb, tmp_path):
    raw = _with(
        _criterion(type="failed_trials", min_count=2, min_weeks=8, window={"scope": "lookback"})
    )
    path = _write(tmp_path, raw)
    _, problems = _load(tmp_path, kb)
    problem = _only(problems, "invalid")
    assert (problem.file, problem.loc) == (str(path), "criteria.1.failed_trials.window")
    assert "years" in problem.message


def test_years_without_a_lookback_are_reported(kb, tmp_path):
    raw = _with(
        _criterion(
            type="failed_trials",
            min_count=2,
            min_weeks=8,
            window={"scope": "current_episode", "years": 5},
        )
    )
    _write(tmp_path, raw)
    _, problems = _load(tmp_path, kb)
    assert _only(problems, "invalid").loc == "criteria.1.failed_trials.window"


def test_a_lookback_with_years_loads(kb, tmp_path):
    raw = _policy(
        criteria=[
            _criterion(
                type="failed_trials",
                min_count=2,
                min_weeks=8,
                dose_level="maximal",
                window={"scope": "lookback", "years": 5},
            )
        ]
    )
    _write(tmp_path, raw)
    policies, problems = _load(tmp_path, kb)
    assert problems == []
    criterion = policies["acme_rtms"].criteria[0]
    assert isinstance(criterion, FailedTrials) and criterion.window.years == 5


def test_both_failure_rules_are_reported(kb, tmp_path):
    raw = _with(
        _criterion(
            type="failed_trials",
            min_count=2,
            min_weeks=6,
            failure={"max_improvement_pct": 25, "below_improvement_pct": 50},
        )
    )
    path = _write(tmp_path, raw)
    _, problems = _load(tmp_path, kb)
    problem = _only(problems, "invalid")
    assert (problem.file, problem.loc) == (str(path), "criteria.1.failed_trials.failure")
    assert "not both" in problem.message


def test_a_duplicate_criterion_id_is_reported(kb, tmp_path):
    twice = _criterion(type="age", min_years=18)
    path = _write(tmp_path, _policy(criteria=[twice, twice]))
    policies, problems = _load(tmp_path, kb)
    assert policies == {}
    problem = _only(problems, "invalid")
    assert problem.file == str(path)
    assert "'c1'" in problem.message and "twice" in problem.message


def test_effective_dates_in_the_wrong_order_are_reported(kb, tmp_path):
    _write(tmp_path, _policy(effective_from="2025-06-01", effective_to="2025-01-01"))
    _, problems = _load(tmp_path, kb)
    assert "before effective_from" in _only(problems, "invalid").message


def test_unreadable_yaml_is_reported_with_its_file(kb, tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("id: [unclosed\n", encoding="utf-8")
    _, problems = _load(tmp_path, kb)
    problem = _only(problems, "unreadable")
    assert problem.file == str(path)


def test_every_defect_of_one_file_is_reported_at_once(kb, tmp_path):
    raw = _policy(
        source=["nowhere_2025"],
        criteria=[
            _criterion(type="exclusions", conditions=["unknown_thing"], diagnoses=["nope"]),
        ],
    )
    _write(tmp_path, raw, name="other_name")
    _, problems = _load(tmp_path, kb)
    assert {p.code for p in problems} == {
        "id_mismatch",
        "unknown_citation",
        "unknown_condition",
        "unknown_diagnosis",
    }


# --- a clinic's own policies ---------------------------------------------------------------------


def test_a_clinic_folder_policy_loads_as_a_clinic_policy(kb, tmp_path):
    _write(tmp_path, _policy("acme_rtms"))
    policies, problems = _load(tmp_path, kb, clinic=True)
    assert problems == []
    assert policies["acme_rtms"].clinic is True


def test_a_clinic_cannot_set_the_clinic_flag_itself(kb, tmp_path):
    _write(tmp_path, _policy("acme_rtms", clinic=True))
    policies, _ = _load(tmp_path, kb)
    assert policies["acme_rtms"].clinic is False


def test_the_knowledge_base_loads_a_clinic_folder_beside_the_packaged_policies(tmp_path):
    _write(tmp_path, _policy("acme_rtms"))
    kb = load_knowledge(payers_dir=tmp_path)
    assert kb.payers["acme_rtms"].clinic is True
    assert set(ENCODED) <= set(kb.payers)


def test_a_clinic_policy_may_not_reuse_a_packaged_id(tmp_path):
    _write(tmp_path, _policy("cigna_spravato"))
    with pytest.raises(KnowledgeError) as err:
        load_knowledge(payers_dir=tmp_path)
    assert "payer_id_taken" in {p.code for p in err.value.problems}


def test_a_defective_clinic_policy_stops_the_knowledge_base_naming_file_and_field(tmp_path):
    path = _write(tmp_path, _policy(source=["acme_unknown"]))
    with pytest.raises(KnowledgeError) as err:
        load_knowledge(payers_dir=tmp_path)
    assert [(p.file, p.loc, p.code) for p in err.value.problems] == [
        (str(path), "source", "unknown_citation")
    ]
