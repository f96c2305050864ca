"""Observation and QuestionnaireResponse -> measurements (rating scales, screeners) and labs.

Instruments are found by the LOINC codes of the knowledge base (``kb.instruments[id].loinc``:
panel, total and item codes) or by the project's instrument code system; an instrument named
only in words is found by its name, with an assumption. Item Observations and the components of
a panel Observation of one instrument on one day are one measurement; an item code shared by
two instruments (PHQ-2 items are PHQ-9 items 1-2) goes to the instrument recorded that day,
else to the smallest instrument holding every item seen. Labs are found by LOINC (``kb.codes``
labs table, knowledge/data/codes/labs.yaml) with their UCUM unit; a lithium level is the serum
level of the lithium trial it falls in. LOINC answer codes give item scores (answers.yaml).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from trdnav.interop.fhir import codes
from trdnav.interop.fhir.bundle import Entry
from trdnav.interop.fhir.ledger import Ledger, codings, extension, number, texts, to_date
from trdnav.knowledge.load import Knowledge
from trdnav.knowledge.schema import Instrument

OK_STATUS = ("final", "amended", "corrected", "preliminary")


@dataclass
class Group:
    inst: Instrument
    when: date
    total: tuple[float, str] | None = None
    items: dict[int, tuple[int, str]] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)


@dataclass
class ItemAnswer:
    code: str
    value: int
    ref: str


@dataclass
class LithiumLevel:
    ref: str
    when: date
    value: float


class Instruments:
    def __init__(self, kb: Knowledge) -> None:
        self.kb = kb
        self.whole: dict[str, Instrument] = {}
        self.items: dict[str, list[tuple[Instrument, int]]] = {}
        for inst in kb.instruments.values():
            for code in (inst.loinc.panel, inst.loinc.total):
                if code:
                    self.whole[code] = inst
            for n, code in inst.loinc.items.items():
                self.items.setdefault(code, []).append((inst, n))

    def whole_of(self, coding: Any) -> Instrument | None:
        if codes.is_system(coding.system, codes.LOINC):
            return self.whole.get(coding.code)
        if codes.is_system(coding.system, codes.INSTRUMENT):
            return self.kb.instruments.get(coding.code)
        return None

    def item_of(self, coding: Any) -> list[tuple[Instrument, int]]:
        if codes.is_system(coding.system, codes.LOINC):
            return self.items.get(coding.code, [])
        if codes.is_system(coding.system, codes.INSTRUMENT_ITEM) and coding.code:
            inst_id, _, n = coding.code.rpartition(".")
            inst = self.kb.instruments.get(inst_id)
            if inst is not None and n.isdigit():
                return [(inst, int(n))]
        return []


def answer_value(value: Any, answers: Mapping[str, int]) -> int | None:
    """A score from valueInteger, valueQuantity, valueCoding/CodeableConcept (``answers``: LOINC
    answer code -> score), valueBoolean."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    n = number(value)
    if n is not None:
        return round(n)
    if value is None:
        return None
    if hasattr(value, "value") and hasattr(value, "comparator"):  # Quantity
        q = number(value.value)
        return round(q) if q is not None else None
    coding_list = codings(value) if hasattr(value, "coding") else [value]
    for c in coding_list:
        if getattr(c, "code", None) is None and not hasattr(c, "system"):
            continue
        ext = extension(c, codes.EXT_ORDINAL)
        if ext is not None and number(ext.valueDecimal) is not None:
            return round(number(ext.valueDecimal) or 0)
        if c.code in answers:
            return answers[c.code]
        if c.code is not None and re.fullmatch(r"-?\d+", c.code):
            return int(c.code)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    return None


def _obs_value(o: Any) -> Any:
    for name in (
        "valueInteger",
        "valueQuantity",
        "valueCodeableConcept",
        "valueBoolean",
        "valueString",
    ):
        v = getattr(o, name, None)
        if v is not None:
            return v
    return None


def _obs_date(o: Any, ref: str, ledger: Ledger) -> date | None:
    when: date | None = None
    partial: str | None = None
    if o.effectiveDateTime is not None:
        when, partial = to_date(o.effectiveDateTime)
    elif o.effectivePeriod is not None and o.effectivePeriod.start is not None:
        when, partial = to_date(o.effectivePeriod.start)
    elif o.effectiveInstant is not None:
        when, partial = to_date(o.effectiveInstant)
    elif o.issued is not None:
        when, partial = to_date(o.issued)
        ledger.assume(ref, "no effective date: the issued date taken")
    if partial:
        ledger.assume(ref, partial)
    return when


class Reader:
    def __init__(self, kb: Knowledge, ledger: Ledger) -> None:
        self.kb = kb
        self.ledger = ledger
        self.instruments = Instruments(kb)
        self.groups: dict[tuple[str, date], Group] = {}
        self.loose: dict[date, list[ItemAnswer]] = {}
        self.lithium: list[LithiumLevel] = []
        self.codes = codes.tables(kb)

    def group(self, inst: Instrument, when: date) -> Group:
        return self.groups.setdefault((inst.id, when), Group(inst, when))

    # --- Observation ----------------------------------------------------------------------------
    def observation(self, e: Entry) -> None:
        o, ref, ledger = e.resource, e.ref, self.ledger
        if o.status not in OK_STATUS:
            ledger.skip(ref, "no_result", f"status {o.status}: no result to import")
            return
        when = _obs_date(o, ref, ledger)
        if when is None:
            ledger.skip(ref, "no_date", "no effective date or issued date")
            return
        if o.status == "preliminary":
            ledger.assume(ref, "status preliminary: imported as a result")
        for c in codings(o.code):
            if codes.is_system(c.system, codes.LOINC) and c.code in self.codes.lab_loinc:
                self.lab(e, self.codes.lab_loinc[c.code], when)
                return
            if (
                codes.is_system(c.system, codes.LOINC)
                and self.codes.drug_level_loinc.get(c.code or "") == "lithium"
            ):
                value = number(o.valueQuantity.value) if o.valueQuantity is not None else None
                if value is None or value <= 0:
                    ledger.skip(ref, "no_value", "a lithium level without a positive value")
                else:
                    self.lithium.append(LithiumLevel(ref, when, value))
                return
            inst = self.instruments.whole_of(c)
            if inst is not None:
                self._whole(e, inst, when)
                return
            if self.instruments.item_of(c):
                value = answer_value(_obs_value(o), self.codes.loinc_answers)
                if value is None:
                    ledger.skip(ref, "no_value", "an item Observation without a score")
                else:
                    self.loose.setdefault(when, []).append(
                        ItemAnswer(f"{c.system}|{c.code}", value, ref)
                    )
                return
        for words in texts(o.code):
            inst = self.kb.resolve_instrument(words)
            if inst is not None:
                ledger.assume(
                    ref,
                    f"instrument {inst.name} read from the words {words!r} (no "
                    "LOINC code of the knowledge base)",
                )
                self._whole(e, inst, when)
                return
            lab = self.kb.workup.resolve_lab(words)
            if lab is not None:
                ledger.assume(ref, f"lab test {lab.name} read from the words {words!r}")
                self.lab(e, lab.id, when)
                return
        shown = ", ".join(f"{x.system or '?'}|{x.code}" for x in codings(o.code)) or "no code"
        words = "; ".join(texts(o.code))
        ledger.skip(
            ref,
            "unmapped_observation",
            f"{words + ' ' if words else ''}({shown}) is neither an instrument nor a screening "
            "lab of the knowledge base",
        )

    def _whole(self, e: Entry, inst: Instrument, when: date) -> None:
        o, ref = e.resource, e.ref
        g = self.group(inst, when)
        g.sources.append(ref)
        value = answer_value(_obs_value(o), self.codes.loinc_answers)
        if value is not None:
            g.total = (float(value), ref)
        for comp in o.component or []:
            for c in codings(comp.code):
                hits = [n for i, n in self.instruments.item_of(c) if i.id == inst.id]
                if hits:
                    v = answer_value(_obs_value(comp), self.codes.loinc_answers)
                    if v is not None:
                        g.items[hits[0]] = (v, ref)
                    break
                whole = self.instruments.whole_of(c)
                if whole is not None and whole.id == inst.id:
                    v = answer_value(_obs_value(comp), self.codes.loinc_answers)
                    if v is not None:
                        g.total = (float(v), ref)
                    break

    def lab(self, e: Entry, lab_id: str, when: date) -> None:
        o, ref, ledger = e.resource, e.ref, self.ledger
        lab = self.kb.workup.labs[lab_id]
        q = o.valueQuantity
        value = number(q.value) if q is not None else None
        if q is None or value is None:
            ledger.skip(ref, "no_value", f"{lab.name} without a numeric valueQuantity")
            return
        unit = None
        for spelling in (q.unit, q.code):
            if spelling:
                u = lab.resolve_unit(spelling) or lab.resolve_unit(codes.ucum_to_unit(spelling))
                if u is not None:
                    unit = u.unit
                    break
        if unit is None:
            accepted = ", ".join(u.unit for u in lab.units)
            ledger.skip(
                ref,
                "unit_not_accepted",
                f"{lab.name} in {q.unit or q.code!r}: expected one of {accepted}",
            )
            return
        if q.comparator:
            ledger.assume(ref, f"{lab.name} reported as {q.comparator}{value:g}: {value:g} taken")
        data = {"test": lab.name, "value": value, "unit": unit, "date": when.isoformat()}
        self.ledger.add("labs", data, [ref], (when, lab.name, ref))

    # --- QuestionnaireResponse ------------------------------------------------------------------
    def questionnaire(self, e: Entry) -> None:
        qr, ref, ledger = e.resource, e.ref, self.ledger
        if qr.status not in ("completed", "amended"):
            ledger.skip(ref, "not_completed", f"status {qr.status}: not a completed answer set")
            return
        when, partial = to_date(qr.authored)
        if when is None:
            ledger.skip(ref, "no_date", "no authored date")
            return
        if partial:
            ledger.assume(ref, partial)
        inst, how = self._questionnaire_instrument(qr.questionnaire or "")
        if inst is None:
            ledger.skip(
                ref,
                "unknown_questionnaire",
                f"questionnaire {qr.questionnaire!r} is not an instrument of the knowledge base",
            )
            return
        if how:
            ledger.assume(ref, how)
        g = self.group(inst, when)
        g.sources.append(ref)
        used_digits = False
        for item in _walk(qr.item or []):
            answers = item.answer or []
            if not answers:
                continue
            value = answer_value(_answer(answers[0]), self.codes.loinc_answers)
            if value is None:
                continue
            n, digits = self._item_number(inst, item)
            if n == 0:
                g.total = (float(value), ref)
            elif n is not None:
                g.items[n] = (value, ref)
                used_digits = used_digits or digits
        if used_digits:
            ledger.assume(ref, "items matched by the number in their linkId")

    def _questionnaire_instrument(self, url: str) -> tuple[Instrument | None, str | None]:
        for code, inst in self.instruments.whole.items():
            if code in url:
                return inst, None
        if url.startswith(codes.TRDNAV):
            inst_id = url.rstrip("/").split("/")[-1]
            if inst_id in self.kb.instruments:
                return self.kb.instruments[inst_id], None
        tail = url.rstrip("/").split("/")[-1].split("|")[0]
        named = self.kb.resolve_instrument(tail) if tail else None
        if named is not None:
            return named, f"instrument {named.name} read from the questionnaire name {tail!r}"
        return None, None

    def _item_number(self, inst: Instrument, item: Any) -> tuple[int | None, bool]:
        link = str(item.linkId or "")
        candidates = [(c.system, c.code) for c in getattr(item, "code", None) or []] + [
            (codes.LOINC, link.strip("/"))
        ]
        for system, code in candidates:
            if code == inst.loinc.total:
                return 0, False
            for n, item_code in inst.loinc.items.items():
                if code == item_code:
                    return n, False
            if (
                codes.is_system(system, codes.INSTRUMENT_ITEM)
                and code
                and code.startswith(inst.id + ".")
            ):
                tail = code.rpartition(".")[2]
                if tail.isdigit():
                    return int(tail), False
        m = re.search(r"(\d+)$", link)
        if m and 1 <= int(m.group(1)) <= len(inst.items):
            return int(m.group(1)), True
        return None, False

    # --- assembling ----------------------------------------------------------------------------
    def assign_loose(self) -> None:
        for when, answers in sorted(self.loose.items()):
            seen = {a.code.split("|", 1)[1] for a in answers}
            recorded = [g.inst for (_iid, d), g in self.groups.items() if d == when]
            for a in answers:
                system, code = a.code.split("|", 1)
                options = self.instruments.items.get(code, [])
                if codes.is_system(system, codes.INSTRUMENT_ITEM):
                    inst_id, _, number_text = code.rpartition(".")
                    options = [(self.kb.instruments[inst_id], int(number_text))]
                chosen = next(((i, n) for i, n in options if i in recorded), None)
                if chosen is None:
                    fitting = [(i, n) for i, n in options if seen <= set(i.loinc.items.values())]
                    pool = fitting or options
                    chosen = min(pool, key=lambda x: len(x[0].items))
                inst, n = chosen
                g = self.group(inst, when)
                g.items[n] = (a.value, a.ref)
                g.sources.append(a.ref)

    def measurement_items(self) -> None:
        self.assign_loose()
        for (_iid, when), g in sorted(self.groups.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            inst = g.inst
            n_items = len(inst.items)
            data: dict[str, Any] = {"instrument": inst.name, "date": when.isoformat()}
            first = g.sources[0]
            note: str | None = None
            if len(g.items) == n_items:
                data["items"] = [g.items[n][0] for n in range(1, n_items + 1)]
            elif g.total is not None:
                data["total"] = g.total[0]
                if g.items:
                    note = (
                        f"{len(g.items)} of {n_items} items given with the total: the total "
                        "was used"
                    )
            elif g.items:
                data["items"] = [
                    g.items[n][0] if n in g.items else None for n in range(1, n_items + 1)
                ]
                note = f"{len(g.items)} of {n_items} items answered; the others left missing"
            else:
                for ref in g.sources:
                    self.ledger.skip(ref, "no_value", f"{inst.name} without a score or items")
                continue
            item = self.ledger.add("measurements", data, g.sources, (when, inst.name))
            if note:
                self.ledger.assume(first, note, item)


def _walk(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        out.append(item)
        out += _walk(list(item.item or []))
        for ans in item.answer or []:
            out += _walk(list(ans.item or []))
    return out


def _answer(a: Any) -> Any:
    for name in (
        "valueInteger",
        "valueDecimal",
        "valueCoding",
        "valueBoolean",
        "valueString",
        "valueQuantity",
    ):
        v = getattr(a, name, None)
        if v is not None:
            return v
    return None


def read_observations(entries: list[Entry], kb: Knowledge, ledger: Ledger) -> list[LithiumLevel]:
    reader = Reader(kb, ledger)
    for e in entries:
        kind = e.resource.get_resource_type()
        if kind == "Observation":
            reader.observation(e)
        elif kind == "QuestionnaireResponse":
            reader.questionnaire(e)
    reader.measurement_items()
    return reader.lithium
