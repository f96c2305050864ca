from __future__ import annotations

from datetime import date

import pytest

from trdnav.core.courses.eligibility import review_eligibility
from trdnav.core.courses.model import Acknowledgement, Eligibility, Override, Scale
from trdnav.core.courses.outcomes import CourseResult, clinic_outcomes, wilson
from trdnav.core.courses.rems import rems_rows
from trdnav.core.safety import Finding
from trdnav.errors import InputError

from .conftest import KB, START, a_course, at, esketamine_record

ESK = KB.protocols["esketamine_trd"]
ANEURYSM = Finding(
    code="aneurysm",
    severity="contraindicated",
    message="Aneurysmal vascular disease",
    citations=("spravato_uspi_contraindications",),
    verified=True,
    option_id="esketamine",
)
HTN = Finding(
    code="hypertension",
    severity="caution",
    message="Uncontrolled hypertension",
    citations=("spravato_uspi_contraindications",),
    verified=False,
    option_id="esketamine",
)
OTHER = Finding(
    code="metal",
    severity="contraindicated",
    message="Metal near the head",
    citations=("rossi_2009_tms_safety",),
    verified=False,
    option_id="rtms",
)


def reviewed(**kw) -> Eligibility:
    fields = {
        "reviewed_by": "dr.a",
        "reviewed_at": at(9, 0),
        "findings_reviewed": ("aneurysm", "hypertension"),
        "consent_recorded_by": "dr.a",
        "consent_on": START,
    }
    fields.update(kw)
    return Eligibility(**fields)


def decide(eligibility, findings=(ANEURYSM, HTN)):
    return review_eligibility(ESK, list(findings), a_course(ESK.id, eligibility=eligibility))


def test_no_review_means_no_start():
    d = decide(None, ())
    assert not d.can_start and d.consent_missing


def test_a_contraindication_blocks_until_overridden_with_a_reason():
    d = decide(
        reviewed(acknowledged=(Acknowledgement(code="hypertension", by="dr.a", at=at(9, 0)),))
    )
    assert not d.can_start and [f.code for f in d.blocking] == ["aneurysm"]
    override = Override(code="aneurysm", by="dr.b", at=at(9, 1), reason="Repaired 2019, cleared.")
    d = decide(
        reviewed(
            overrides=(override,),
            acknowledged=(Acknowledgement(code="hypertension", by="dr.a", at=at(9, 0)),),
        )
    )
    assert d.can_start and d.blocking == ()
    shown = next(f for f in d.findings if f.code == "aneurysm")
    assert shown.severity == "block" and shown.overridden_by == "dr.b"


def test_a_reason_of_spaces_does_not_count():
    override = Override(code="aneurysm", by="dr.b", at=at(9, 1), reason="   ok      .   ")
    assert decide(reviewed(overrides=(override,))).blocking


def test_a_caution_needs_acknowledgement_and_consent_is_required():
    d = decide(reviewed(consent_recorded_by=None), (HTN,))
    assert (
        not d.can_start
        and d.consent_missing
        and [f.code for f in d.unacknowledged] == ["hypertension"]
    )
    ack = Acknowledgement(code="hypertension", by="dr.a", at=at(9, 0))
    assert decide(reviewed(acknowledged=(ack,)), (HTN,)).can_start


def test_findings_of_other_options_are_ignored_and_new_ones_need_a_new_review():
    assert decide(reviewed(), (OTHER,)).can_start
    new = Finding(
        code="pregnancy",
        severity="caution",
        message="Pregnancy",
        citations=(),
        verified=False,
        option_id="esketamine",
    )
    ack = Acknowledgement(code="pregnancy", by="dr.a", at=at(9, 0))
    d = decide(reviewed(acknowledged=(ack,)), (new,))
    assert not d.can_start and any("review again" in r for r in d.reasons)


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        (5, 10, 0.2366, 0.7634),
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
        (1, 1, 0.2065, 1.0),
        (81, 263, 0.2553, 0.3662),
    ],
)
def test_wilson_intervals_match_known_values(k, n, low, high):
    p = wilson(k, n)
    assert p.ci_low == pytest.approx(low, abs=1e-4) and p.ci_high == pytest.approx(high, abs=1e-4)
    assert p.rate == k / n


def test_wilson_of_nothing_is_empty():
    assert wilson(0, 0).rate is None and wilson(0, 0).ci_low is None


def test_response_and_remission_use_each_instruments_own_rules():
    results = [
        CourseResult(treatment="ketamine", instrument="phq9", baseline=20, last=10),  # response
        CourseResult(treatment="ketamine", instrument="phq9", baseline=20, last=11),
        CourseResult(treatment="ketamine", instrument="phq9", baseline=20, last=4),  # remission
        CourseResult(treatment="ketamine", instrument="phq9", baseline=20, last=5),
        CourseResult(treatment="ketamine", instrument="phq9", baseline=None, last=5),
        CourseResult(treatment="ect", instrument="MADRS", baseline=30, last=10),  # ≤ 10 remits
    ]
    ket, ect = clinic_outcomes(results, KB)
    assert ket.treatment == "ketamine" and ket.courses == 5
    assert (ket.response.count, ket.response.n) == (3, 4)
    assert (ket.remission.count, ket.remission.n) == (1, 4)
    assert (ect.remission.count, ect.response.count) == (1, 1)
    assert set(ket.citations) == set(KB.instruments["phq9"].outcomes.source)


def test_an_unknown_instrument_names_its_row():
    with pytest.raises(InputError) as e:
        clinic_outcomes([CourseResult(treatment="rtms", instrument="nope", baseline=1, last=1)], KB)
    assert e.value.problems[0].loc == "results.0.instrument"


def test_rems_rows_summarise_each_completed_session():
    r1 = esketamine_record(
        post=((40, 150, 85), (100, 132, 82)),
        scales=(
            Scale(instrument="moaas", minutes_after_dose=40, total=4),
            Scale(instrument="cadss", minutes_after_dose=40, total=9),
        ),
    )
    r2 = esketamine_record(
        number=2,
        status="deferred",
        on=date(2024, 6, 6),
        dose_time=None,
        post_vitals=(),
        observed_until=None,
    )
    (row,) = rems_rows(ESK, a_course(ESK.id, sessions=(r1, r2)))
    assert (row.session, row.dose_mg, row.pre_systolic, row.max_post_systolic) == (1, 56, 128, 150)
    assert (row.sedation, row.dissociation, row.observed_minutes) == (4, 9, 125)
    assert row.discharged_ok is True


def test_rems_rows_are_only_for_rems_protocols():
    with pytest.raises(InputError):
        rems_rows(KB.protocols["ketamine_iv"], a_course("ketamine_iv"))
