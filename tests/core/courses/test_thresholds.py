from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trdnav.core.courses.model import Override, Scale, SessionRecord, Vitals
from trdnav.core.courses.thresholds import evaluate_session, validate_course, validate_session
from trdnav.errors import InputError
from trdnav.knowledge.protocols import ThresholdRule

from .conftest import KB, START, a_course, at, esketamine_record, ketamine_record

ESK = KB.protocols["esketamine_trd"]
KET = KB.protocols["ketamine_iv"]


def rtms_record(**kw: Any) -> SessionRecord:
    fields: dict[str, Any] = {
        "number": 1,
        "status": "done",
        "on": START,
        "pre_checks": {
            "metal_screen_unchanged": True,
            "hearing_protection": True,
            "slept_normally": True,
        },
        "motor_threshold_pct": 55,
        "intensity_pct_mt": 90,
        "coil_site": "left DLPFC (neuronavigated)",
        "pulses": 600,
    }
    fields.update(kw)
    return SessionRecord(**fields)


def ect_record(**kw: Any) -> SessionRecord:
    fields: dict[str, Any] = {
        "number": 1,
        "status": "done",
        "on": START,
        "pre_checks": {"fasted_anaesthesia": True, "consent_current": True},
        "pre_vitals": Vitals(at=at(8, 0), systolic=125, diastolic=80, heart_rate=70, spo2=98),
        "electrode_placement": "rul",
        "stimulus_dose_mc": 250,
        "seizure_seconds": 40,
        "anaesthesia": "methohexital + suxamethonium",
        "reorientation_minutes": 10,
        "cognitive_check": "MoCA 27",
        "discharge_criteria_met": {
            "reoriented": True,
            "recovered_from_anaesthesia": True,
            "accompanied": True,
        },
        "transport": "family",
    }
    fields.update(kw)
    return SessionRecord(**fields)


def base_record(pid: str) -> SessionRecord:
    treatment = KB.protocols[pid].treatment
    if treatment == "esketamine":
        return esketamine_record(
            scales=(Scale(instrument="moaas", minutes_after_dose=40, total=5),)
        )
    if treatment == "ketamine":
        return ketamine_record(
            dose_mg=41.0 if pid == "ketamine_iv" else 30.0, route=KB.protocols[pid].routes[0]
        )
    if treatment == "rtms":
        return rtms_record()
    return ect_record(electrode_placement=KB.protocols[pid].electrode_placement)


def with_measure(record: SessionRecord, rule: ThresholdRule, value: float) -> SessionRecord:
    m = rule.measure
    if rule.timing == "session":
        return record.model_copy(update={m: type(getattr(record, m))(value)})
    if rule.timing == "pre_dose":
        assert record.pre_vitals is not None
        return record.model_copy(
            update={"pre_vitals": record.pre_vitals.model_copy(update={m: int(value)})}
        )
    if m in ("cadss", "moaas"):
        others = tuple(s for s in record.scales if s.instrument != m)
        scale = Scale(instrument=m, minutes_after_dose=40, total=value)
        return record.model_copy(update={"scales": (*others, scale)})
    first, *rest = record.post_vitals
    if m.endswith("_rise"):
        base = m.removesuffix("_rise")
        assert record.pre_vitals is not None
        first = first.model_copy(update={base: getattr(record.pre_vitals, base) + int(value)})
    else:
        first = first.model_copy(update={m: int(value)})
    return record.model_copy(update={"post_vitals": (first, *rest)})


RULES = [(pid, rule) for pid, p in sorted(KB.protocols.items()) for rule in p.thresholds]


EDGES = {"gt": (0, 1), "ge": (-1, 0), "lt": (0, -1), "le": (1, 0)}


@pytest.mark.parametrize(("pid", "rule"), RULES, ids=[f"{p}:{r.id}" for p, r in RULES])
def test_every_threshold_fires_at_its_edge_and_not_one_step_inside(pid, rule):
    """gt 140: 140 quiet, 141 fires; ge 40: 39 quiet, 40 fires; lt 25: 25 quiet, 24 fires ..."""
    protocol = KB.protocols[pid]
    course = a_course(pid, weight_kg=82)
    quiet_step, fire_step = EDGES[rule.comparison]
    quiet = with_measure(base_record(pid), rule, rule.value + quiet_step)
    fires = with_measure(base_record(pid), rule, rule.value + fire_step)
    assert rule.code not in {f.code for f in evaluate_session(protocol, course, quiet).findings}
    fired = evaluate_session(protocol, course, fires)
    finding = next(f for f in fired.findings if f.code == rule.code)
    assert finding.severity == ("block" if rule.action == "block" else "warn")
    assert finding.citations == rule.source and finding.verified == rule.verified
    if rule.action == "block" and rule.timing == "pre_dose":
        assert fired.deferred and not fired.may_discharge
    if rule.action == "block" and rule.timing == "post_dose":
        assert not fired.deferred and not fired.may_discharge
    if rule.action == "extend_monitoring":
        assert fired.extend_monitoring and not fired.may_discharge


def test_a_clean_esketamine_session_may_be_discharged():
    ev = evaluate_session(ESK, a_course(ESK.id), esketamine_record())
    assert not ev.deferred and ev.may_discharge and ev.observation_minutes_required == 120
    assert all(f.severity == "info" for f in ev.findings)
    assert "esketamine_no_driving" in {f.code for f in ev.findings}


@pytest.mark.parametrize(
    ("bp", "deferred"),
    [((140, 90), False), ((141, 90), True), ((140, 91), True), ((139, 89), False)],
)
def test_esketamine_pre_dose_blood_pressure_above_140_90_defers(bp, deferred):
    ev = evaluate_session(ESK, a_course(ESK.id), esketamine_record(*bp))
    assert ev.deferred is deferred
    assert any(f.severity == "block" for f in ev.findings) is deferred


def test_an_override_lets_the_session_go_ahead_but_keeps_the_finding():
    reason = Override(
        code="esketamine_predose_systolic_high",
        by="dr.a",
        at=at(9, 5),
        reason="White-coat hypertension; home readings 125/80.",
    )
    record = esketamine_record(150, 85, overrides=(reason,))
    ev = evaluate_session(ESK, a_course(ESK.id), record)
    assert not ev.deferred and ev.may_discharge
    f = next(f for f in ev.findings if f.code == "esketamine_predose_systolic_high")
    assert f.severity == "block" and f.overridden_by == "dr.a"


def test_an_override_of_one_block_leaves_the_other_deferring():
    o = Override(
        code="esketamine_predose_systolic_high",
        by="dr.a",
        at=at(9, 5),
        reason="Reviewed and accepted the risk today.",
    )
    ev = evaluate_session(ESK, a_course(ESK.id), esketamine_record(150, 95, overrides=(o,)))
    assert ev.deferred


def test_an_override_with_no_block_is_reported():
    o = Override(code="nothing_here", by="dr.a", at=at(9, 5), reason="Reviewed and accepted.")
    ev = evaluate_session(ESK, a_course(ESK.id), esketamine_record(overrides=(o,)))
    assert "override_without_block" in {f.code for f in ev.findings}


def test_rising_pressure_extends_monitoring_until_it_comes_down():
    high = esketamine_record(post=((40, 150, 85),))
    ev = evaluate_session(ESK, a_course(ESK.id), high)
    assert ev.extend_monitoring and not ev.may_discharge
    down = esketamine_record(post=((40, 150, 85), (100, 132, 82)))
    ev = evaluate_session(ESK, a_course(ESK.id), down)
    assert not ev.extend_monitoring and ev.may_discharge
    f = next(f for f in ev.findings if f.code == "esketamine_postdose_systolic_high")
    assert f.severity == "warn" and "back within the limit" in f.message


def test_a_rise_of_40_systolic_extends_monitoring_and_39_does_not():
    rise40 = esketamine_record(100, 70, post=((40, 140, 75),))
    rise39 = esketamine_record(100, 70, post=((40, 139, 75),))
    assert evaluate_session(ESK, a_course(ESK.id), rise40).extend_monitoring
    assert not evaluate_session(ESK, a_course(ESK.id), rise39).extend_monitoring


@pytest.mark.parametrize(("minutes", "ok"), [(119, False), (120, True)])
def test_observation_of_at_least_two_hours_is_needed_to_discharge(minutes, ok):
    record = esketamine_record(observed_until=at(9, 10) + timedelta(minutes=minutes))
    assert evaluate_session(ESK, a_course(ESK.id), record).may_discharge is ok


def test_an_unmet_discharge_criterion_or_missing_40_minute_reading_prevents_discharge():
    unmet = esketamine_record(
        discharge_criteria_met={"bp_decreasing": True, "clinically_stable": False}
    )
    assert not evaluate_session(ESK, a_course(ESK.id), unmet).may_discharge
    late = esketamine_record(post=((51, 130, 80),))  # 40 ± 10 missed
    ev = evaluate_session(ESK, a_course(ESK.id), late)
    assert not ev.may_discharge and "post_dose_check_missing" in {f.code for f in ev.findings}
    edge = esketamine_record(post=((50, 130, 80),))
    assert evaluate_session(ESK, a_course(ESK.id), edge).may_discharge


def test_missing_pre_dose_vitals_defer_esketamine():
    ev = evaluate_session(ESK, a_course(ESK.id), esketamine_record(pre_vitals=None))
    assert ev.deferred and "pre_dose_vitals_missing" in {f.code for f in ev.findings}


def test_an_unanswered_pre_check_warns():
    record = esketamine_record(pre_checks={"fasted_2h": True})
    ev = evaluate_session(ESK, a_course(ESK.id), record)
    warned = {f.code for f in ev.findings if f.severity == "warn"}
    assert "esketamine_nasal_spray_within_1h" in warned and not ev.deferred


def test_esketamine_day_one_is_56_mg_and_later_84_is_allowed():
    ev = evaluate_session(ESK, a_course(ESK.id), esketamine_record(dose_mg=84))
    assert ev.deferred and "dose_not_in_protocol" in {f.code for f in ev.findings}
    ev = evaluate_session(ESK, a_course(ESK.id), esketamine_record(dose_mg=84, number=2))
    assert not ev.deferred
    ev = evaluate_session(ESK, a_course(ESK.id), esketamine_record(dose_mg=70, number=2))
    assert ev.deferred


def test_the_ketamine_dose_is_computed_from_the_weight_used():
    ev = evaluate_session(KET, a_course(KET.id), ketamine_record(weight=82))
    assert ev.dose is not None and ev.dose.mg == 41.0 and ev.dose.weight_kg == 82
    assert ev.may_discharge
    from_course = evaluate_session(KET, a_course(KET.id, weight_kg=82), ketamine_record(None))
    assert from_course.dose is not None and from_course.dose.mg == 41.0


@pytest.mark.parametrize(("given", "flagged"), [(41.5, False), (41.6, True), (40.5, False)])
def test_a_ketamine_dose_off_the_calculation_by_more_than_half_a_mg_warns(given, flagged):
    ev = evaluate_session(KET, a_course(KET.id), ketamine_record(dose_mg=given))
    assert ("dose_differs_from_calculated" in {f.code for f in ev.findings}) is flagged


def test_a_ketamine_session_without_any_weight_is_an_input_error():
    with pytest.raises(InputError) as e:
        evaluate_session(KET, a_course(KET.id), ketamine_record(weight=None))
    assert [p.loc for p in e.value.problems] == ["weight_kg"]


def test_a_clinician_set_dose_must_be_recorded():
    im = KB.protocols["ketamine_im"]
    with pytest.raises(InputError) as e:
        validate_session(im, a_course(im.id), ketamine_record(dose_mg=None, route="intramuscular"))
    assert "dose_mg" in [p.loc for p in e.value.problems]


def problems_of(record: SessionRecord, protocol=ESK) -> dict[str, str]:
    with pytest.raises(InputError) as e:
        evaluate_session(protocol, a_course(protocol.id), record)
    return {p.loc: p.code for p in e.value.problems}


def test_a_post_dose_reading_before_the_dose_is_an_input_error():
    early = Vitals(at=at(9, 5), systolic=130, diastolic=80, heart_rate=70)
    assert problems_of(esketamine_record(post_vitals=(early,))) == {
        "post_vitals.0.at": "before_dose"
    }


@pytest.mark.parametrize(("stated", "ok"), [(42, True), (43, False), (38, True), (37, False)])
def test_minutes_after_dose_must_agree_with_the_clock_within_two_minutes(stated, ok):
    v = Vitals(
        at=at(9, 50), minutes_after_dose=stated, systolic=130, diastolic=80, heart_rate=7 * 10
    )
    record = esketamine_record(post_vitals=(v,))
    if ok:
        validate_session(ESK, a_course(ESK.id), record)
    else:
        assert problems_of(record) == {"post_vitals.0.minutes_after_dose": "minutes_inconsistent"}


def test_other_contradictions_each_name_their_field():
    p = problems_of(
        esketamine_record(
            dose_time=None,
            route="oral",
            pre_checks={"made_up_question": True},
            pre_vitals=Vitals(
                at=at(9, 0), minutes_after_dose=5, systolic=120, diastolic=80, heart_rate=70
            ),
        )
    )
    assert p == {
        "dose_time": "dose_time_missing",
        "route": "unknown_route",
        "pre_checks.made_up_question": "unknown_question",
        "pre_vitals.minutes_after_dose": "pre_after_dose",
    }
    assert problems_of(esketamine_record(number=99))["number"] == "unknown_session"
    assert problems_of(esketamine_record(observed_until=at(9, 0))) == {
        "observed_until": "before_dose"
    }
    assert (
        problems_of(
            esketamine_record(on=START - timedelta(days=1), dose_time=None, post_vitals=())
        )["on"]
        == "before_start"
    )


def test_a_session_recorded_twice_is_a_course_problem():
    course = a_course(ESK.id, sessions=(esketamine_record(), esketamine_record()))
    problems = validate_course(ESK, course)
    assert [(p.loc, p.code) for p in problems] == [("sessions.1.number", "session_recorded_twice")]
    deferred_then_done = a_course(
        ESK.id, sessions=(esketamine_record(status="deferred"), esketamine_record())
    )
    assert validate_course(ESK, deferred_then_done) == []


def test_a_course_of_another_protocol_is_a_problem():
    problems = validate_course(KET, a_course(ESK.id))
    assert {p.loc for p in problems} == {"protocol_id", "treatment"}


def test_a_missed_session_has_no_findings():
    ev = evaluate_session(ESK, a_course(ESK.id), SessionRecord(number=1, status="missed", on=START))
    assert ev.findings == () and not ev.deferred


def test_rtms_needs_its_parameters_recorded_and_shows_seizure_risk_factors():
    saint = KB.protocols["rtms_accelerated_itbs"]
    ev = evaluate_session(saint, a_course(saint.id), rtms_record(motor_threshold_pct=None))
    codes = [f.code for f in ev.findings]
    assert "record_field_missing" in codes and "rtms_seizure_risk_factors" in codes
    assert ev.may_discharge  # a warning does not hold the patient
    blocked = rtms_record(pre_checks={"metal_screen_unchanged": False})
    assert evaluate_session(saint, a_course(saint.id), blocked).deferred


@pytest.mark.parametrize(("seconds", "warned"), [(25, False), (24.9, True)])
def test_an_ect_seizure_under_25_seconds_warns(seconds, warned):
    ect = KB.protocols["ect_rul_ultrabrief"]
    ev = evaluate_session(ect, a_course(ect.id), ect_record(seizure_seconds=seconds))
    assert ("ect_seizure_short" in {f.code for f in ev.findings}) is warned


def test_ect_placement_other_than_the_protocols_warns():
    ect = KB.protocols["ect_rul_ultrabrief"]
    ev = evaluate_session(ect, a_course(ect.id), ect_record(electrode_placement="bitemporal"))
    assert "electrode_placement_differs" in {f.code for f in ev.findings}


@given(st.integers(90, 200), st.integers(50, 120), st.integers(0, 60), st.integers(0, 40))
def test_raising_pre_dose_pressure_never_undefers_a_session(sys, dia, dsys, ddia):
    course = a_course(ESK.id)
    low = evaluate_session(ESK, course, esketamine_record(sys, dia))
    high = evaluate_session(ESK, course, esketamine_record(sys + dsys, dia + ddia))
    assert high.deferred or not low.deferred
    assert low.deferred == (sys > 140 or dia > 90)
