"""Medication events of one ingredient -> trials of the history (dose steps, stop, adherence).

Dose steps: each dosage of a request or statement is a step from its date (its
``timing.repeat.boundsPeriod.start``, else the resource's date); with no dosage anywhere in the
trial, the dispenses give the steps. Equal successive doses are one step.

Stop: the trial is ongoing when its latest prescription or statement is active (or, with only
dispenses, when the last supply lasts to today); otherwise it stops at the latest explicit end
(statement period, dosage bounds), else at the end of the supply, else at the last record's date
(an assumption, reported).

Adherence (when no explicit value): the proportion of days covered (PDC) by dispenses from the
first dispense to the trial's end, a supply collected early counted from the end of the previous
one; it is marked as estimated in the trial's note.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from trdnav.core.date_range import add_days
from trdnav.interop.fhir.ledger import Ledger
from trdnav.interop.fhir.medications import _KIND_ORDER, GAP_DAYS, Event
from trdnav.knowledge.load import Knowledge


def _sort_key(ev: Event) -> tuple[date, int, str]:
    return ev.start, _KIND_ORDER[ev.kind], ev.ref


def split_trials(events: list[Event]) -> list[list[Event]]:
    """Group one drug's events into trials separated by more than GAP_DAYS without cover."""
    out: list[list[Event]] = []
    current: list[Event] = []
    cover: date | None = None
    for ev in sorted(events, key=_sort_key):
        if cover is not None and ev.start > add_days(cover, GAP_DAYS):
            out.append(current)
            current = []
            cover = None
        current.append(ev)
        cover = ev.coverage_end if cover is None else max(cover, ev.coverage_end)
    if current:
        out.append(current)
    return out


def pdc(dispenses: list[Event], end: date) -> tuple[float, int, int] | None:
    """(proportion of days covered, days covered, days in the window) or None."""
    fills = sorted((d for d in dispenses if d.days_supply), key=_sort_key)
    if not fills:
        return None
    first = fills[0].start
    window = (end - first).days + 1
    if window <= 0:
        return None
    covered = 0
    cursor = first
    for f in fills:
        begin = max(f.start, cursor)
        stop = add_days(begin, f.days_supply or 0)
        lo, hi = begin, min(stop, add_days(end, 1))
        if hi > lo:
            covered += (hi - lo).days
        cursor = stop
    covered = min(covered, window)
    return covered / window, covered, window


def _stop(trial: list[Event], today: date) -> tuple[date | None, str | None]:
    prescribed = [e for e in trial if e.kind != "MedicationDispense"]
    if prescribed:
        last = max(prescribed, key=_sort_key)
        if last.active and (last.end is None or last.end >= today):
            return None, None
        ends = [e.end for e in trial if e.end is not None]
        if ends:
            return max(ends), None
        supplies = [e.supply_end for e in trial if e.supply_end is not None]
        if supplies:
            return max(supplies), None
        last_date = max(e.start for e in trial)
        return last_date, (
            f"stopped ({last.kind} {last.ref.split('/')[-1]} not active) with no end date: "
            f"the last record's date {last_date.isoformat()} taken as the stop"
        )
    last_end = max(e.coverage_end for e in trial)
    if last_end >= today:
        return None, None
    return last_end, None


def _steps(trial: list[Event], stop: date | None) -> list[dict[str, Any]]:
    prescribed = [e for e in trial if e.kind != "MedicationDispense" and e.steps]
    source = prescribed or [e for e in trial if e.steps]
    dated: dict[date, float] = {}
    for ev in sorted(source, key=_sort_key):
        for when, mg in ev.steps:
            dated[when] = mg
    steps: list[dict[str, Any]] = []
    start = min(e.start for e in trial)
    last_mg: float | None = None
    for when in sorted(dated):
        mg = dated[when]
        when = max(when, start)
        if stop is not None and when > stop:
            continue
        if mg == last_mg:
            continue
        if steps and steps[-1]["from"] == when.isoformat():
            steps[-1]["mg_per_day"] = mg
        else:
            steps.append({"from": when.isoformat(), "mg_per_day": mg})
        last_mg = mg
    return steps


def _fmt(value: float) -> str:
    return f"{value:g}"


def trial_items(events: list[Event], kb: Knowledge, ledger: Ledger, today: date) -> None:
    """Add one history item per trial (medication, esketamine or ketamine)."""
    by_drug: dict[str, list[Event]] = {}
    for ev in events:
        if ev.drug is not None:
            by_drug.setdefault(ev.drug.id, []).append(ev)
    for drug_id in sorted(by_drug):
        drug = kb.drugs[drug_id]
        for trial in split_trials(by_drug[drug_id]):
            names = [e.name for e in sorted(trial, key=_sort_key) if e.name]
            name = names[0] if names else drug.name
            _trial_item(drug_id, name, drug.dose_unit, trial, ledger, today)


def _trial_item(
    drug_id: str, name: str, dose_unit: str, trial: list[Event], ledger: Ledger, today: date
) -> None:
    start = min(e.start for e in trial)
    stop, stop_note = _stop(trial, today)
    if stop is not None and stop > today:
        stop = None
    if stop is not None and stop < start:
        stop = start
    sources = [ref for e in sorted(trial, key=_sort_key) for ref in e.sources]
    refs = [e.ref for e in trial]
    data: dict[str, Any] = {"start": start.isoformat()}
    if stop is not None:
        data["stop"] = stop.isoformat()
    outcomes = [e for e in sorted(trial, key=_sort_key) if e.outcome is not None]
    if outcomes and outcomes[-1].outcome is not None:
        data["outcome"] = outcomes[-1].outcome.value
    notes = list(dict.fromkeys(n for e in sorted(trial, key=_sort_key) for n in e.notes))
    if dose_unit == "mg/session":
        if drug_id not in ("esketamine", "ketamine"):
            for ref in refs:
                ledger.skip(ref, "unsupported_drug", f"{name} per session is not a history type")
            return
        data["type"] = drug_id
        doses = [mg for e in trial for _, mg in e.steps]
        if drug_id == "esketamine" and doses:
            data["mg_per_session"] = max(doses)
        if drug_id == "ketamine":
            routes = [e.route for e in trial if e.route]
            data["route"] = routes[-1] if routes else "other"
        item = ledger.add("treatments", data, sources, (start, 1, drug_id))
        if notes:
            data["note"] = "; ".join(notes)
        if stop_note:
            ledger.assume(refs[-1], stop_note, item)
        return
    data = {"type": "medication", "drug": name, **data}
    steps = _steps(trial, stop)
    if steps:
        data["doses"] = steps
    explicit = [e for e in trial if e.adherence is not None]
    dispenses = [e for e in trial if e.kind == "MedicationDispense"]
    item = ledger.add("treatments", data, sources, (start, 0, drug_id))
    if explicit:
        data["adherence"] = explicit[-1].adherence
    else:
        estimate = pdc(dispenses, stop or today)
        if estimate is not None:
            value, covered, window = estimate
            data["adherence"] = round(value, 2)
            fills = len([d for d in dispenses if d.days_supply])
            note = (
                f"adherence {value:.2f} estimated from pharmacy dispenses (proportion of days "
                f"covered: {covered} of {window} days, {fills} dispense"
                f"{'s' if fills != 1 else ''})"
            )
            notes.append(note)
            ledger.assume(dispenses[0].ref, note, item)
    for attr in ("augments", "serum_level", "response_lost_on"):
        values = [
            getattr(e, attr) for e in sorted(trial, key=_sort_key) if getattr(e, attr) is not None
        ]
        if values:
            v = values[-1]
            data[attr] = v.isoformat() if isinstance(v, date) else v
    if notes:
        data["note"] = "; ".join(notes)
    if stop_note:
        ledger.assume(refs[-1], stop_note, item)
    if not steps:
        ledger.assume(
            refs[0], "no dose could be read for this trial: its adequacy by dose is unknown", item
        )


def current_medication_items(events: list[Event], ledger: Ledger, today: date) -> None:
    """Drugs outside the knowledge base: taken now -> current_medications; past -> reported."""
    by_name: dict[str, list[Event]] = {}
    for ev in events:
        if ev.drug is None:
            by_name.setdefault(ev.name, []).append(ev)
    for name in sorted(by_name):
        evs = sorted(by_name[name], key=_sort_key)
        stop, _ = _stop(evs, today)
        if stop is not None:
            for ev in evs:
                ledger.skip(
                    ev.ref,
                    "past_other_drug",
                    f"{name!r} is not a drug of the knowledge base and is no longer taken: the "
                    "history keeps only drugs taken now outside the treatment trials",
                )
            continue
        data: dict[str, Any] = {"drug": name, "start": evs[0].start.isoformat()}
        doses = [mg for e in evs for _, mg in e.steps]
        if doses:
            data["mg_per_day"] = doses[-1]
        sources = [r for e in evs for r in e.sources]
        item = ledger.add("current_medications", data, sources, (evs[0].start, name))
        ledger.assume(
            evs[0].ref,
            f"{name!r} is not a drug of the knowledge base: kept as a "
            "current medication (for interaction checks), not as a trial",
            item,
        )


def infer_augments(ledger: Ledger, kb: Knowledge) -> None:
    """An augmentation-only drug started while one antidepressant trial ran: it augments it."""
    meds = [
        i for i in ledger.items if i.section == "treatments" and i.data.get("type") == "medication"
    ]
    meds = [
        i
        for i in meds
        if isinstance(i.data.get("drug"), str) and isinstance(i.data.get("start"), str)
    ]
    for item in meds:
        drug = kb.resolve_drug(item.data["drug"])
        if drug is None or "augments" in item.data or kb.is_antidepressant(drug):
            continue
        start = date.fromisoformat(item.data["start"])
        hosts = []
        for other in meds:
            od = kb.resolve_drug(other.data["drug"])
            if other is item or od is None or not kb.is_antidepressant(od):
                continue
            o_start = date.fromisoformat(other.data["start"])
            o_stop = other.data.get("stop")
            if o_start <= start and (
                not isinstance(o_stop, str) or date.fromisoformat(o_stop) > start
            ):
                hosts.append(other.data["drug"])
        if len(hosts) == 1:
            item.data["augments"] = hosts[0]
            ledger.assume(
                item.sources[0],
                f"{item.data['drug']} started while {hosts[0]} was "
                f"taken: recorded as augmenting {hosts[0]}",
                item,
            )
