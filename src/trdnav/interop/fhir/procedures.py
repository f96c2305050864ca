"""Procedure -> ECT, rTMS, esketamine and psychotherapy courses.

Codes: the CPT/HCPCS codes of the knowledge base's population concept sets (``ect``, ``rtms``,
``esketamine``), then the procedures table of ``kb.codes`` (knowledge/data/codes/procedures.yaml:
psychotherapy CPT codes, SNOMED CT, the esketamine dose per HCPCS code). One Procedure per session
(``performedDateTime``) is the usual EHR shape: sessions of one kind form a course, split where
more than :data:`GAP_DAYS` pass between two sessions; a Procedure with a ``performedPeriod`` is a
whole course (its session count from the project's ``sessions`` extension, else unknown).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from trdnav.core.date_range import add_days
from trdnav.interop.fhir import codes
from trdnav.interop.fhir.bundle import Entry
from trdnav.interop.fhir.ledger import (
    Ledger,
    codings,
    extension,
    number,
    outcome_of,
    texts,
    to_date,
)
from trdnav.knowledge.load import Knowledge

GAP_DAYS = 60
PLACEMENTS = (
    ("right unilateral", "right_unilateral"),
    ("rul", "right_unilateral"),
    ("bitemporal", "bitemporal"),
    ("bifrontal", "bifrontal"),
    ("bilateral", "bilateral"),
)
PROTOCOLS = (
    ("accelerated", "accelerated_itbs"),
    ("itbs", "itbs"),
    ("theta", "itbs"),
    ("deep", "deep_tms"),
    ("h-coil", "deep_tms"),
    ("10 hz", "10hz"),
    ("10hz", "10hz"),
    ("1 hz", "1hz_right"),
    ("1hz", "1hz_right"),
)
MODALITIES = (
    ("cbasp", "cbasp"),
    ("cognitive behav", "cbt"),
    ("cbt", "cbt"),
    ("interpersonal", "ipt"),
    ("behavioral activation", "behavioral_activation"),
    ("behavioural activation", "behavioral_activation"),
    ("dialectical", "dbt"),
    ("mindfulness", "mbct"),
    ("psychodynamic", "psychodynamic"),
    ("psychoanaly", "psychodynamic"),
)


@dataclass
class Session:
    ref: str
    kind: str
    start: date
    end: date | None
    course: bool  # a Procedure that is a whole course (performedPeriod)
    detail: str | None = None
    sessions: int | None = None
    outcome: Any = None
    mg: float | None = None
    ongoing: bool = False
    notes: list[str] = field(default_factory=list)
    assumptions: list[str] = field(default_factory=list)


def _code_map(kb: Knowledge) -> dict[str, str]:
    out: dict[str, str] = {}
    for set_id in ("ect", "rtms", "esketamine"):
        cs = kb.population.concept_sets.get(set_id)
        if cs is None:
            continue
        for c in cs.include:
            if c.vocabulary in ("CPT4", "HCPCS"):
                out[c.code.upper()] = set_id
    return out


def _kind(p: Any, cpt_hcpcs: dict[str, str], t: codes.CodeTables) -> str | None:
    for c in codings(p.code):
        if not c.code:
            continue
        if (codes.is_cpt(c.system) or codes.is_hcpcs(c.system)) and c.code.upper() in cpt_hcpcs:
            return cpt_hcpcs[c.code.upper()]
        if codes.is_cpt(c.system) and c.code in t.cpt_procedures:
            return t.cpt_procedures[c.code]
        if codes.is_hcpcs(c.system) and c.code.upper() in t.hcpcs_procedures:
            return t.hcpcs_procedures[c.code.upper()]
        if codes.is_system(c.system, codes.SNOMED) and c.code in t.snomed_procedures:
            return t.snomed_procedures[c.code]
    return None


def _words(p: Any) -> str:
    parts = texts(p.code) + [t for cc in p.bodySite or [] for t in texts(cc)]
    parts += [n.text for n in p.note or [] if n.text]
    for c in codings(p.code) + [c for cc in p.usedCode or [] for c in codings(cc)]:
        if codes.is_system(c.system, codes.TREATMENT_DETAIL) and c.code:
            parts.append(c.code.rpartition(".")[2].replace("_", " "))
    return " ".join(parts).lower()


def _detail(kind: str, p: Any, t: codes.CodeTables) -> tuple[str | None, str | None]:
    for c in [c for cc in [p.code, *(p.usedCode or [])] for c in codings(cc)]:
        if (
            codes.is_system(c.system, codes.TREATMENT_DETAIL)
            and c.code
            and c.code.startswith(kind + ".")
        ):
            return c.code.partition(".")[2], None
    words = _words(p)
    table = {"ect": PLACEMENTS, "rtms": PROTOCOLS, "psychotherapy": MODALITIES}.get(kind, ())
    for needle, value in table:
        if needle in words:
            return value, f"{value.replace('_', ' ')} read from the words of the procedure"
    for c in codings(p.code):
        detail = t.snomed_procedure_detail.get(c.code or "")
        if (
            detail is not None
            and codes.is_system(c.system, codes.SNOMED)
            and t.snomed_procedures.get(c.code or "") == kind
        ):
            return detail, None
    return None, None


def read_procedures(entries: list[Entry], kb: Knowledge, ledger: Ledger, today: date) -> None:
    cpt_hcpcs = _code_map(kb)
    t = codes.tables(kb)
    sessions: list[Session] = []
    for e in entries:
        if e.resource.get_resource_type() != "Procedure":
            continue
        p = e.resource
        kind = _kind(p, cpt_hcpcs, t)
        if kind is None:
            shown = ", ".join(f"{c.system or '?'}|{c.code}" for c in codings(p.code)) or "no code"
            words = "; ".join(texts(p.code))
            ledger.skip(
                e.ref,
                "unmapped_procedure",
                f"{words + ' ' if words else ''}({shown}) is not ECT, rTMS, esketamine "
                "or psychotherapy",
            )
            continue
        if p.status in ("preparation", "not-done", "entered-in-error"):
            ledger.skip(e.ref, p.status.replace("-", "_"), f"status {p.status}: not performed")
            continue
        start: date | None
        end: date | None = None
        course = False
        if p.performedPeriod is not None:
            start, _ = to_date(p.performedPeriod.start)
            end, _ = to_date(p.performedPeriod.end)
            course = end is not None and start is not None and end > start
        else:
            start, _ = to_date(p.performedDateTime)
        if start is None:
            ledger.skip(e.ref, "no_date", "no performed date")
            continue
        s = Session(e.ref, kind, start, end, course)
        s.ongoing = p.status == "in-progress"
        s.detail, how = _detail(kind, p, t)
        if how:
            ledger.assume(e.ref, how)
        ext = extension(p, codes.EXT_SESSIONS)
        if ext is not None and ext.valueInteger is not None:
            s.sessions = int(ext.valueInteger)
        if kind == "esketamine":
            ext = extension(p, codes.EXT_MG_PER_SESSION)
            if ext is not None and number(ext.valueDecimal):
                s.mg = number(ext.valueDecimal)
            else:
                for c in codings(p.code):
                    if c.code and c.code.upper() in t.mg_per_session:
                        s.mg = t.mg_per_session[c.code.upper()]
                        ledger.assume(
                            e.ref,
                            f"HCPCS {c.code}: {s.mg:g} mg per session assumed "
                            "(the code gives only <=56 mg or >56 mg)",
                        )
        s.outcome = p.outcome
        s.notes = [n.text for n in p.note or [] if n.text]
        sessions.append(s)
    _courses(sessions, ledger, today)


def _courses(sessions: list[Session], ledger: Ledger, today: date) -> None:
    groups: dict[tuple[str, str | None], list[Session]] = {}
    for s in sorted(sessions, key=lambda s: (s.start, s.ref)):
        groups.setdefault((s.kind, s.detail), []).append(s)
    for (kind, detail), group in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        course: list[Session] = []
        for s in group:
            last = max((x.end or x.start) for x in course) if course else None
            if course and (
                s.course
                or course[-1].course
                or (last is not None and s.start > add_days(last, GAP_DAYS))
            ):
                _course_item(kind, detail, course, ledger, today)
                course = []
            course.append(s)
        if course:
            _course_item(kind, detail, course, ledger, today)


def _course_item(
    kind: str, detail: str | None, course: list[Session], ledger: Ledger, today: date
) -> None:
    start = min(s.start for s in course)
    stop = max((s.end or s.start) for s in course)
    data: dict[str, Any] = {"type": kind, "start": start.isoformat()}
    if not any(s.ongoing for s in course) and stop <= today:
        data["stop"] = stop.isoformat()
    if len(course) == 1 and course[0].course:
        if course[0].sessions is not None:
            data["sessions"] = course[0].sessions
    else:
        data["sessions"] = len(course)
    field_name = {
        "ect": "electrode_placement",
        "rtms": "protocol",
        "psychotherapy": "modality",
    }.get(kind)
    if field_name and detail:
        data[field_name] = detail
    mgs = [s.mg for s in course if s.mg]
    if kind == "esketamine" and mgs:
        data["mg_per_session"] = max(mgs)
    outcome = None
    refs = [s.ref for s in course]
    for s in course:
        if s.outcome is not None:
            value, how = outcome_of(s.outcome)
            if value is not None:
                outcome = value
                if how:
                    ledger.assume(s.ref, how)
    if outcome is not None:
        data["outcome"] = outcome.value
    notes = list(dict.fromkeys(n for s in course for n in s.notes))
    if notes:
        data["note"] = "; ".join(notes)
    item = ledger.add("treatments", data, refs, (start, 2, kind))
    if len(course) == 1 and course[0].course and course[0].sessions is None:
        ledger.assume(refs[0], "a course with no session count: sessions unknown", item)
