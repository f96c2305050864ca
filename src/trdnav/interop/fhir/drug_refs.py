"""Which drug a medication resource names: an RxNorm ingredient, clinical or branded drug, a
``Medication`` resource, or only words, rolled up to an ingredient of the knowledge base (with the
strength of one unit when the resource gives it). Used by the FHIR import and the CDS service."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from trdnav.interop.fhir import codes
from trdnav.interop.fhir.bundle import Entry
from trdnav.interop.fhir.dosage import strength_in_text
from trdnav.interop.fhir.ledger import codings, number, texts
from trdnav.knowledge.load import Knowledge
from trdnav.knowledge.schema import Drug


@dataclass
class DrugRef:
    drug: Drug | None
    name: str | None
    strength: float | None
    assumption: str | None
    sources: list[str]


class Medications:
    """Resolves drug names and codes against the knowledge base."""

    def __init__(self, kb: Knowledge, entries: list[Entry]) -> None:
        self.kb = kb
        self.by_rxnorm = {d.rxnorm: d for d in kb.drugs.values() if d.rxnorm}
        self.medications: dict[str, Entry] = {}
        for e in entries:
            if e.resource.get_resource_type() == "Medication":
                self.medications[e.ref] = e
                if e.full_url:
                    self.medications[e.full_url] = e

    def drug_in_words(self, words: str) -> Drug | None:
        for brand in re.findall(r"\[([^\]]+)\]", words):
            d = self.kb.resolve_drug(brand)
            if d is not None:
                return d
        d = self.kb.resolve_drug(words)
        if d is not None:
            return d
        tokens = re.findall(r"[A-Za-z][A-Za-z\-]+", words)
        for n in (3, 2, 1):
            for i in range(len(tokens) - n + 1):
                d = self.kb.resolve_drug(" ".join(tokens[i : i + n]))
                if d is not None:
                    return d
        return None

    def resolve(self, resource: Any) -> DrugRef:
        cc = getattr(resource, "medicationCodeableConcept", None)
        sources: list[str] = []
        strength: float | None = None
        ref = getattr(resource, "medicationReference", None)
        if cc is None and ref is not None and ref.reference:
            med = self._medication(resource, ref.reference)
            if med is not None:
                ref_name, med_resource = med
                if ref_name:
                    sources.append(ref_name)
                cc = med_resource.code
                strength = _ingredient_strength(med_resource)
        words = texts(cc)
        if strength is None:
            for w in words:
                strength = strength_in_text(w)
                if strength is not None:
                    break
        rx = [c for c in codings(cc) if codes.is_system(c.system, codes.RXNORM) and c.code]
        for c in rx:
            d = self.by_rxnorm.get(c.code)
            if d is not None:
                return DrugRef(d, self._as_written(d, words), strength, None, sources)
        for w in words:
            d = self.drug_in_words(w)
            if d is not None:
                how = (
                    f"RxNorm {rx[0].code} is not an ingredient of the knowledge base: read as "
                    f"{d.name} from its words {w!r}"
                    if rx
                    else f"no RxNorm code: {d.name} read from the words {w!r}"
                )
                if rx and strength is not None:
                    how += f" ({strength:g} mg per unit)"
                return DrugRef(d, self._as_written(d, words), strength, how, sources)
        name = words[0] if words else None
        return DrugRef(None, name, strength, None, sources)

    def _as_written(self, d: Drug, words: list[str]) -> str:
        """The name as the record writes it (``Wellbutrin XL``) when it names this drug."""
        for w in words:
            if self.kb.resolve_drug(w) is d:
                return w
        return d.name

    def _medication(self, resource: Any, reference: str) -> tuple[str | None, Any] | None:
        if reference.startswith("#"):
            for c in getattr(resource, "contained", None) or []:
                if c.get_resource_type() == "Medication" and c.id == reference[1:]:
                    return None, c
            return None
        e = self.medications.get(reference) or self.medications.get(
            "/".join(reference.rstrip("/").split("/")[-2:])
        )
        return (e.ref, e.resource) if e is not None else None


def _ingredient_strength(med: Any) -> float | None:
    for ing in med.ingredient or []:
        ratio = ing.strength
        if ratio is None or ratio.numerator is None:
            continue
        unit = (ratio.numerator.code or ratio.numerator.unit or "").lower()
        value = number(ratio.numerator.value)
        per = number(ratio.denominator.value) if ratio.denominator is not None else 1.0
        if value is not None and unit == "mg" and per:
            return value / per
    return None
