"""Resources written by TRD Navigator's own export, read back exactly.

The export (interop.fhir.export) marks every resource made from a part of the history with the
identifier ``https://trdnav.org/fhir/NamingSystem/history-item`` = ``<patient>/<path>`` (e.g.
``EX10/treatments/2``) and carries what FHIR has no element for in the project's code systems and
extensions (docs/fhir.md). Such resources are mapped field by field, with no heuristics, and keep
their order in the history, so ``import(export(history))`` gives the history back. The
assessment's own Observations (TRD status, stages) are derived data: reported, not imported.
"""

from __future__ import annotations

from typing import Any

from trdnav.interop.fhir import codes
from trdnav.interop.fhir.bundle import Entry
from trdnav.interop.fhir.ledger import Item, Ledger, codings, extension, number, to_date
from trdnav.knowledge.load import Knowledge, default_knowledge

NS_ITEM = f"{codes.TRDNAV}/NamingSystem/history-item"
NS_PATIENT = f"{codes.TRDNAV}/NamingSystem/patient-id"
CS_ASSESSMENT = f"{codes.TRDNAV}/CodeSystem/assessment"
CS_DIAGNOSIS = f"{codes.TRDNAV}/CodeSystem/diagnosis"
CS_SEVERITY = f"{codes.TRDNAV}/CodeSystem/severity"
CS_CONDITION = f"{codes.TRDNAV}/CodeSystem/condition"
CS_TREATMENT = f"{codes.TRDNAV}/CodeSystem/treatment-type"
CS_LAB = f"{codes.TRDNAV}/CodeSystem/lab"
CS_PGX = f"{codes.TRDNAV}/CodeSystem/pgx-gene"
CS_STAGING_INPUT = f"{codes.TRDNAV}/CodeSystem/staging-input"
EXT_OUTCOME = f"{codes.TRDNAV}/StructureDefinition/trial-outcome"
EXT_TRIAL_START = f"{codes.TRDNAV}/StructureDefinition/trial-start"
EXT_TRIAL_STOP = f"{codes.TRDNAV}/StructureDefinition/trial-stop"
EXT_CONDITION_STATUS = f"{codes.TRDNAV}/StructureDefinition/condition-status"
EXT_ENTERED_TOTAL = f"{codes.TRDNAV}/StructureDefinition/entered-total"
_DETAIL_FIELD = {
    "ect": "electrode_placement",
    "rtms": "protocol",
    "ketamine": "route",
    "psychotherapy": "modality",
}


def item_path(resource: Any, patient_id: str) -> str | None:
    """``treatments/2`` from the history-item identifier, or None."""
    raw = getattr(resource, "identifier", None)
    idents = raw if isinstance(raw, list) else ([raw] if raw is not None else [])
    for ident in idents:
        if codes.is_system(ident.system, NS_ITEM) and ident.value:
            value = str(ident.value)
            prefix = f"{patient_id}/"
            return value[len(prefix) :] if value.startswith(prefix) else value.split("/", 1)[-1]
    return None


def is_assessment(resource: Any) -> bool:
    code = getattr(resource, "code", None)
    return any(codes.is_system(c.system, CS_ASSESSMENT) for c in codings(code))


def _code(cc: Any, system: str) -> str | None:
    for c in codings(cc):
        if codes.is_system(c.system, system) and c.code:
            return str(c.code)
    return None


def _iso(value: Any) -> str | None:
    when, _ = to_date(value)
    return when.isoformat() if when else None


def _ext(resource: Any, url: str, kind: str) -> Any:
    e = extension(resource, url)
    return getattr(e, f"value{kind}", None) if e is not None else None


def _num(value: Any) -> float | int | None:
    n = number(value)
    if n is None:
        return None
    return int(n) if float(n).is_integer() else n


def _rate_mg(dosages: Any) -> float | int | None:
    for d in dosages or []:
        for dr in d.doseAndRate or []:
            if dr.rateRatio is not None and dr.rateRatio.numerator is not None:
                return _num(dr.rateRatio.numerator.value)
    return None


class RecordReader:
    """Collects the export's resources into history items (keyed by their history path)."""

    def __init__(self, patient_id: str, ledger: Ledger, kb: Knowledge | None = None) -> None:
        self.pid = patient_id
        self.ledger = ledger
        # the LOINC answers of the pregnancy and breastfeeding status observations (kb.codes)
        self.status_answer = codes.tables(kb or default_knowledge()).status_answer
        self.trials: dict[int, tuple[dict[str, Any], list[str], list[tuple[str, Any]]]] = {}
        self.episode: dict[str, Any] | None = None
        self.patient: dict[str, Any] = {}
        self.staging: dict[str, Any] = {}
        self.staging_refs: list[str] = []

    def read(self, e: Entry, path: str) -> bool:
        """Map one resource of the export; False when it is not one this reader knows."""
        r = e.resource
        kind = r.get_resource_type()
        parts = path.split("/")
        head = parts[0]
        index = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        if head == "episode" and kind == "Condition":
            self.episode = {
                "onset": _iso(r.onsetDateTime),
                "diagnosis": _code(r.code, CS_DIAGNOSIS),
                "severity": _code(r.severity, CS_SEVERITY),
            }
            self.ledger.to(e.ref, "episode")
            return True
        if head == "conditions" and index is not None and kind == "Condition":
            data: dict[str, Any] = {"name": _code(r.code, CS_CONDITION) or r.code.text}
            status = _ext(r, EXT_CONDITION_STATUS, "String")
            if status is not None:
                data["status"] = status
            self._add("conditions", data, e.ref, index)
            return True
        if head == "treatments" and index is not None:
            if kind == "MedicationStatement":
                self._medication_step(e, index)
                return True
            if kind == "Procedure":
                self._procedure(e, index)
                return True
        if head == "current_medications" and index is not None and kind == "MedicationStatement":
            data = {"drug": r.medicationCodeableConcept.text}
            mg = _rate_mg(r.dosage)
            if mg is not None:
                data["mg_per_day"] = mg
            if r.effectivePeriod is not None and r.effectivePeriod.start is not None:
                data["start"] = _iso(r.effectivePeriod.start)
            if r.note:
                data["note"] = r.note[0].text
            self._add("current_medications", data, e.ref, index)
            return True
        if head == "measurements" and index is not None:
            return self._measurement(e, index, kind)
        if head == "labs" and index is not None and kind == "Observation":
            q = r.valueQuantity
            data = {
                "test": r.code.text,
                "value": _num(q.value) if q is not None else None,
                "unit": q.unit if q is not None else None,
                "date": _iso(r.effectiveDateTime),
            }
            self._add("labs", data, e.ref, index)
            return True
        if head == "pgx" and index is not None and kind == "Observation":
            data = {"gene": _code(r.code, CS_PGX), "phenotype": r.valueCodeableConcept.text}
            if r.effectiveDateTime is not None:
                data["date"] = _iso(r.effectiveDateTime)
            self._add("pgx", data, e.ref, index)
            return True
        if head == "clinician_alerts" and index is not None and kind == "RiskAssessment":
            data = {"type": "suicide_risk", "date": _iso(r.occurrenceDateTime)}
            pred = r.prediction[0] if r.prediction else None
            risk = pred.qualitativeRisk if pred is not None else None
            data["severity"] = risk.text if risk is not None else None
            if r.note:
                data["note"] = r.note[0].text
            if r.performer is not None and r.performer.display:
                data["entered_by"] = r.performer.display
            self._add("clinician_alerts", data, e.ref, index)
            return True
        if head == "patient" and kind == "Observation" and len(parts) == 2:
            answer = _code(r.valueCodeableConcept, codes.LOINC)
            if parts[1] not in ("pregnant", "breastfeeding"):
                return False
            yes = self.status_answer.get((parts[1], True))  # the answer meaning "it is so"
            self.patient[parts[1]] = answer is not None and yes is not None and answer == yes[0]
            self.ledger.to(e.ref, f"patient.{parts[1]}")
            return True
        if head == "staging_inputs" and kind == "Observation" and len(parts) == 2:
            value: Any = r.valueBoolean if r.valueBoolean is not None else r.valueInteger
            if value is None and r.valueCodeableConcept is not None:
                value = r.valueCodeableConcept.text
            self.staging[parts[1]] = value
            self.ledger.to(e.ref, f"staging_inputs.{parts[1]}")
            return True
        return False

    def _add(self, section: str, data: dict[str, Any], ref: str, index: int) -> Item:
        return self.ledger.add(section, data, [ref], (), order=index)

    def _medication_step(self, e: Entry, index: int) -> None:
        r = e.resource
        if index not in self.trials:
            data: dict[str, Any] = {
                "type": "medication",
                "drug": r.medicationCodeableConcept.text,
                "start": _iso(_ext(r, EXT_TRIAL_START, "Date")),
            }
            stop = _ext(r, EXT_TRIAL_STOP, "Date")
            if stop is not None:
                data["stop"] = _iso(stop)
            outcome = _ext(r, EXT_OUTCOME, "Coding")
            if outcome is not None and outcome.code:
                data["outcome"] = outcome.code
            for url, name, kind in (
                (codes.EXT_ADHERENCE, "adherence", "Decimal"),
                (codes.EXT_AUGMENTS, "augments", "String"),
                (codes.EXT_SERUM_LEVEL, "serum_level", "Decimal"),
                (codes.EXT_RESPONSE_LOST_ON, "response_lost_on", "Date"),
            ):
                value = _ext(r, url, kind)
                if value is not None:
                    data[name] = (
                        _iso(value)
                        if kind == "Date"
                        else _num(value)
                        if kind == "Decimal"
                        else value
                    )
            if r.note:
                data["note"] = r.note[0].text
            self.trials[index] = (data, [], [])
        data, refs, steps = self.trials[index]
        refs.append(e.ref)
        mg = _rate_mg(r.dosage)
        if mg is not None and r.effectivePeriod is not None:
            seq = r.dosage[0].sequence if r.dosage else None
            steps.append(
                (
                    f"{seq or 0:06d}{_iso(r.effectivePeriod.start)}",
                    {"from": _iso(r.effectivePeriod.start), "mg_per_day": mg},
                )
            )

    def _procedure(self, e: Entry, index: int) -> None:
        r = e.resource
        kind = _code(r.code, CS_TREATMENT) or "other"
        data: dict[str, Any] = {"type": kind}
        if r.performedPeriod is not None:
            data["start"] = _iso(r.performedPeriod.start)
            if r.performedPeriod.end is not None:
                data["stop"] = _iso(r.performedPeriod.end)
        outcome = _code(r.outcome, codes.TRIAL_OUTCOME)
        if outcome is not None:
            data["outcome"] = outcome
        detail = _code(r.code, codes.TREATMENT_DETAIL)
        if detail is not None and kind in _DETAIL_FIELD:
            data[_DETAIL_FIELD[kind]] = detail.partition(".")[2]
        sessions = _ext(r, codes.EXT_SESSIONS, "Integer")
        if sessions is not None:
            data["sessions"] = sessions
        for url, name in (
            (codes.EXT_MG_PER_SESSION, "mg_per_session"),
            (codes.EXT_MG_PER_KG, "mg_per_kg"),
        ):
            value = _ext(r, url, "Decimal")
            if value is not None:
                data[name] = _num(value)
        if r.note:
            data["note"] = r.note[0].text
        self._add("treatments", data, e.ref, index)

    def _measurement(self, e: Entry, index: int, kind: str) -> bool:
        r = e.resource
        if kind == "QuestionnaireResponse":
            self.ledger.to(e.ref, f"measurements[{index}] (items also in its Observation)")
            return True
        if kind != "Observation":
            return False
        data: dict[str, Any] = {"instrument": r.code.text, "date": _iso(r.effectiveDateTime)}
        if r.component:
            data["items"] = [
                c.valueInteger if c.valueInteger is not None else None for c in r.component
            ]
            entered = _ext(r, EXT_ENTERED_TOTAL, "Decimal")
            if entered is not None:
                data["total"] = _num(entered)
        elif r.valueQuantity is not None:
            data["total"] = _num(r.valueQuantity.value)
        self._add("measurements", data, e.ref, index)
        return True

    def finish(self) -> None:
        for index, (data, refs, steps) in sorted(self.trials.items()):
            if steps:
                data["doses"] = [s for _k, s in sorted(steps, key=lambda x: x[0])]
            self.ledger.add("treatments", data, refs, (), order=index)
