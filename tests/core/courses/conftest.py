from __future__ import annotations

from datetime import date, datetime
from typing import Any

from trdnav.core.courses.model import Course, Scale, SessionRecord, Vitals
from trdnav.knowledge.load import default_knowledge

KB = default_knowledge()
START = date(2024, 6, 3)  # a Monday


def a_course(protocol_id: str, **kw: Any) -> Course:
    p = KB.protocols[protocol_id]
    fields: dict[str, Any] = {
        "id": "c1",
        "patient_id": "p1",
        "protocol_id": p.id,
        "treatment": p.treatment,
        "start": START,
        "status": "active",
    }
    fields.update(kw)
    return Course(**fields)


def at(h: int, m: int, day: date = START) -> datetime:
    return datetime(day.year, day.month, day.day, h, m)


def esketamine_record(
    systolic: int = 128,
    diastolic: int = 80,
    post: tuple[tuple[int, int, int], ...] = ((40, 130, 82),),
    number: int = 1,
    **kw: Any,
) -> SessionRecord:
    """Dose at 09:10; post = (minutes, systolic, diastolic)."""
    fields: dict[str, Any] = {
        "number": number,
        "status": "done",
        "on": START,
        "pre_checks": {
            "fasted_2h": True,
            "no_liquids_30min": True,
            "no_nasal_decongestant_1h": True,
            "transport_arranged": True,
        },
        "pre_vitals": Vitals(at=at(9, 0), systolic=systolic, diastolic=diastolic, heart_rate=72),
        "dose_mg": 56,
        "dose_time": at(9, 10),
        "route": "intranasal",
        "post_vitals": tuple(
            Vitals(
                at=at(9 + (10 + m) // 60, (10 + m) % 60),
                minutes_after_dose=m,
                systolic=s,
                diastolic=d,
                heart_rate=75,
            )
            for m, s, d in post
        ),
        "observed_until": at(11, 15),
        "discharge_criteria_met": {
            "bp_decreasing": True,
            "clinically_stable": True,
            "not_driving": True,
        },
        "transport": "driven home by partner",
    }
    fields.update(kw)
    return SessionRecord(**fields)


def ketamine_record(weight: float | None = 82, **kw: Any) -> SessionRecord:
    fields: dict[str, Any] = {
        "number": 1,
        "status": "done",
        "on": START,
        "pre_checks": {"fasted": True, "escort_home": True},
        "pre_vitals": Vitals(at=at(9, 0), systolic=125, diastolic=80, heart_rate=70, spo2=98),
        "weight_kg": weight,
        "dose_mg": 41.0,
        "dose_time": at(9, 10),
        "route": "intravenous",
        "post_vitals": tuple(
            Vitals(
                at=at(9, 10 + m),
                minutes_after_dose=m,
                systolic=130,
                diastolic=80,
                heart_rate=75,
                spo2=97,
            )
            for m in (15, 30, 45)
        ),
        "scales": (
            Scale(instrument="cadss", minutes_after_dose=40, total=12),
            Scale(instrument="moaas", minutes_after_dose=40, total=5),
        ),
        "observed_until": at(11, 0),
        "discharge_criteria_met": {
            k: True
            for k in (
                "vitals_near_baseline",
                "dissociation_resolved",
                "alert_oriented",
                "ambulates_steadily",
                "accompanied",
            )
        },
        "transport": "partner",
    }
    fields.update(kw)
    return SessionRecord(**fields)
