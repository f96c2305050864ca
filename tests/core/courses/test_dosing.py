from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trdnav.core.courses.dosing import weight_based_dose
from trdnav.errors import InputError


def test_half_a_milligram_per_kilo_of_82_kilos_is_41_mg():
    d = weight_based_dose(0.5, 82)
    assert d.mg == 41.0 and not d.capped
    assert d.formula == "0.5 mg/kg × 82.0 kg = 41.0 mg"


@pytest.mark.parametrize(
    ("weight", "mg"), [(82.25, 41.1), (82.3, 41.2), (70.1, 35.1), (64.9, 32.5), (100, 50.0)]
)
def test_doses_round_half_up_to_a_tenth_of_a_milligram(weight, mg):
    assert weight_based_dose(0.5, weight).mg == mg


def test_a_cap_applies_and_says_so():
    d = weight_based_dose(0.5, 150, max_mg=60)
    assert d.mg == 60.0 and d.capped and "capped at 60.0 mg" in d.formula
    assert not weight_based_dose(0.5, 120, max_mg=60).capped  # 60.0 exactly is not capped


@pytest.mark.parametrize("weight", [None, 20, 351, -5])
def test_a_missing_or_implausible_weight_names_the_field(weight):
    with pytest.raises(InputError) as e:
        weight_based_dose(0.5, weight)
    assert e.value.problems[0].loc == "weight_kg"


def test_a_non_positive_rate_is_refused():
    with pytest.raises(InputError) as e:
        weight_based_dose(0, 80)
    assert e.value.problems[0].loc == "mg_per_kg"


@given(st.floats(min_value=20.1, max_value=350), st.sampled_from([0.5, 0.75, 1.0]))
def test_the_dose_is_within_a_twentieth_of_a_milligram_of_the_exact_product(w, rate):
    assert abs(weight_based_dose(rate, w).mg - rate * w) <= 0.05 + 1e-9
