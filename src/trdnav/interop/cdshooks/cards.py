"""Cards (CDS Hooks 2.0 "Card Attributes") from an assessment, and from draft orders.

Every verdict comes from the core: ``assess`` for the patient, ``safety.screen_option`` for an
order's contraindications, interactions and MAOI washouts, ``adequacy.assess_trial`` for the
adequate minimum dose of the ordered drug. Nothing here decides a rule; it words the results.
"""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from trdnav.core.adequacy import AdequacyRules, assess_trial
from trdnav.core.assessment import Assessment
from trdnav.core.history import DoseStep, History, Medication
from trdnav.core.safety import screen_option
from trdnav.interop.cdshooks.fhir_history import DraftOrder, read_order
from trdnav.knowledge.load import Knowledge
from trdnav.knowledge.schema import Drug, Role

Indicator = Literal["info", "warning", "critical"]
SOURCE_LABEL = "TRD Navigator"
TOPIC_SYSTEM = "https://trdnav.example/cds-hooks/topics"  # a local code system of card topics
SUMMARY_MAX = 139


@dataclass(frozen=True)
class Links:
    """Where a card may send the clinician: the clinic app's patient page, a SMART launch."""

    patient_link: str | None = None  # template with {patient_id}
    smart_launch_url: str | None = None

    def for_patient(self, patient_id: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if self.smart_launch_url:
            out.append(
                {
                    "label": "Open in TRD Navigator (SMART app)",
                    "url": self.smart_launch_url,
                    "type": "smart",
                    "appContext": json.dumps({"patientId": patient_id}),
                }
            )
        if self.patient_link:
            out.append(
                {
                    "label": "Open the patient page in TRD Navigator",
                    "url": self.patient_link.replace("{patient_id}", patient_id),
                    "type": "absolute",
                }
            )
        return out


def _summary(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1].rstrip() + "…"


def card(
    summary: str,
    indicator: Indicator,
    topic: str,
    detail: str | None = None,
    links: list[dict[str, Any]] | None = None,
    suggestions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "uuid": str(uuid.uuid4()),
        "summary": _summary(summary),
        "indicator": indicator,
        "source": {
            "label": SOURCE_LABEL,
            "topic": {"system": TOPIC_SYSTEM, "code": topic, "display": topic.replace("-", " ")},
        },
    }
    if detail:
        out["detail"] = detail
    if suggestions:
        out["suggestions"] = suggestions
        out["selectionBehavior"] = "at-most-one"
    if links:
        out["links"] = links
    return out


def _footer(a: Assessment) -> str:
    return f"\n\n_{a.disclaimer} Knowledge base {a.kb_version}._"


# --- patient-view ----------------------------------------------------------------------------


def patient_view_cards(
    a: Assessment, links: list[dict[str, Any]], notes: list[str], missing: list[str]
) -> list[dict[str, Any]]:
    cards: list[dict[str, Any]] = []
    for alert in a.alerts:
        if alert.code != "suicide_risk":
            continue
        lines = [f"**{alert.message}** ({alert.date.isoformat()}, {alert.severity} risk)"]
        if a.crisis_resources:
            lines.append("")
            lines += [f"- {r.name}: {r.contact}" for r in a.crisis_resources]
        cards.append(
            card(
                f"Suicide-risk signal ({alert.severity}): {alert.message}",
                "critical",
                "suicide-risk",
                "\n".join(lines) + _footer(a),
                links,
            )
        )
    for alert in a.alerts:
        if alert.code == "suicide_risk" or alert.severity == "low":
            continue
        cards.append(
            card(alert.message, "warning", f"alert-{alert.code}", alert.message + _footer(a), links)
        )
    cards.append(_trd_card(a, links))
    cards.append(_plan_card(a, links))
    open_items = [w for w in a.workup if w.status in ("missing", "abnormal")]
    if open_items:
        abnormal = sum(w.status == "abnormal" for w in open_items)
        lines = [
            f"- **{w.cause}** ({w.status}): {w.finding}"
            + (f" — {w.suggestion}" if w.suggestion else "")
            for w in open_items
        ]
        cards.append(
            card(
                f"Workup: {len(open_items)} open item(s)"
                + (f", {abnormal} abnormal" if abnormal else ""),
                "warning" if abnormal else "info",
                "workup",
                "\n".join(lines) + _footer(a),
                links,
            )
        )
    overdue = [d for d in a.schedule if d.status == "overdue"]
    if overdue:
        lines = [
            f"- **{d.label}**: due {d.due_on.isoformat() if d.due_on else '—'}"
            f" (last {d.last_done.isoformat() if d.last_done else 'never'}) — {d.reason}"
            for d in overdue
        ]
        cards.append(
            card(
                "Overdue measures: " + ", ".join(sorted({d.instrument for d in overdue})),
                "warning",
                "overdue-measures",
                "\n".join(lines) + _footer(a),
                links,
            )
        )
    reduced = reduced_card(notes, missing)
    if reduced is not None:
        cards.append(reduced)
    return cards


def reduced_card(notes: list[str], missing: list[str]) -> dict[str, Any] | None:
    from trdnav.interop.cdshooks.prefetch import MISSING_MEANS

    if not notes and not missing:
        return None
    lines = [f"- not provided: **{k}** — {MISSING_MEANS.get(k, 'not read')}" for k in missing]
    lines += [f"- {n}" for n in notes[:50]]
    if len(notes) > 50:
        lines.append(f"- … and {len(notes) - 50} more")
    summary = (
        f"Reduced advice: {len(missing)} part(s) of the record not provided"
        if missing
        else f"{len(notes)} note(s) on how the record was read"
    )
    return card(summary, "warning" if missing else "info", "data-quality", "\n".join(lines))


def _stage_line(a: Assessment) -> str:
    parts = []
    for s in a.staging.values():
        value = s.label or (f"{s.score:g}" if s.score is not None else None)
        if s.stage is not None and not s.label:
            value = f"stage {s.stage}"
        if value:
            parts.append(f"- {s.name}: {value}" + (f" ({s.band})" if s.band else ""))
    return "\n".join(parts)


def _trd_card(a: Assessment, links: list[dict[str, Any]]) -> dict[str, Any]:
    trd = a.trd
    status = {"trd": "Treatment-resistant depression", "not_trd": "Not TRD"}.get(
        trd.status, "TRD status indeterminate"
    )
    short = next(
        (s.label for k, s in a.staging.items() if k == "european" and s.label), None
    ) or next((f"stage {s.stage}" for s in a.staging.values() if s.stage is not None), None)
    summary = f"{status}: {trd.failed_adequate_trials} failed adequate trial(s)"
    if short:
        summary += f", {short}"
    failed = [t for t in a.trials if t.adequate and t.counts_as_failure]
    lines = ["**Failed adequate trials**"]
    lines += [
        f"- {t.drug} ({t.role}) {t.start.isoformat()} → "
        f"{t.stop.isoformat() if t.stop else 'ongoing'}, up to {t.max_mg_per_day or 0:g} mg/day, "
        f"{t.outcome.value.replace('_', ' ')}"
        for t in failed
    ] or ["- none"]
    if trd.missing:
        lines += ["", "Missing for a firm verdict: " + ", ".join(trd.missing)]
    lines += ["", "**Staging**", _stage_line(a)]
    return card(
        summary,
        "warning" if trd.status == "trd" else "info",
        "trd-status",
        "\n".join(lines) + _footer(a),
        links,
    )


def _plan_card(a: Assessment, links: list[dict[str, Any]]) -> dict[str, Any]:
    now = a.plan_context
    top = a.options[:3]
    head = now.summary if now is not None else "Current state unknown"
    summary = head + (f" — next: {top[0].name}" if top else "")
    lines = []
    if now is not None:
        lines.append(f"**Now:** {now.label}" + (f" — {now.drug}" if now.drug else ""))
        if now.response_detail:
            lines.append(f"Response: {now.response_detail}")
    lines += ["", "**Top of the plan**"]
    lines += [f"{o.rank}. {o.name} — _{o.status.replace('_', ' ')}_ ({o.line})" for o in top]
    return card(summary, "info", "plan", "\n".join(lines) + _footer(a), links)


# --- order-select / order-sign ---------------------------------------------------------------


def _checked_role(drug: Drug, kb: Knowledge) -> bool:
    return kb.is_antidepressant(drug) or Role.AUGMENTATION in drug.roles


def order_cards(
    orders: list[dict[str, Any]],
    a: Assessment,
    history: History,
    kb: Knowledge,
    today: date,
    links: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    cards: list[dict[str, Any]] = []
    for resource in orders:
        order = read_order(resource, kb)
        drug = order.drug
        if drug is None or not _checked_role(drug, kb):
            continue
        cards += _failed_trial_cards(drug, a, order.ref, links)
        cards += _safety_cards(drug, history, today, kb, links)
        dose = _dose_card(order, drug, a, history, kb, today, links)
        if dose is not None:
            cards.append(dose)
    rank = {"critical": 0, "warning": 1, "info": 2}
    return sorted(cards, key=lambda c: rank[c["indicator"]])


def _failed_trial_cards(
    drug: Drug, a: Assessment, ref: str, links: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    if drug.id not in a.trd.failed_drugs:
        return []
    trials = [t for t in a.trials if t.drug == drug.id and t.adequate and t.counts_as_failure]
    lines = [
        f"- {t.start.isoformat()} → {t.stop.isoformat() if t.stop else 'ongoing'}: up to "
        f"{t.max_mg_per_day or 0:g} mg/day for {t.weeks_at_adequate_dose or 0:g} weeks at an "
        f"adequate dose, {t.outcome.value.replace('_', ' ')}"
        for t in trials
    ]
    remove = {
        "label": f"Remove the {drug.name} order",
        "uuid": str(uuid.uuid4()),
        "actions": [
            {
                "type": "delete",
                "description": f"Remove the draft {drug.name} order",
                "resourceId": ref,
            }
        ],
    }
    return [
        card(
            f"{drug.name} already failed an adequate trial in this episode",
            "warning",
            "already-failed",
            "\n".join(lines) + _footer(a),
            links,
            [remove] if ref != "MedicationRequest/" else None,
        )
    ]


def _safety_cards(
    drug: Drug, history: History, today: date, kb: Knowledge, links: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    out = []
    for f in screen_option(f"order_{drug.id}", [drug.id], history, today, kb):
        if f.severity == "info":
            continue
        washout = f.code == "maoi_washout_required"
        indicator: Indicator = "critical" if f.severity == "contraindicated" else "warning"
        topic = "maoi-washout" if washout else "contraindication"
        prefix = "Washout not met" if washout else f"{f.severity.capitalize()}"
        out.append(card(f"{prefix}: {f.message}", indicator, topic, f.message, links))
    return out


def _dose_card(
    order: DraftOrder,
    drug: Drug,
    a: Assessment,
    history: History,
    kb: Knowledge,
    today: date,
    links: list[dict[str, Any]],
) -> dict[str, Any] | None:
    mg = order.mg_per_day
    if drug.dose_unit != "mg/day" or mg is None or mg <= 0:
        return None
    current = a.plan_context.drug if a.plan_context is not None else None
    trial = Medication(
        drug=drug.id,
        start=today,
        doses=(DoseStep(from_=today, mg_per_day=mg),),
        augments=current if current and current != drug.id else None,
    )
    rules = AdequacyRules.from_knowledge(kb)
    verdict = assess_trial(0, trial, drug, kb, rules, today, history.episode.onset)
    minimum = verdict.min_adequate_mg_per_day
    if minimum is None or mg >= minimum:
        return None
    updated, per_dose = _scaled(order.resource, minimum / mg)
    suggestions = None
    if updated is not None:
        suggestions = [
            {
                "label": f"Order {drug.name} {minimum:g} mg/day (the adequate minimum)",
                "uuid": str(uuid.uuid4()),
                "isRecommended": True,
                "actions": [
                    {
                        "type": "update",
                        "description": f"Change the dose to {per_dose} per dose "
                        f"({minimum:g} mg/day)",
                        "resource": updated,
                    }
                ],
            }
        ]
    detail = (
        f"The draft order gives {mg:g} mg/day; an adequate trial of {drug.name} needs at least "
        f"{minimum:g} mg/day held for {rules.min_weeks:g} weeks. A lower dose is fine to start "
        "a titration, but a trial that never reaches the minimum cannot count."
    )
    if order.note:
        detail += f" (How the dose was read: {order.note}.)"
    return card(
        f"{drug.name} {mg:g} mg/day is below the adequate minimum of {minimum:g} mg/day",
        "info",
        "dose-below-minimum",
        detail + _footer(a),
        links,
        suggestions,
    )


def _scaled(order: dict[str, Any], factor: float) -> tuple[dict[str, Any] | None, str]:
    """The whole order with its first structured dose multiplied by ``factor`` (frequency
    kept), and the new per-dose amount; None when the dose is not a ``doseQuantity``."""
    updated = copy.deepcopy(order)
    for dosage in updated.get("dosageInstruction") or ():
        for dr in dosage.get("doseAndRate") or ():
            qty = dr.get("doseQuantity") if isinstance(dr, dict) else None
            if isinstance(qty, dict) and isinstance(qty.get("value"), int | float):
                qty["value"] = round(float(qty["value"]) * factor, 3)
                unit = qty.get("unit") or qty.get("code") or ""
                return updated, f"{qty['value']:g} {unit}".strip()
        break
    return None, ""
