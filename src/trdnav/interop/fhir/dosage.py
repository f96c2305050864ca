"""A FHIR ``Dosage`` (structured or free text) as a total daily dose in mg.

Structured: ``doseAndRate.doseQuantity`` (mg, g, µg, or tablets/capsules times the product's
strength) times ``timing.repeat`` frequency per period, or ``timing.code`` (BID, TID…). Free
text (``"sertraline 50 mg, 1 tablet twice daily"``): the mg amount or the number of tablets, and
the frequency words; a dose read from text is always returned with an assumption.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from trdnav.interop.fhir.ledger import codings, number

_PER_DAY = {
    "s": 86400.0,
    "min": 1440.0,
    "h": 24.0,
    "d": 1.0,
    "wk": 1 / 7,
    "mo": 1 / 30,
    "a": 1 / 365,
}
_TIMING_CODES = {
    "QD": 1.0,
    "AM": 1.0,
    "PM": 1.0,
    "QAM": 1.0,
    "QPM": 1.0,
    "QHS": 1.0,
    "HS": 1.0,
    "BID": 2.0,
    "TID": 3.0,
    "QID": 4.0,
    "QOD": 0.5,
    "Q4H": 6.0,
    "Q6H": 4.0,
    "Q8H": 3.0,
    "Q12H": 2.0,
    "WK": 1 / 7,
}
_MASS = {
    "mg": 1.0,
    "milligram": 1.0,
    "milligrams": 1.0,
    "g": 1000.0,
    "ug": 0.001,
    "mcg": 0.001,
    "µg": 0.001,
    "microgram": 0.001,
}
_UNITS = (
    "tab",
    "tabs",
    "tablet",
    "tablets",
    "cap",
    "caps",
    "capsule",
    "capsules",
    "{tbl}",
    "{tablet}",
    "{capsule}",
    "{cap}",
    "1",
    "each",
    "ea",
    "dose",
    "pill",
    "pills",
    "patch",
    "{patch}",
)


@dataclass(frozen=True)
class DailyDose:
    mg: float
    assumption: str | None = None


def _per_day(timing: Any) -> tuple[float, str | None]:
    if timing is None:
        return 1.0, "no timing: taken once a day"
    repeat = timing.repeat
    if repeat is not None and (repeat.frequency is not None or repeat.period is not None):
        freq = float(repeat.frequency or 1)
        period = number(repeat.period) or 1.0
        unit = repeat.periodUnit or "d"
        return freq * _PER_DAY.get(unit, 1.0) / period, None
    for c in codings(timing.code):
        if c.code and c.code.upper() in _TIMING_CODES:
            return _TIMING_CODES[c.code.upper()], None
    words = timing.code.text if timing.code is not None and timing.code.text else None
    if words:
        per = frequency_in_text(words)
        if per is not None:
            return per, f"frequency read from the words {words!r}"
    return 1.0, "no frequency: taken once a day"


def _amount(q: Any, strength: float | None) -> tuple[float | None, str | None]:
    value = number(q.value)
    if value is None:
        return None, None
    unit = (q.code or q.unit or "").strip()
    low = unit.lower()
    if low in _MASS:
        return value * _MASS[low], None
    if low.rstrip(".") in _UNITS or low == "":
        if strength is None:
            return None, "a dose in tablets/capsules, but the product's strength is unknown"
        note = None if low else "a dose with no unit: read as tablets/capsules"
        return value * strength, note
    return None, f"a dose in {unit!r}, not in mg or tablets"


def _rate(dr: Any) -> float | None:
    """A rate in mg per time: ``rateRatio`` (mg / 1 d) or ``rateQuantity`` (mg/d, mg/h)."""
    if dr.rateRatio is not None and dr.rateRatio.numerator is not None:
        num, den = dr.rateRatio.numerator, dr.rateRatio.denominator
        value = number(num.value)
        unit = (num.code or num.unit or "").lower()
        if value is None or unit not in _MASS:
            return None
        per_value = number(den.value) if den is not None else 1.0
        per_unit = ((den.code or den.unit or "d") if den is not None else "d").lower()
        per_day = {"d": 1.0, "day": 1.0, "h": 24.0, "hr": 24.0, "wk": 1 / 7}.get(per_unit)
        if not per_value or per_day is None:
            return None
        return value * _MASS[unit] * per_day / per_value
    if dr.rateQuantity is not None:
        value = number(dr.rateQuantity.value)
        unit = (dr.rateQuantity.code or dr.rateQuantity.unit or "").lower().replace(" ", "")
        factor = {"mg/d": 1.0, "mg/day": 1.0, "mg/24h": 1.0, "mg/h": 24.0}.get(unit)
        if value is not None and factor is not None:
            return value * factor
    return None


def daily_mg(dosage: Any, strength: float | None) -> tuple[DailyDose | None, str | None]:
    """The daily dose of one Dosage, or None with the reason it could not be read."""
    notes: list[str] = []
    dose = None
    for dr in dosage.doseAndRate or []:
        rate = _rate(dr)
        if rate is not None:
            return DailyDose(round(rate, 3), None), None
        if dr.doseQuantity is not None:
            dose = dr.doseQuantity
            break
        if dr.doseRange is not None and dr.doseRange.low is not None:
            dose = dr.doseRange.low
            notes.append("a dose range: its low end taken")
            break
    if dose is None:
        if dosage.text:
            parsed = parse_dose_text(dosage.text, strength)
            if parsed is not None:
                return parsed, None
            return None, f"the free-text dosage {dosage.text!r} gives no dose in mg or tablets"
        return None, "the dosage gives no dose"
    amount, why = _amount(dose, strength)
    if amount is None:
        return None, why
    if why:
        notes.append(why)
    per, why_per = _per_day(dosage.timing)
    if why_per and dosage.text:
        text_per = frequency_in_text(dosage.text)
        if text_per is not None:
            per, why_per = text_per, f"frequency read from the text {dosage.text!r}"
    if why_per:
        notes.append(why_per)
    if dosage.asNeededBoolean:
        notes.append("as needed: taken as if scheduled")
    return DailyDose(round(amount * per, 3), "; ".join(notes) or None), None


_WORD_NUMBERS = {
    "one": 1.0,
    "two": 2.0,
    "three": 3.0,
    "four": 4.0,
    "half": 0.5,
    "½": 0.5,
    "1/2": 0.5,
}
_FREQ: tuple[tuple[str, float], ...] = (
    (r"\bq\.?i\.?d\b|four times", 4.0),
    (r"\bt\.?i\.?d\b|three times|thrice", 3.0),
    (r"\bb\.?i\.?d\b|twice|two times|every 12 ?h", 2.0),
    (r"every other day|\bq\.?o\.?d\b|alternate days", 0.5),
    (r"weekly|once a week|every week", 1 / 7),
    (
        r"\bq\.?d\b|once|daily|a day|per day|every (morning|evening|night|day)|at (bed ?time|night)"
        r"|nightly|\bqhs\b|\bqam\b|\bmane\b|\bnocte\b|each (morning|evening|night)",
        1.0,
    ),
)


def frequency_in_text(text: str) -> float | None:
    low = text.lower()
    for pattern, per in _FREQ:
        if re.search(pattern, low):
            return per
    return None


def parse_dose_text(text: str, strength: float | None) -> DailyDose | None:
    """``"50 mg once daily"``, ``"1 tab twice a day"``, ``"150mg mane"`` -> mg/day."""
    low = text.lower().replace(",", " ")
    per = frequency_in_text(low)
    assumed = "" if per is not None else "; no frequency in the text: taken once a day"
    per = 1.0 if per is None else per
    tabs = re.search(
        r"(\d+(?:\.\d+)?|one|two|three|four|half|½|1/2)\s*(?:x\s*)?(tab|tablet|cap|capsule|pill)s?",
        low,
    )
    mg = re.search(r"(\d+(?:\.\d+)?)\s*(mg|milligrams?|mcg|µg|g)\b", low)
    if tabs is not None and strength is not None:
        n = _WORD_NUMBERS.get(tabs.group(1)) or float(tabs.group(1))
        return DailyDose(
            round(n * strength * per, 3),
            f"dose read from the free text {text!r} ({tabs.group(0)} of {strength:g} mg)" + assumed,
        )
    if mg is not None:
        amount = float(mg.group(1)) * _MASS.get(mg.group(2), 1.0)
        return DailyDose(round(amount * per, 3), f"dose read from the free text {text!r}" + assumed)
    return None


def strength_in_text(text: str) -> float | None:
    """``"sertraline 50 MG Oral Tablet"`` -> 50 (a per-volume or per-hour strength is not one)."""
    m = re.search(r"(\d+(?:\.\d+)?)\s*mg\b(?!\s*/\s*(ml|actuat|hr|h\b|kg))", text, re.IGNORECASE)
    return float(m.group(1)) if m else None
