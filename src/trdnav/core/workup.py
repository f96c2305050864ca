"""The pseudo-resistance workup: what has been ruled out before a depression is called resistant.

``workup`` walks the knowledge base's checklist (``knowledge/data/workup/checklist.yaml``) and gives
each cause a status: ``abnormal`` (something found), ``normal`` (assessed, nothing found), ``done``
(assessed without a normal/abnormal verdict, e.g. a score without a screen rule) or ``missing``
(nothing on record; the suggestion says what to do). Evidence comes from scored screens, labs
(converted to the canonical unit), conditions, the diagnosis, adherence across trials, current
medications (CYP inducers) and pharmacogenomic phenotypes (with the CPIC recommendation for each
drug tried or taken now). ``workup_input_problems`` checks the history's labs, phenotypes and
current medications against the knowledge base. Pure: no clock, no file reads.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict

from trdnav.core.adequacy import TrialVerdict
from trdnav.core.history import History, Lab, Medication
from trdnav.core.measures import ScoredMeasurement
from trdnav.errors import Problem
from trdnav.knowledge.load import Knowledge
from trdnav.knowledge.workup import ChecklistItem, LabTest

Status = Literal["done", "abnormal", "normal", "missing"]


class WorkupItem(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    cause: str
    status: Status
    finding: str
    evidence: tuple[str, ...]  # what data, with dates
    suggestion: str | None  # what to do, when missing or abnormal
    citations: tuple[str, ...]
    verified: bool


class LabReading(BaseModel):
    """One lab result converted into its test's canonical unit and compared with the ranges."""

    model_config = ConfigDict(frozen=True)

    test: str  # lab id
    name: str
    date: date
    value: float  # as entered
    unit: str  # as entered
    canonical_value: float
    canonical_unit: str
    abnormal: bool
    finding: str
    citations: tuple[str, ...]
    verified: bool


class PgxRecommendation(BaseModel):
    model_config = ConfigDict(frozen=True)

    gene: str
    phenotype: str  # canonical: ultrarapid, rapid, normal, intermediate, poor
    drug: str  # drug id
    drug_name: str
    context: Literal["tried", "current"]
    recommendation: str
    strength: str | None
    citations: tuple[str, ...]
    verified: bool


# ---- input checks -----------------------------------------------------------------------------


def _suggest(names: Sequence[str]) -> str:
    return f"; did you mean {' or '.join(repr(n) for n in names)}?" if names else ""


def _units(test: LabTest) -> str:
    return ", ".join(a for u in test.units for a in (u.unit, *u.aliases))


def _lab_problems(loc: str, lab: Lab, kb: Knowledge) -> list[Problem]:
    w = kb.workup
    test = w.resolve_lab(lab.test)
    if test is None:
        known = ", ".join(t.name for t in w.labs.values())
        return [
            Problem(
                f"{loc}.test",
                "unknown_lab_test",
                f"unknown lab test {lab.test!r}{_suggest(w.closest_labs(lab.test))} "
                f"(expected one of: {known})",
            )
        ]
    unit = test.resolve_unit(lab.unit)
    if unit is None:
        near = difflib.get_close_matches(
            lab.unit, [a for u in test.units for a in (u.unit, *u.aliases)], n=2, cutoff=0.4
        )
        return [
            Problem(
                f"{loc}.unit",
                "unknown_lab_unit",
                f"unit {lab.unit!r} is not accepted for {test.name}{_suggest(near)} "
                f"(expected: {_units(test)})",
            )
        ]
    top = test.plausible_max / unit.to_canonical
    if lab.value < 0 or lab.value * unit.to_canonical > test.plausible_max:
        return [
            Problem(
                f"{loc}.value",
                "impossible_lab_value",
                f"{lab.value:g} {unit.unit} is not a possible {test.name} value "
                f"(expected 0 to {top:.4g} {unit.unit})",
            )
        ]
    return []


def workup_input_problems(history: History, kb: Knowledge, as_of: date) -> list[Problem]:
    """Unknown lab tests, units, genes and phenotypes; impossible values; dates after ``as_of``."""
    w = kb.workup
    problems: list[Problem] = []

    def after(loc: str, value: date | None) -> None:
        if value is not None and value > as_of:
            problems.append(
                Problem(
                    loc,
                    "date_after_assessment",
                    f"{value.isoformat()} is after the assessment date {as_of.isoformat()}",
                )
            )

    for i, lab in enumerate(history.labs):
        problems.extend(_lab_problems(f"labs[{i}]", lab, kb))
        after(f"labs[{i}].date", lab.date)
    for i, res in enumerate(history.pgx):
        gene = w.resolve_gene(res.gene)
        genes = ", ".join(w.genes)
        if gene is None:
            near = difflib.get_close_matches(res.gene.upper(), list(w.genes), n=2, cutoff=0.5)
            problems.append(
                Problem(
                    f"pgx[{i}].gene",
                    "unknown_gene",
                    f"unknown gene {res.gene!r}{_suggest(near)} (expected one of: {genes})",
                )
            )
        elif gene.resolve_phenotype(res.phenotype) is None:
            allowed = [p.id for p in gene.phenotypes]
            spellings = [a for p in gene.phenotypes for a in (p.id, *p.aliases)]
            near = difflib.get_close_matches(res.phenotype, spellings, n=2, cutoff=0.5)
            problems.append(
                Problem(
                    f"pgx[{i}].phenotype",
                    "unknown_phenotype",
                    f"unknown {gene.id} phenotype {res.phenotype!r}{_suggest(near)} "
                    f"(expected one of: {', '.join(allowed)}, or PM/IM/NM/UM spellings)",
                )
            )
        after(f"pgx[{i}].date", res.date)
    for i, med in enumerate(history.current_medications):
        after(f"current_medications[{i}].start", med.start)
    return problems


# ---- labs and pharmacogenomics ----------------------------------------------------------------


def read_lab(lab: Lab, kb: Knowledge, sex: str | None = None) -> LabReading | None:
    """Convert one lab into its canonical unit and compare it with the ranges (None: unknown)."""
    test = kb.workup.resolve_lab(lab.test)
    unit = None if test is None else test.resolve_unit(lab.unit)
    if test is None or unit is None:
        return None
    value = lab.value * unit.to_canonical
    common = {
        "test": test.id,
        "name": test.name,
        "date": lab.date,
        "value": lab.value,
        "unit": lab.unit,
        "canonical_value": round(value, 3),
        "canonical_unit": test.canonical_unit,
    }
    for rule in test.rules:
        if rule.sex is not None and rule.sex != sex:
            continue
        if (rule.below is not None and value < rule.below) or (
            rule.above is not None and value > rule.above
        ):
            return LabReading(
                **common,
                abnormal=True,
                finding=rule.finding,
                citations=tuple(dict.fromkeys((*test.source, *rule.source))),
                verified=test.verified and rule.verified,
            )
    return LabReading(
        **common,
        abnormal=False,
        finding=f"{test.name} within the reference range",
        citations=test.source,
        verified=test.verified,
    )


def _latest_phenotypes(history: History, kb: Knowledge) -> dict[str, str]:
    """Gene id -> canonical phenotype, the latest report per gene (undated reports count first)."""
    out: dict[str, str] = {}
    for res in sorted(history.pgx, key=lambda r: r.date or date.min):
        gene = kb.workup.resolve_gene(res.gene)
        phenotype = None if gene is None else gene.resolve_phenotype(res.phenotype)
        if gene is not None and phenotype is not None:
            out[gene.id] = phenotype
    return out


def _drugs_in_play(history: History, kb: Knowledge) -> dict[str, Literal["tried", "current"]]:
    out: dict[str, Literal["tried", "current"]] = {}
    for t in history.treatments:
        drug = kb.resolve_drug(t.drug) if isinstance(t, Medication) else None
        if drug is not None:
            out[drug.id] = "tried"
    for med in history.current_medications:
        drug = kb.resolve_drug(med.drug)
        if drug is not None:
            out[drug.id] = "current"
    return out


def pgx_recommendations(history: History, kb: Knowledge) -> list[PgxRecommendation]:
    """The CPIC recommendation for each phenotype on file and each drug tried or taken now."""
    phenotypes = _latest_phenotypes(history, kb)
    drugs = _drugs_in_play(history, kb)
    out: list[PgxRecommendation] = []
    for rule in kb.workup.cpic:
        phenotype = phenotypes.get(rule.gene)
        if phenotype is None or phenotype not in rule.recommendations:
            continue
        for drug_id in rule.drugs:
            if drug_id not in drugs:
                continue
            out.append(
                PgxRecommendation(
                    gene=rule.gene,
                    phenotype=phenotype,
                    drug=drug_id,
                    drug_name=kb.drugs[drug_id].name if drug_id in kb.drugs else drug_id,
                    context=drugs[drug_id],
                    recommendation=rule.recommendations[phenotype],
                    strength=rule.strength.get(phenotype),
                    citations=rule.source,
                    verified=rule.verified or phenotype in rule.verified_phenotypes,
                )
            )
    out.sort(key=lambda r: (r.drug, r.gene))
    return out


# ---- the checklist ----------------------------------------------------------------------------


def _aggregate(found: list[tuple[str, str, bool]]) -> Status:
    """``found`` holds (verdict, text, verified) with verdict abnormal/normal/done."""
    verdicts = {v for v, _, _ in found}
    order: tuple[Status, ...] = ("abnormal", "normal", "done")
    return next((s for s in order if s in verdicts), "missing")


def _evidence_item(
    item: ChecklistItem,
    history: History,
    scored: Sequence[ScoredMeasurement],
    as_of: date,
    kb: Knowledge,
) -> WorkupItem:
    found: list[tuple[str, str, bool]] = []  # (verdict, text, verified)
    keys: list[str] = list(item.source)
    if history.episode.diagnosis.value in item.diagnoses:
        found.append(("abnormal", f"diagnosis {history.episode.diagnosis.value} on record", True))
    for cond in history.conditions:
        if cond.name in item.conditions:
            status = f" ({cond.status})" if cond.status else ""
            found.append(("abnormal", f"condition {cond.name}{status} on record", True))
    for inst_id in item.instruments:
        rows = [s for s in scored if s.instrument_id == inst_id and s.date <= as_of]
        if not rows:
            continue
        s = rows[-1]
        screen = s.score.screen
        if screen is None:
            total = "" if s.score.total is None else f" total {s.score.total:g}"
            found.append(
                ("done", f"{s.instrument} on {s.date.isoformat()}{total}", s.score.verified)
            )
            keys.extend(s.score.citations)
        else:
            verdict = "abnormal" if screen.positive else "normal"
            found.append(
                (
                    verdict,
                    f"{s.instrument} on {s.date.isoformat()}: {screen.label} ({screen.detail})",
                    screen.verified,
                )
            )
            keys.extend(screen.citations)
    sex = history.patient.sex.value
    for lab_id in item.labs:
        readings = [
            r
            for r in (read_lab(lab, kb, sex) for lab in history.labs)
            if r is not None and r.test == lab_id and r.date <= as_of
        ]
        if not readings:
            continue
        r = max(readings, key=lambda x: x.date)
        shown = f"{r.value:g} {r.unit}"
        if r.unit != r.canonical_unit:
            shown += f" = {r.canonical_value:g} {r.canonical_unit}"
        found.append(
            (
                "abnormal" if r.abnormal else "normal",
                f"{r.name} {shown} on {r.date.isoformat()}: {r.finding}",
                r.verified,
            )
        )
        keys.extend(r.citations)
    status = _aggregate(found)
    if status == "missing":
        finding = "nothing on record"
    else:
        finding = "; ".join(text for v, text, _ in found if v == status)
    return _item(item, status, finding, [t for _, t, _ in found], keys, found)


def _item(
    item: ChecklistItem,
    status: Status,
    finding: str,
    evidence: Sequence[str],
    keys: Sequence[str],
    found: Sequence[tuple[str, str, bool]] = (),
) -> WorkupItem:
    return WorkupItem(
        id=item.id,
        cause=item.cause,
        status=status,
        finding=finding,
        evidence=tuple(evidence),
        suggestion=item.suggestion if status in ("missing", "abnormal") else None,
        citations=tuple(dict.fromkeys(keys)),
        verified=item.verified and all(ok for _, _, ok in found),
    )


def _adherence_item(
    item: ChecklistItem, verdicts: Sequence[TrialVerdict], kb: Knowledge
) -> WorkupItem:
    floor = kb.adequacy.min_adherence.value
    keys = [*item.source, *kb.adequacy.min_adherence.source]
    if not verdicts:
        return _item(item, "missing", "no medication trials on record", (), keys)
    evidence = [
        f"{v.drug} from {v.start.isoformat()}: adherence "
        + ("unknown" if v.adherence is None else f"{v.adherence:.0%}")
        for v in verdicts
    ]
    poor = [
        v
        for v in verdicts
        if "poor_adherence" in v.reasons or (v.adherence is not None and v.adherence < floor)
    ]
    if poor:
        names = ", ".join(f"{v.drug} ({v.start.isoformat()})" for v in poor)
        finding = f"adherence below {floor:.0%} in: {names}"
        return _item(item, "abnormal", finding, evidence, keys)
    unknown = [v for v in verdicts if v.adherence is None]
    if unknown:
        names = ", ".join(f"{v.drug} ({v.start.isoformat()})" for v in unknown)
        return _item(item, "missing", f"adherence not recorded for: {names}", evidence, keys)
    return _item(item, "normal", f"adherence at least {floor:.0%} in every trial", evidence, keys)


def _inducer_item(item: ChecklistItem, history: History, kb: Knowledge) -> WorkupItem:
    meds = history.current_medications
    if not meds:
        return _item(item, "missing", "no current medication list on record", (), item.source)
    evidence = [m.drug + (f" {m.mg_per_day:g} mg/day" if m.mg_per_day else "") for m in meds]
    hits = [(m, kb.workup.resolve_inducer(m.drug)) for m in meds]
    found = [(m, ind) for m, ind in hits if ind is not None]
    if not found:
        return _item(
            item, "normal", "no strong CYP inducer among current medications", evidence, item.source
        )
    keys = [*item.source, *(k for _, ind in found for k in ind.source)]
    finding = "; ".join(
        f"{m.drug}: strong {'/'.join(ind.enzymes)} inducer, {ind.effect}" for m, ind in found
    )
    verified = all(ind.verified for _, ind in found)
    return _item(item, "abnormal", finding, evidence, keys, [("abnormal", "", verified)])


def _pgx_item(item: ChecklistItem, history: History, kb: Knowledge) -> WorkupItem:
    phenotypes = _latest_phenotypes(history, kb)
    if not phenotypes:
        return _item(item, "missing", "no pharmacogenomic result on record", (), item.source)
    evidence = [f"{g}: {p} metaboliser" for g, p in sorted(phenotypes.items())]
    recs = pgx_recommendations(history, kb)
    keys = [*item.source, *(k for r in recs for k in r.citations)]
    found = [("abnormal", "", r.verified) for r in recs]
    actionable = [r for r in recs if r.phenotype != "normal"]
    conversions = [
        (med.drug, inh)
        for med in history.current_medications
        for inh in kb.workup.resolve_inhibitors(med.drug)
        if inh.gene in phenotypes and phenotypes[inh.gene] != "poor"
    ]
    if actionable or conversions:
        parts = [
            f"{r.drug_name} ({r.context}), {r.gene} {r.phenotype}: {r.recommendation}"
            for r in actionable
        ]
        parts += [
            f"phenoconversion possible: {drug} is a {inh.strength} {inh.gene} inhibitor, so the "
            f"{phenotypes[inh.gene]} genotype may overstate {inh.gene} activity"
            for drug, inh in conversions
        ]
        keys += [k for _, inh in conversions for k in inh.source]
        found += [("abnormal", "", inh.verified) for _, inh in conversions]
        return _item(item, "abnormal", "; ".join(parts), evidence, keys, found)
    if all(p == "normal" for p in phenotypes.values()):
        return _item(
            item, "normal", "normal metaboliser for every gene tested", evidence, keys, found
        )
    return _item(
        item,
        "done",
        "phenotypes on file; no drug tried or taken now has a CPIC recommendation for them",
        evidence,
        keys,
        found,
    )


def workup(
    history: History,
    scored: Sequence[ScoredMeasurement],
    verdicts: Sequence[TrialVerdict],
    as_of: date,
    kb: Knowledge,
) -> list[WorkupItem]:
    """One item per pseudo-resistance cause in the knowledge base's checklist, in its order."""
    out: list[WorkupItem] = []
    for item in kb.workup.checklist:
        if item.kind == "adherence":
            out.append(_adherence_item(item, verdicts, kb))
        elif item.kind == "interacting_drugs":
            out.append(_inducer_item(item, history, kb))
        elif item.kind == "pgx":
            out.append(_pgx_item(item, history, kb))
        else:
            out.append(_evidence_item(item, history, scored, as_of, kb))
    return out
