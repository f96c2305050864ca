"""The esketamine REMS monitoring data: one row per completed session (the patient monitoring
form: dose, blood pressure before and highest after, lowest MOAA/S, highest CADSS, adverse
events, observation time, whether the patient could be discharged per the protocol)."""

from __future__ import annotations

from trdnav.core.courses.model import Course
from trdnav.core.courses.results import RemsRow
from trdnav.core.courses.thresholds import evaluate_session
from trdnav.errors import InputError, Problem
from trdnav.knowledge.protocols import Protocol


def rems_rows(protocol: Protocol, course: Course) -> list[RemsRow]:
    """Rows for the completed sessions, by session number; a non-REMS protocol is an error."""
    if not protocol.rems:
        raise InputError([Problem("protocol_id", "not_rems", f"{protocol.id} is not under a REMS")])
    rows: list[RemsRow] = []
    for r in sorted((s for s in course.sessions if s.status == "done"), key=lambda s: s.number):
        post = r.post_vitals
        moaas = [s.total for s in r.scales if s.instrument == "moaas"]
        cadss = [s.total for s in r.scales if s.instrument == "cadss"]
        observed = None
        if r.dose_time is not None and r.observed_until is not None:
            try:
                observed = int((r.observed_until - r.dose_time).total_seconds() // 60)
            except TypeError:
                observed = None
        rows.append(
            RemsRow(
                session=r.number,
                on=r.on,
                dose_mg=r.dose_mg,
                pre_systolic=r.pre_vitals.systolic if r.pre_vitals else None,
                pre_diastolic=r.pre_vitals.diastolic if r.pre_vitals else None,
                max_post_systolic=max((v.systolic for v in post), default=None),
                max_post_diastolic=max((v.diastolic for v in post), default=None),
                sedation=min(moaas) if moaas else None,
                dissociation=max(cadss) if cadss else None,
                adverse_events=tuple(f"{a.term} ({a.severity})" for a in r.adverse_events),
                observed_minutes=observed,
                discharged_ok=evaluate_session(protocol, course, r).may_discharge,
            )
        )
    return rows
