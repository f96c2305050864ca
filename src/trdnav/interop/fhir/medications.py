"""MedicationRequest, MedicationStatement and MedicationDispense -> medication trials.

Each resource names a drug (RxNorm ingredient, clinical or branded drug; a Medication resource;
or only words) which is rolled up to an ingredient of the knowledge base. The resources of one
ingredient are one trial, split where use stops for more than :data:`GAP_DAYS`. Dose steps come
from successive dosages (requests and statements), or, when only dispenses are known, from
quantity x strength / days' supply. Adherence is the proportion of days covered by dispenses
(PDC), marked as estimated in the trial's note. A drug outside the knowledge base taken now goes
to ``current_medications`` (for interaction checks); a past one is reported as not mapped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from trdnav.core.date_range import add_days
from trdnav.core.history import Outcome
from trdnav.interop.fhir import codes
from trdnav.interop.fhir.bundle import Entry
from trdnav.interop.fhir.dosage import daily_mg
from trdnav.interop.fhir.drug_refs import DrugRef, Medications
from trdnav.interop.fhir.ledger import (
    Ledger,
    codings,
    extension,
    number,
    outcome_of,
    to_date,
)
from trdnav.knowledge.load import Knowledge
from trdnav.knowledge.schema import Drug

GAP_DAYS = 90  # a longer pause between two records of one drug starts a new trial
KINDS = ("MedicationRequest", "MedicationStatement", "MedicationDispense")
_KIND_ORDER = {"MedicationStatement": 0, "MedicationRequest": 1, "MedicationDispense": 2}


@dataclass
class Event:
    ref: str
    kind: str
    drug: Drug | None
    name: str
    start: date
    end: date | None = None  # explicit end of use
    supply_end: date | None = None
    steps: list[tuple[date, float]] = field(default_factory=list)
    active: bool = False
    outcome: Outcome | None = None
    notes: list[str] = field(default_factory=list)
    adherence: float | None = None
    augments: str | None = None
    serum_level: float | None = None
    response_lost_on: date | None = None
    days_supply: float | None = None
    sources: list[str] = field(default_factory=list)
    route: str | None = None

    @property
    def coverage_end(self) -> date:
        return max(d for d in (self.start, self.end, self.supply_end) if d is not None)


# --- one resource -> one event ------------------------------------------------------------------


def _annotations(resource: Any) -> list[str]:
    return [n.text for n in getattr(resource, "note", None) or [] if n.text]


def _extensions(ev: Event, resource: Any) -> None:
    ext = extension(resource, codes.EXT_ADHERENCE)
    if ext is not None and number(ext.valueDecimal) is not None:
        value = number(ext.valueDecimal)
        if value is not None and 0 <= value <= 1:
            ev.adherence = value
    ext = extension(resource, codes.EXT_AUGMENTS)
    if ext is not None and ext.valueString:
        ev.augments = ext.valueString
    ext = extension(resource, codes.EXT_SERUM_LEVEL)
    if ext is not None:
        ev.serum_level = number(ext.valueDecimal)
    ext = extension(resource, codes.EXT_RESPONSE_LOST_ON)
    if ext is not None:
        ev.response_lost_on, _ = to_date(ext.valueDate)


def _doses(
    dosages: list[Any], start: date, strength: float | None, ev: Event, ledger: Ledger
) -> tuple[date | None, str | None]:
    """Fill ``ev.steps`` from dosages; returns the latest bounds end and a reason if none."""
    bounds_end: date | None = None
    why: str | None = None
    for dosage in dosages:
        when = start
        bounds = (
            dosage.timing.repeat.boundsPeriod
            if (dosage.timing is not None and dosage.timing.repeat is not None)
            else None
        )
        if bounds is not None:
            b_start, _ = to_date(bounds.start)
            b_end, _ = to_date(bounds.end)
            when = b_start or start
            if b_end is not None and (bounds_end is None or b_end > bounds_end):
                bounds_end = b_end
        dose, reason = daily_mg(dosage, strength)
        if dose is None:
            why = reason
            continue
        ev.steps.append((when, dose.mg))
        if dose.assumption:
            ledger.assume(ev.ref, dose.assumption)
    return bounds_end, why


def _request(e: Entry, d: DrugRef, ledger: Ledger, today: date) -> Event | None:
    r = e.resource
    if r.status in ("cancelled", "entered-in-error", "draft"):
        ledger.skip(e.ref, r.status.replace("-", "_"), f"status {r.status}: not taken")
        return None
    if r.intent in ("proposal", "plan"):
        ledger.skip(e.ref, "not_an_order", f"intent {r.intent}: a suggestion, not a prescription")
        return None
    start, partial = to_date(r.authoredOn)
    bounds = _first_bounds(r.dosageInstruction)
    if start is None:
        start = bounds
        if start is None:
            ledger.skip(e.ref, "no_date", "neither authoredOn nor a dosage start date")
            return None
        ledger.assume(e.ref, "no authoredOn: the dosage's start date taken as the start")
    if partial:
        ledger.assume(e.ref, partial)
    ev = Event(
        e.ref,
        e.resource.get_resource_type(),
        d.drug,
        d.name or "",
        start,
        sources=[e.ref, *d.sources],
    )
    ev.active = r.status in ("active", "on-hold")
    if r.status == "unknown":
        ledger.assume(e.ref, "status unknown: taken as a past prescription")
    end, why = _doses(list(r.dosageInstruction or []), start, d.strength, ev, ledger)
    ev.end = end
    if not r.dosageInstruction:
        ledger.assume(
            e.ref,
            "no dosage: the dose of this prescription is unknown, so its "
            "trial cannot be judged adequate by dose",
        )
    elif not ev.steps:
        ledger.assume(e.ref, f"dose not read ({why}): the dose of this prescription is unknown")
    dr = r.dispenseRequest
    if dr is not None and dr.expectedSupplyDuration is not None:
        days = _days(dr.expectedSupplyDuration)
        if days:
            repeats = int(dr.numberOfRepeatsAllowed or 0)
            ev.supply_end = add_days(start, days * (1 + repeats))
    ev.outcome = _outcome(r.statusReason, e.ref, ledger)
    ev.notes = _annotations(r)
    _extensions(ev, r)
    return ev


def _statement(e: Entry, d: DrugRef, ledger: Ledger, today: date) -> Event | None:
    s = e.resource
    if s.status in ("entered-in-error", "not-taken", "intended"):
        what = {"intended": "intended, not started"}.get(s.status, s.status)
        ledger.skip(e.ref, s.status.replace("-", "_"), f"status {what}")
        return None
    start, partial = (
        to_date(s.effectivePeriod.start)
        if s.effectivePeriod is not None
        else to_date(s.effectiveDateTime)
    )
    end = to_date(s.effectivePeriod.end)[0] if s.effectivePeriod is not None else None
    if start is None:
        start = _first_bounds(s.dosage)
    if start is None:
        start, _ = to_date(s.dateAsserted)
        if start is None:
            ledger.skip(e.ref, "no_date", "no effective date, dosage start or dateAsserted")
            return None
        ledger.assume(e.ref, "no effective date: dateAsserted taken as the start")
    if partial:
        ledger.assume(e.ref, partial)
    ev = Event(
        e.ref,
        e.resource.get_resource_type(),
        d.drug,
        d.name or "",
        start,
        end=end,
        sources=[e.ref, *d.sources],
    )
    ev.active = s.status in ("active", "on-hold")
    if s.status == "unknown":
        ledger.assume(e.ref, "status unknown: taken as past use")
    bounds_end, why = _doses(list(s.dosage or []), start, d.strength, ev, ledger)
    if ev.end is None:
        ev.end = bounds_end
    if not ev.steps:
        ledger.assume(e.ref, f"dose not read ({why or 'no dosage'}): the dose is unknown")
    reasons = list(s.statusReason or [])
    for cc in reasons:
        ev.outcome = _outcome(cc, e.ref, ledger) or ev.outcome
    ev.notes = _annotations(s)
    _extensions(ev, s)
    return ev


def _dispense(e: Entry, d: DrugRef, ledger: Ledger, today: date) -> Event | None:
    x = e.resource
    if x.status not in ("completed", "unknown", None):
        ledger.skip(e.ref, "not_dispensed", f"status {x.status}: not handed over")
        return None
    start, partial = to_date(x.whenHandedOver)
    if start is None:
        start, partial = to_date(x.whenPrepared)
        if start is None:
            ledger.skip(e.ref, "no_date", "neither whenHandedOver nor whenPrepared")
            return None
        ledger.assume(e.ref, "no whenHandedOver: whenPrepared taken as the dispense date")
    if partial:
        ledger.assume(e.ref, partial)
    ev = Event(
        e.ref,
        e.resource.get_resource_type(),
        d.drug,
        d.name or "",
        start,
        sources=[e.ref, *d.sources],
    )
    days = number(x.daysSupply.value) if x.daysSupply is not None else None
    ev.days_supply = days if days and days > 0 else None
    if ev.days_supply:
        ev.supply_end = add_days(start, ev.days_supply)
    _doses(list(x.dosageInstruction or []), start, d.strength, ev, ledger)
    if not ev.steps and ev.days_supply and x.quantity is not None:
        qty = number(x.quantity.value)
        unit = (x.quantity.code or x.quantity.unit or "").lower()
        if qty is not None and unit == "mg":
            ev.steps.append((start, round(qty / ev.days_supply, 3)))
        elif qty is not None and d.strength is not None:
            mg = round(qty * d.strength / ev.days_supply, 3)
            ev.steps.append((start, mg))
            ledger.assume(
                e.ref,
                f"daily dose {mg:g} mg from quantity {qty:g} x {d.strength:g} "
                f"mg / {ev.days_supply:g} days' supply",
            )
    ev.active = ev.supply_end is not None and ev.supply_end >= today
    ev.notes = _annotations(x)
    _extensions(ev, x)
    return ev


def _first_bounds(dosages: Any) -> date | None:
    for dosage in dosages or []:
        t = dosage.timing
        if t is not None and t.repeat is not None and t.repeat.boundsPeriod is not None:
            when, _ = to_date(t.repeat.boundsPeriod.start)
            if when is not None:
                return when
    return None


def _days(q: Any) -> float | None:
    value = number(q.value)
    if value is None:
        return None
    unit = (q.code or q.unit or "d").lower()
    factor = {
        "d": 1,
        "day": 1,
        "days": 1,
        "wk": 7,
        "week": 7,
        "weeks": 7,
        "mo": 30,
        "month": 30,
        "months": 30,
    }.get(unit)
    return value * factor if factor else None


def _outcome(cc: Any, ref: str, ledger: Ledger) -> Outcome | None:
    if cc is None:
        return None
    outcome, assumption = outcome_of(cc)
    if assumption:
        ledger.assume(ref, assumption)
    return outcome


_READERS = {
    "MedicationRequest": _request,
    "MedicationStatement": _statement,
    "MedicationDispense": _dispense,
}


def read_events(entries: list[Entry], kb: Knowledge, ledger: Ledger, today: date) -> list[Event]:
    meds = Medications(kb, entries)
    events: list[Event] = []
    for e in entries:
        kind = e.resource.get_resource_type()
        if kind not in _READERS:
            continue
        d = meds.resolve(e.resource)
        if d.drug is None and d.name is None:
            shown = _codes_shown(e.resource)
            ledger.skip(
                e.ref,
                "unknown_drug",
                f"{shown}: not an RxNorm ingredient of the knowledge base, and no drug name "
                "is given in the coding's display or text",
            )
            continue
        if d.assumption:
            ledger.assume(e.ref, d.assumption)
        ev = _READERS[kind](e, d, ledger, today)
        if ev is not None:
            events.append(ev)
    for ref in meds.medications.values():
        ledger.skip(ref.ref, "not_referenced", "a Medication no imported resource refers to")
    return events


def _codes_shown(resource: Any) -> str:
    cc = getattr(resource, "medicationCodeableConcept", None)
    shown = [
        f"{'RxNorm' if codes.is_system(c.system, codes.RXNORM) else c.system} {c.code}"
        for c in codings(cc)
    ]
    if shown:
        return ", ".join(shown)
    ref = getattr(resource, "medicationReference", None)
    return f"medication {ref.reference}" if ref is not None else "no medication code"
