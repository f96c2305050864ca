"""FHIR R4 resources (prefetch or fetched) -> a History, and the draft orders of the order hooks.

Both go through the project's FHIR import (:mod:`trdnav.interop.fhir`): the record through
``import_fhir`` (every resource mapped or reported, assumptions named), a draft
``MedicationRequest`` through the same drug resolution (RxNorm at any level, brand or generic
words) and the same dosage reading (structured or free text) as an imported prescription. The
hooks never map FHIR themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from fhir.resources.R4B.medicationrequest import MedicationRequest
from pydantic import ValidationError

from trdnav.core.history import History
from trdnav.interop.fhir.dosage import daily_mg
from trdnav.interop.fhir.drug_refs import Medications
from trdnav.interop.fhir.import_ import import_fhir
from trdnav.knowledge.load import Knowledge
from trdnav.knowledge.schema import Drug


@dataclass
class FhirHistory:
    history: History
    notes: list[str] = field(default_factory=list)  # resources not used, assumptions made


def read_history(resources: list[dict[str, Any]], kb: Knowledge, today: date) -> FhirHistory:
    """The History of the record; ``InputError`` when none can be made (patient, episode)."""
    result = import_fhir(resources, kb, today)
    history = result.history
    if history.assessed_on is None:
        history = history.model_copy(update={"assessed_on": today})
    report = result.report
    notes = [f"{n.resource} not used: {n.reason}" for n in report.not_mapped]
    notes += [f"{a.resource}: {a.assumption}" for a in report.assumptions]
    return FhirHistory(history, notes)


@dataclass(frozen=True)
class DraftOrder:
    resource: dict[str, Any]
    drug: Drug | None
    name: str
    mg_per_day: float | None  # None: no dose could be read
    note: str | None = None  # why the drug or the dose could not be read, or an assumption

    @property
    def ref(self) -> str:
        return f"MedicationRequest/{self.resource.get('id', '')}"


def read_order(resource: dict[str, Any], kb: Knowledge) -> DraftOrder:
    """The drug and daily dose of a draft MedicationRequest, read as the import reads one."""
    try:
        model = MedicationRequest.model_validate(resource)
    except (ValidationError, ValueError, TypeError) as exc:
        return DraftOrder(resource, None, "an unreadable order", None, f"not valid FHIR: {exc}")
    ref = Medications(kb, []).resolve(model)
    name = ref.name or (ref.drug.name if ref.drug else "an uncoded medication")
    for dosage in model.dosageInstruction or []:
        dose, why = daily_mg(dosage, ref.strength)
        if dose is not None:
            return DraftOrder(resource, ref.drug, name, dose.mg, dose.assumption or ref.assumption)
        return DraftOrder(resource, ref.drug, name, None, why)
    return DraftOrder(resource, ref.drug, name, None, "the order gives no dosage")
