"""Weight-based dosing: ``mg = mg_per_kg × weight_kg``, rounded half up to 0.1 mg, capped.

Rounding: to one decimal (0.1 mg), half up (``0.5 × 82.25 = 41.125 -> 41.1``;
``0.5 × 82.3 = 41.15 -> 41.2``), computed in decimal so binary fractions do not decide it. A cap
(``max_mg``) applies after rounding and is reported (``capped``).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from trdnav.core.courses.results import DoseCalculation
from trdnav.errors import InputError, Problem

MIN_WEIGHT_KG = 20.0
MAX_WEIGHT_KG = 350.0


def _fmt(x: float) -> str:
    return f"{x:.1f}" if x == round(x, 1) else f"{x:g}"


def weight_based_dose(
    mg_per_kg: float, weight_kg: float | None, max_mg: float | None = None
) -> DoseCalculation:
    """The dose for ``weight_kg``; a missing or implausible weight is an :class:`InputError`."""
    problems: list[Problem] = []
    if weight_kg is None:
        problems.append(
            Problem("weight_kg", "weight_missing", "a weight-based dose needs the weight")
        )
    elif not MIN_WEIGHT_KG < weight_kg <= MAX_WEIGHT_KG:
        problems.append(
            Problem(
                "weight_kg",
                "weight_out_of_range",
                f"weight must be above {MIN_WEIGHT_KG:g} and at most {MAX_WEIGHT_KG:g} kg",
            )
        )
    if not mg_per_kg > 0:
        problems.append(Problem("mg_per_kg", "dose_invalid", "mg/kg must be above 0"))
    if max_mg is not None and not max_mg > 0:
        problems.append(Problem("max_mg", "dose_invalid", "the cap must be above 0 mg"))
    if problems or weight_kg is None:
        raise InputError(problems)
    exact = Decimal(str(mg_per_kg)) * Decimal(str(weight_kg))
    mg = float(exact.quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))
    formula = f"{_fmt(mg_per_kg)} mg/kg × {weight_kg:.1f} kg = {mg:.1f} mg"
    capped = False
    if max_mg is not None and mg > max_mg:
        capped, mg = True, float(max_mg)
        formula += f", capped at {mg:.1f} mg"
    return DoseCalculation(
        mg=mg, weight_kg=float(weight_kg), mg_per_kg=mg_per_kg, capped=capped, formula=formula
    )
