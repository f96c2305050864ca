"""The criteria read from the record's other rows: psychotherapy, age, exclusions, concurrent
treatment, and attestations (scores: :mod:`.severity`; medication trials: :mod:`.trials`)."""

from __future__ import annotations

from datetime import date

from trdnav.core.checks import resolve_condition_statuses
from trdnav.core.history import Condition, Medication, Outcome, Psychotherapy, Severity
from trdnav.core.prior_auth.context import (
    TREATMENTS,
    Context,
    iso,
    outside_window,
    plural,
    result,
)
from trdnav.core.prior_auth.model import CriterionResult, Evidence
from trdnav.core.prior_auth.trials import FAILED, failed_drugs
from trdnav.knowledge.payers import (
    Age,
    Attestation,
    ConcurrentTreatment,
    Exclusions,
    PsychotherapyTrial,
)

MODALITIES = {
    "cbt": "CBT",
    "cbasp": "CBASP",
    "ipt": "IPT",
    "behavioral_activation": "behavioural activation",
    "dbt": "DBT",
    "psychodynamic": "psychodynamic therapy",
    "mbct": "MBCT",
    "other": "other psychotherapy",
}
DIAGNOSES = {
    "mdd_single": "major depressive disorder, single episode",
    "mdd_recurrent": "major depressive disorder, recurrent",
    "persistent_depressive_disorder": "persistent depressive disorder",
    "bipolar_i_depression": "bipolar I depression",
    "bipolar_ii_depression": "bipolar II depression",
    "other": "other diagnosis",
}
# A term's own status that means the condition is there but not active (substance use
# "remission"): shown, not counted as an exclusion of *active* use.
_INACTIVE_STATUSES = frozenset({"remission"})


# --- psychotherapy -------------------------------------------------------------------------------


def _therapy(ctx: Context, c: PsychotherapyTrial, t: Psychotherapy) -> tuple[list[str], list[str]]:
    """(reasons it does not qualify, data it lacks)."""
    fails: list[str] = []
    lacks: list[str] = []
    if c.modalities and t.modality not in c.modalities:
        accepted = ", ".join(MODALITIES[m] for m in c.modalities)
        fails.append(f"{MODALITIES[t.modality]} is not among the modalities accepted ({accepted})")
    elif not c.modalities and t.modality == "other":
        lacks.append("modality recorded as 'other': name the therapy (an evidence-based one)")
    if c.min_sessions is not None:
        if t.sessions is None:
            lacks.append("dates recorded, number of sessions missing")
        elif t.sessions < c.min_sessions:
            fails.append(f"{t.sessions} sessions; {c.min_sessions} needed")
    if c.min_weeks is not None:
        end = min(t.stop or ctx.request_date, ctx.request_date)
        weeks = (end - t.start).days / 7
        if weeks + 1e-9 < c.min_weeks:
            so_far = " so far" if t.stop is None or t.stop > ctx.request_date else ""
            fails.append(f"{weeks:.1f} weeks{so_far}; {c.min_weeks:g} needed")
    if c.failure_required:
        label = t.outcome.value.replace("_", " ")
        if t.outcome is Outcome.UNKNOWN:
            lacks.append("outcome not recorded (was it an inadequate response?)")
        elif t.outcome not in FAILED:
            fails.append(f"outcome {label}, not an inadequate response")
    return fails, lacks


def check_psychotherapy(ctx: Context, c: PsychotherapyTrial) -> CriterionResult:
    rows: list[Evidence] = []
    missing: list[str] = []
    met = False
    for i, t in enumerate(ctx.history.treatments):
        if not isinstance(t, Psychotherapy):
            continue
        name = MODALITIES[t.modality]
        stop = iso(t.stop) if t.stop else "ongoing"
        sessions = "sessions not recorded" if t.sessions is None else plural(t.sessions, "session")
        summary = (
            f"{name}, {iso(t.start)} to {stop}, {sessions}, outcome "
            f"{t.outcome.value.replace('_', ' ')}"
        )
        fails, lacks = _therapy(ctx, c, t)
        away = outside_window(ctx, c.window, t.start, t.stop)
        counts = not away and not fails and not lacks
        why = away or "; ".join(fails) or ("lacks data: " + "; ".join(lacks) if lacks else None)
        if not away and not fails:
            missing.extend(f"psychotherapy ({name}, {iso(t.start)}): {x}" for x in lacks)
        met = met or counts
        rows.append(
            Evidence(
                kind="psychotherapy",
                ref=f"treatments[{i}]",
                on=t.start,
                summary=summary,
                counts=counts,
                why_not=why,
            )
        )
    if met:
        return result(c, "met", "a psychotherapy trial meets the policy's terms.", rows)
    if missing:
        return result(
            c, "missing", "a psychotherapy trial on record lacks data to decide it.", rows, missing
        )
    if not rows:
        return result(
            c,
            "not_met",
            "no psychotherapy recorded (record any trial given: modality, dates, sessions, "
            "outcome).",
        )
    return result(c, "not_met", "no psychotherapy trial on record meets the policy's terms.", rows)


# --- age -----------------------------------------------------------------------------------------


def age_on(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def check_age(ctx: Context, c: Age) -> CriterionResult:
    if c.min_years is not None and c.max_years is not None:
        need = f"{c.min_years} to {c.max_years} years"
    elif c.min_years is not None:
        need = f"{c.min_years} years or older"
    elif c.max_years is not None:
        need = f"{c.max_years} years or younger"
    else:
        need = "any age"
    born = ctx.history.patient.birth_date
    if born is None:
        return result(
            c, "missing", f"birth date not recorded; {need} needed.", (), ["patient's birth date"]
        )
    years = age_on(born, ctx.request_date)
    ok = (c.min_years is None or years >= c.min_years) and (
        c.max_years is None or years <= c.max_years
    )
    row = Evidence(
        kind="patient",
        ref="patient.birth_date",
        on=born,
        summary=f"born {iso(born)}: {years} years on {iso(ctx.request_date)}",
        counts=ok,
        why_not=None if ok else f"{need} needed",
    )
    reason = f"{years} years old on the request date; {need} needed."
    return result(c, "met" if ok else "not_met", reason, [row])


# --- exclusions ----------------------------------------------------------------------------------


def _present(ctx: Context, cond: Condition) -> Condition | None:
    """The condition as the core reads its status (None: not counted, e.g. resolved)."""
    one = ctx.history.model_copy(update={"conditions": (cond,)})
    resolved, _ = resolve_condition_statuses(one, ctx.kb)
    return resolved.conditions[0] if resolved.conditions else None


def check_exclusions(ctx: Context, c: Exclusions) -> CriterionResult:
    episode = ctx.history.episode
    hits: list[str] = []
    rows: list[Evidence] = []
    diagnosis = DIAGNOSES[episode.diagnosis.value]
    if episode.diagnosis.value in c.diagnoses:
        hits.append(diagnosis)
        rows.append(
            Evidence(
                kind="patient",
                ref="episode.diagnosis",
                on=episode.onset,
                summary=f"episode diagnosis: {diagnosis}",
                counts=False,
                why_not="an excluded diagnosis",
            )
        )
    if c.psychotic_features and episode.severity is Severity.SEVERE_PSYCHOTIC:
        hits.append("psychotic features")
        rows.append(
            Evidence(
                kind="patient",
                ref="episode.severity",
                on=episode.onset,
                summary="episode severity: severe with psychotic features",
                counts=False,
                why_not="psychotic features are an exclusion",
            )
        )
    for i, cond in enumerate(ctx.history.conditions):
        if cond.name not in c.conditions:
            continue
        term = ctx.kb.conditions.get(cond.name)
        label = term.label if term else cond.name
        shown = f"{label}" + (f" ({cond.status})" if cond.status else "")
        kept = _present(ctx, cond)
        status = None if kept is None else (kept.status or (term.default_status if term else None))
        if kept is None:
            why = f"not counted: status {cond.status!r} (not present)"
        elif status in _INACTIVE_STATUSES:
            why = f"status {status}: not active"
        else:
            hits.append(label)
            why = "an excluded condition"
        rows.append(
            Evidence(
                kind="condition", ref=f"conditions[{i}]", summary=shown, counts=False, why_not=why
            )
        )
    if hits:
        return result(c, "not_met", f"excluded: {', '.join(hits)}.", rows)
    n = len(ctx.history.conditions)
    checked = f"episode diagnosis {diagnosis}"
    if c.psychotic_features:
        checked += ", no psychotic features"
    rows.insert(
        0,
        Evidence(
            kind="patient",
            ref="episode",
            on=episode.onset,
            summary=f"{checked}; {plural(n, 'condition')} on record",
        ),
    )
    return result(
        c,
        "met",
        f"no excluded diagnosis or condition on record ({checked}; "
        f"{plural(n, 'condition')} recorded, none excluded).",
        rows,
    )


# --- concurrent treatment ------------------------------------------------------------------------


def check_concurrent(ctx: Context, c: ConcurrentTreatment) -> CriterionResult:
    day = ctx.request_date
    verdicts = {v.index: v for v in ctx.assessment.trials}
    failed = failed_drugs(ctx)
    barred: list[str] = []
    oral: list[str] = []
    oral_failed: list[str] = []
    rows: list[Evidence] = []
    for i, t in enumerate(ctx.history.treatments):
        if t.start > day or (t.stop is not None and t.stop <= day):
            continue
        kind: str = t.type
        v = verdicts.get(i)
        if isinstance(t, Medication) and v is not None:
            name = ctx.kb.drugs[v.drug].name
            if v.drug in ("esketamine", "ketamine"):
                kind = v.drug  # esketamine or ketamine recorded as a medication
        else:
            name = TREATMENTS[t.type]
        counts, why = True, None
        if kind in c.barred:
            barred.append(f"{name} (treatments[{i}])")
            counts, why = False, "not allowed at the same time"
        elif (
            c.requires_oral_antidepressant
            and v is not None
            and _oral_antidepressant(ctx, v.drug, v.role)
        ):
            if c.oral_antidepressant_not_failed and v.drug in failed:
                oral_failed.append(name)
                counts, why = False, "an antidepressant that already failed"
            else:
                oral.append(name)
        rows.append(
            Evidence(
                kind="treatment",
                ref=f"treatments[{i}]",
                on=t.start,
                summary=f"{name}, since {iso(t.start)}, ongoing on {iso(day)}",
                counts=counts,
                why_not=why,
            )
        )
    if barred:
        return result(
            c,
            "not_met",
            f"ongoing on {iso(day)} and barred by the policy: {', '.join(barred)}.",
            rows,
        )
    if c.requires_oral_antidepressant and not oral:
        if oral_failed:
            return result(
                c,
                "not_met",
                f"the oral antidepressant ongoing on {iso(day)} "
                f"({', '.join(oral_failed)}) already failed; the policy needs one "
                "not already failed.",
                rows,
            )
        return result(
            c,
            "not_met",
            f"no oral antidepressant ongoing on {iso(day)} (record the "
            "antidepressant to be taken alongside, with its start date).",
            rows,
        )
    parts = []
    if oral:
        parts.append(f"oral antidepressant ongoing: {', '.join(oral)}")
    if c.barred:
        none = " or ".join(TREATMENTS[b] for b in c.barred)
        parts.append(f"no {none} ongoing on {iso(day)}")
    reason = "; ".join(parts) or "nothing required or barred alongside"
    return result(c, "met", f"{reason}.", rows)


def _oral_antidepressant(ctx: Context, drug_id: str, role: str) -> bool:
    drug = ctx.kb.drugs[drug_id]
    return role in ("antidepressant", "combination") and drug.dose_unit == "mg/day"


# --- attestation ---------------------------------------------------------------------------------


def check_attestation(ctx: Context, c: Attestation) -> CriterionResult:
    return result(c, "missing", "to be confirmed by the clinician", (), [c.item], attestation=True)
