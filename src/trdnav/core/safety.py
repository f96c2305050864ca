"""Safety screening: contraindications, interactions, washouts and dose caps, as data-driven rules.

Pure: every function takes the history, the "as of" date and the knowledge base, and returns
findings. Rules live in ``knowledge/data/safety/*.yaml`` (see :mod:`trdnav.knowledge.safety`).

- :func:`screen_option` checks one treatment option (and the drugs it would start) against the
  patient's conditions, current medications and recently stopped drugs;
- :func:`screen_current` checks what the patient takes now (combinations, dose caps, conditions);
- :func:`safety_alerts` turns the patient-level risks into alerts with stable codes.

Current medications are the ongoing medication treatments (no stop date, or a stop date after
the "as of" date) plus ``history.current_medications`` when that field exists.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from trdnav.core.date_range import add_days
from trdnav.core.history import History, Medication
from trdnav.knowledge.load import Knowledge, normalize_drug_name
from trdnav.knowledge.safety import ConditionRule, DoseCap, FindingSeverity, Target, Washout

SEVERITY_RANK: dict[str, int] = {"info": 0, "caution": 1, "contraindicated": 2}
AlertSeverity = Literal["low", "moderate", "high"]
_ALERT_FOR: dict[str, AlertSeverity] = {
    "info": "low",
    "caution": "moderate",
    "contraindicated": "high",
}
ALERT_CODES = (
    "maoi_washout_required",
    "serotonin_syndrome_risk",
    "qtc_dose_cap",
    "uncontrolled_hypertension",
    "pregnancy",
    "substance_use",
    "lithium_interaction",
)


class Finding(BaseModel):
    """One safety finding about an option (``option_id``) or the current regimen (None)."""

    model_config = ConfigDict(frozen=True)

    code: str
    severity: FindingSeverity
    message: str
    citations: tuple[str, ...]
    verified: bool
    option_id: str | None = None
    until: date | None = None
    rule_id: str | None = None


class SafetyAlert(BaseModel):
    """A patient-level safety alert (same JSON shape as the suicide-risk ``Alert``)."""

    model_config = ConfigDict(frozen=True)

    code: str
    severity: AlertSeverity
    message: str
    date: date
    citation: str  # full reference of the first source
    citations: tuple[str, ...]
    verified: bool


@dataclass(frozen=True)
class DrugUse:
    """A drug the patient takes or took: the knowledge-base drug (if known) and the raw name."""

    name: str
    drug_id: str | None
    drug_class: str | None
    start: date | None = None
    stop: date | None = None
    mg_per_day: float | None = None

    @property
    def label(self) -> str:
        return self.drug_id or self.name


def _use(kb: Knowledge, name: str, **fields: Any) -> DrugUse:
    drug = kb.resolve_drug(name)
    return DrugUse(
        name=name,
        drug_id=None if drug is None else drug.id,
        drug_class=None if drug is None else drug.drug_class,
        **fields,
    )


def _matches(target: Target, use: DrugUse) -> bool:
    if use.drug_id is not None and use.drug_id in target.drugs:
        return True
    if use.drug_class is not None and use.drug_class in target.classes:
        return True
    return bool(target.names) and normalize_drug_name(use.name) in _folded(target.names)


@lru_cache(maxsize=1024)
def _folded(names: tuple[str, ...]) -> frozenset[str]:
    return frozenset(normalize_drug_name(n) for n in names)


@dataclass(frozen=True)
class PatientDrugs:
    """What every option's screening reads of the patient, derived once per plan."""

    conditions: dict[str, set[str | None]]
    current: list[DrugUse]
    stopped: list[DrugUse]


def patient_drugs(history: History, as_of: date, kb: Knowledge) -> PatientDrugs:
    return PatientDrugs(
        _condition_statuses(history, kb),
        current_drugs(history, as_of, kb),
        stopped_drugs(history, as_of, kb),
    )


def _option_matches(target: Target, option_id: str) -> bool:
    return any(option_id == o or option_id.startswith(o + "_") for o in target.options)


def _last_dose(t: Medication, as_of: date) -> float | None:
    steps = [d for d in t.doses if d.from_ <= as_of]
    return steps[-1].mg_per_day if steps else None


def current_drugs(history: History, as_of: date, kb: Knowledge) -> list[DrugUse]:
    """Drugs taken on ``as_of``: ongoing medication treatments and ``current_medications``."""
    out: list[DrugUse] = []
    for t in history.treatments:
        if isinstance(t, Medication) and t.start <= as_of and (t.stop is None or t.stop > as_of):
            out.append(_use(kb, t.drug, start=t.start, mg_per_day=_last_dose(t, as_of)))
    for item in getattr(history, "current_medications", None) or ():
        name = getattr(item, "drug", None)
        if not isinstance(name, str) or not name:
            continue
        mg = getattr(item, "mg_per_day", None)
        start = getattr(item, "start", None)
        use = _use(
            kb,
            name,
            start=start if isinstance(start, date) else None,
            mg_per_day=float(mg) if isinstance(mg, int | float) else None,
        )
        if any(u.label == use.label for u in out):
            continue
        out.append(use)
    return out


def stopped_drugs(history: History, as_of: date, kb: Knowledge) -> list[DrugUse]:
    """Medication treatments stopped on or before ``as_of`` (the latest stop per drug)."""
    latest: dict[str, DrugUse] = {}
    for t in history.treatments:
        if isinstance(t, Medication) and t.stop is not None and t.stop <= as_of:
            use = _use(kb, t.drug, start=t.start, stop=t.stop)
            prior = latest.get(use.label)
            if prior is None or (prior.stop is not None and prior.stop < t.stop):
                latest[use.label] = use
    return list(latest.values())


def _older_than(history: History, years: int, as_of: date) -> bool:
    """Older than ``years`` on ``as_of``: strictly after that birthday (the day after counts,
    the conservative reading of "over 60 years"); False when the birth date is unknown."""
    born = history.patient.birth_date
    if born is None:
        return False
    try:
        birthday = born.replace(year=born.year + years)
    except ValueError:  # 29 February in a non-leap year
        birthday = date(born.year + years, 3, 1)
    return as_of > birthday


def _condition_statuses(history: History, kb: Knowledge) -> dict[str, set[str | None]]:
    """Condition id -> statuses on record (the vocabulary default when none is given)."""
    out: dict[str, set[str | None]] = {}
    for c in history.conditions:
        term = kb.conditions.get(c.name)
        status = c.status if c.status is not None else (term.default_status if term else None)
        out.setdefault(c.name, set()).add(status)
    if history.patient.pregnant:
        out["pregnant"] = {None}
    if history.patient.breastfeeding:
        out["breastfeeding"] = {None}
    return out


def _condition_applies(rule: ConditionRule, conditions: dict[str, set[str | None]]) -> bool:
    if rule.condition is None:
        return True
    statuses = conditions.get(rule.condition)
    if statuses is None:
        return False
    return not rule.statuses or any(s in rule.statuses for s in statuses)


def _poor_metabolizer_genes(history: History) -> set[str]:
    """Genes with a poor-metaboliser result in ``history.pgx`` (read defensively)."""
    raw: Any = getattr(history, "pgx", None) or ()
    items: Iterable[tuple[Any, Any]]
    if isinstance(raw, dict):
        items = raw.items()
    else:
        items = (
            (
                getattr(r, "gene", None),
                getattr(r, "phenotype", None) or getattr(r, "status", None),
            )
            for r in raw
        )
    genes: set[str] = set()
    for gene, phenotype in items:
        if isinstance(gene, str) and isinstance(phenotype, str):
            if "poor" in phenotype.lower():
                genes.add(gene.upper())
    return genes


def _finding(
    code: str,
    severity: FindingSeverity,
    message: str,
    source: Sequence[str],
    verified: bool,
    option_id: str | None,
    until: date | None = None,
    rule_id: str | None = None,
) -> Finding:
    return Finding(
        code=code,
        severity=severity,
        message=message,
        citations=tuple(source),
        verified=verified,
        option_id=option_id,
        until=until,
        rule_id=rule_id,
    )


def _sorted(findings: list[Finding]) -> list[Finding]:
    unique = {(f.rule_id, f.code, f.message, f.until): f for f in findings}
    return sorted(unique.values(), key=lambda f: (-SEVERITY_RANK[f.severity], f.code, f.message))


def _washout(stopped: DrugUse, starting: DrugUse, kb: Knowledge) -> Washout | None:
    """The longest washout rule from ``stopped`` to ``starting`` (None: no rule)."""
    if stopped.label == starting.label:
        return None
    rules = [
        w
        for w in kb.safety.washouts
        if _matches(w.stopped, stopped) and _matches(w.starting, starting)
    ]
    return max(rules, key=lambda w: w.days, default=None)


def applicable_caps(
    drug_id: str,
    history: History,
    as_of: date,
    kb: Knowledge,
    conditions: dict[str, set[str | None]] | None = None,
) -> list[DoseCap]:
    """The dose caps of ``drug_id`` that apply to this patient (general caps included)."""
    if conditions is None:
        conditions = _condition_statuses(history, kb)
    genes = _poor_metabolizer_genes(history)
    out: list[DoseCap] = []
    for cap in kb.safety.dose_caps:
        if cap.drug != drug_id:
            continue
        if (
            cap.general
            or (cap.age_over is not None and _older_than(history, cap.age_over, as_of))
            or any(c in conditions for c in cap.conditions)
            or any(g.upper() in genes for g in cap.poor_metabolizer_of)
        ):
            out.append(cap)
    return out


def _scoped(
    severity: FindingSeverity, matched: Sequence[str], candidates: int, by_option: bool
) -> tuple[FindingSeverity, str]:
    """Severity and message prefix when a rule hits only some of an option's candidate drugs:
    a contraindication of one candidate is a caution for the option as a whole."""
    if by_option or len(matched) >= candidates:
        return severity, ""
    scoped: FindingSeverity = "caution" if severity == "contraindicated" else severity
    return scoped, f"{', '.join(matched)} only (not the other drugs of this option): "


def screen_option(
    option_id: str,
    drugs: Sequence[str],
    history: History,
    as_of: date,
    kb: Knowledge,
    patient: PatientDrugs | None = None,
) -> list[Finding]:
    """Findings for starting ``option_id`` (which would start one of ``drugs``) on ``as_of``.

    ``drugs`` are the option's candidate drugs. A rule that hits only some of them is reported
    for those drugs, and a contraindication becomes a caution for the option as a whole. An
    option whose id starts with ``switch_`` stops the current antidepressants first: they are
    screened as washouts counted from ``as_of`` rather than as combinations. ``patient`` is
    :func:`patient_drugs` of the same history and date, when the caller screens many options.
    """
    patient = patient or patient_drugs(history, as_of, kb)
    new = [_use(kb, d) for d in drugs]
    n = len(new)
    conditions = patient.conditions
    current = patient.current
    switching = option_id.startswith("switch_")
    findings: list[Finding] = []

    for rule in kb.safety.rules:
        by_option = _option_matches(rule.applies_to, option_id)
        matched = [u.label for u in new if _matches(rule.applies_to, u)]
        if (by_option or matched) and _condition_applies(rule, conditions):
            severity, prefix = _scoped(rule.severity, matched, n, by_option)
            findings.append(
                _finding(
                    rule.code,
                    severity,
                    prefix + rule.message,
                    rule.source,
                    rule.verified,
                    option_id,
                    rule_id=rule.id,
                )
            )

    def washouts(prior: DrugUse, stop: date) -> dict[str, tuple[Washout, list[str]]]:
        """Washout rules from ``prior`` (stopped on ``stop``) still running on ``as_of``."""
        out: dict[str, tuple[Washout, list[str]]] = {}
        for u in new:
            w = _washout(prior, u, kb)
            if w is not None and as_of < add_days(stop, w.days):
                out.setdefault(w.id, (w, []))[1].append(u.label)
        return out

    for s in patient.stopped:
        if s.stop is None:
            continue
        for w, matched in washouts(s, s.stop).values():
            safe = add_days(s.stop, w.days)
            severity, prefix = _scoped("contraindicated", matched, n, False)
            findings.append(
                _finding(
                    "maoi_washout_required",
                    severity,
                    f"{prefix}{s.label} stopped on {s.stop.isoformat()}: do not start "
                    f"{', '.join(matched)} before {safe.isoformat()}. {w.message}",
                    w.source,
                    w.verified,
                    option_id,
                    until=safe,
                    rule_id=w.id,
                )
            )

    for c in current:
        is_antidepressant = c.drug_id is not None and kb.is_antidepressant(kb.drugs[c.drug_id])
        if switching and is_antidepressant:
            for w, matched in washouts(c, as_of).values():
                safe = add_days(as_of, w.days)
                severity, prefix = _scoped("contraindicated", matched, n, False)
                findings.append(
                    _finding(
                        "maoi_washout_required",
                        severity,
                        f"{prefix}{c.label} is current: stop it and wait {w.days} days before "
                        f"starting {', '.join(matched)} (if stopped on {as_of.isoformat()}, not "
                        f"before {safe.isoformat()}). {w.message}",
                        w.source,
                        w.verified,
                        option_id,
                        until=safe,
                        rule_id=w.id,
                    )
                )
            continue
        for ix in kb.safety.interactions:
            matched = [
                u.label
                for u in new
                if u.label != c.label
                and (
                    (_matches(ix.a, u) and _matches(ix.b, c))
                    or (_matches(ix.b, u) and _matches(ix.a, c))
                )
            ]
            if matched:
                severity, prefix = _scoped(ix.severity, matched, n, False)
                findings.append(
                    _finding(
                        ix.code,
                        severity,
                        f"{prefix}{', '.join(matched)} with current {c.label}: {ix.message}",
                        ix.source,
                        ix.verified,
                        option_id,
                        rule_id=ix.id,
                    )
                )

    for u in new:
        if u.drug_id is None:
            continue
        caps = applicable_caps(u.drug_id, history, as_of, kb, conditions)
        if caps:
            lowest = min(caps, key=lambda c: c.max_mg_per_day)
            findings.append(
                _finding(
                    lowest.code,
                    "info" if lowest.general else "caution",
                    f"Dose cap for this patient: {u.label} {lowest.max_mg_per_day:g} mg/day. "
                    f"{lowest.message}",
                    lowest.source,
                    lowest.verified,
                    option_id,
                    rule_id=lowest.id,
                )
            )
    return _sorted(findings)


def screen_current(history: History, as_of: date, kb: Knowledge) -> list[Finding]:
    """Findings about the current regimen: combinations, dose caps, conditions, washouts."""
    current = current_drugs(history, as_of, kb)
    conditions = _condition_statuses(history, kb)
    findings: list[Finding] = []
    for i, a in enumerate(current):
        for b in current[i + 1 :]:
            if a.label == b.label:
                continue
            for ix in kb.safety.interactions:
                if (_matches(ix.a, a) and _matches(ix.b, b)) or (
                    _matches(ix.a, b) and _matches(ix.b, a)
                ):
                    findings.append(
                        _finding(
                            ix.code,
                            ix.severity,
                            f"{a.label} with {b.label}: {ix.message}",
                            ix.source,
                            ix.verified,
                            None,
                            rule_id=ix.id,
                        )
                    )
    for u in current:
        for rule in kb.safety.rules:
            if (
                rule.condition is not None
                and _matches(rule.applies_to, u)
                and _condition_applies(rule, conditions)
            ):
                findings.append(
                    _finding(
                        rule.code,
                        rule.severity,
                        f"current {u.label}: {rule.message}",
                        rule.source,
                        rule.verified,
                        None,
                        rule_id=rule.id,
                    )
                )
        if u.drug_id is not None and u.mg_per_day is not None:
            caps = applicable_caps(u.drug_id, history, as_of, kb)
            if caps:
                lowest = min(caps, key=lambda c: c.max_mg_per_day)
                if u.mg_per_day > lowest.max_mg_per_day:
                    findings.append(
                        _finding(
                            lowest.code,
                            "caution",
                            f"current {u.label} {u.mg_per_day:g} mg/day is above this "
                            f"patient's cap of {lowest.max_mg_per_day:g} mg/day. {lowest.message}",
                            lowest.source,
                            lowest.verified,
                            None,
                            rule_id=lowest.id,
                        )
                    )
        for s in stopped_drugs(history, as_of, kb):
            w = _washout(s, u, kb)
            if w is None or s.stop is None or u.start is None:
                continue
            safe = add_days(s.stop, w.days)
            if s.stop <= u.start < safe:
                findings.append(
                    _finding(
                        "maoi_washout_required",
                        "contraindicated",
                        f"current {u.label} was started on {u.start.isoformat()}, within the "
                        f"washout after {s.label} (stopped {s.stop.isoformat()}; safe from "
                        f"{safe.isoformat()}). {w.message}",
                        w.source,
                        w.verified,
                        None,
                        until=safe,
                        rule_id=w.id,
                    )
                )
    return _sorted(findings)


def _alert(kb: Knowledge, f: Finding, severity: AlertSeverity, as_of: date) -> SafetyAlert:
    return SafetyAlert(
        code=f.code,
        severity=severity,
        message=f.message,
        date=as_of,
        citation=kb.citation(f.citations[0]),
        citations=f.citations,
        verified=f.verified,
    )


def safety_alerts(history: History, as_of: date, kb: Knowledge) -> list[SafetyAlert]:
    """Patient-level safety alerts (codes in :data:`ALERT_CODES`), highest severity first."""
    alerts: list[SafetyAlert] = []
    for f in screen_current(history, as_of, kb):
        if f.code in {"serotonin_syndrome_risk", "qtc_dose_cap", "lithium_interaction"}:
            alerts.append(_alert(kb, f, _ALERT_FOR[f.severity], as_of))
        elif f.code == "maoi_washout_required":
            alerts.append(_alert(kb, f, "high", as_of))

    current = current_drugs(history, as_of, kb)
    for s in stopped_drugs(history, as_of, kb):
        if s.drug_class != "maoi" or s.stop is None:
            continue
        rules = [w for w in kb.safety.washouts if _matches(w.stopped, s)]
        if not rules:
            continue
        longest = max(rules, key=lambda w: w.days)
        safe = add_days(s.stop, longest.days)
        if as_of < safe and not any(u.label == s.label for u in current):
            alerts.append(
                SafetyAlert(
                    code="maoi_washout_required",
                    severity="moderate",
                    message=f"MAOI {s.label} stopped on {s.stop.isoformat()}: no other "
                    f"antidepressant or serotonergic drug before {safe.isoformat()}. "
                    f"{longest.message}",
                    date=as_of,
                    citation=kb.citation(longest.source[0]),
                    citations=longest.source,
                    verified=longest.verified,
                )
            )

    conditions = _condition_statuses(history, kb)
    by_code = {
        "uncontrolled_hypertension": "esketamine_uncontrolled_hypertension",
        "substance_use": "esketamine_substance_use",
    }
    rules_by_id = {r.id: r for r in kb.safety.rules}
    for code, rule_id in by_code.items():
        rule = rules_by_id.get(rule_id)
        if rule is None:
            continue
        hits = [r for r in kb.safety.rules if r.code == code and _condition_applies(r, conditions)]
        if hits:
            names = sorted({r.condition or "" for r in hits})
            alerts.append(
                SafetyAlert(
                    code=code,
                    severity="moderate",
                    message=f"{', '.join(n.replace('_', ' ') for n in names)} on record: "
                    f"{rule.message}",
                    date=as_of,
                    citation=kb.citation(rule.source[0]),
                    citations=rule.source,
                    verified=rule.verified,
                )
            )

    states = [s for s in ("pregnant", "breastfeeding") if s in conditions]
    if states:
        on = [f for f in screen_current(history, as_of, kb) if f.code in {"pregnancy"}]
        fallback = next(r.source for r in kb.safety.rules if r.code == "pregnancy")
        keys = tuple(dict.fromkeys(k for f in on for k in f.citations)) or fallback
        worst = max((SEVERITY_RANK[f.severity] for f in on), default=0)
        detail = " ".join(f.message for f in on) or (
            "Review every current and planned treatment for use in pregnancy and lactation."
        )
        alerts.append(
            SafetyAlert(
                code="pregnancy",
                severity="high" if worst >= 1 else "moderate",
                message=f"Patient is {' and '.join(states)}. {detail}",
                date=as_of,
                citation=kb.citation(keys[0]),
                citations=keys,
                verified=all(f.verified for f in on) if on else False,
            )
        )
    rank = {"low": 0, "moderate": 1, "high": 2}
    unique = {(a.code, a.message): a for a in alerts}
    return sorted(unique.values(), key=lambda a: (-rank[a.severity], a.code, a.message))
