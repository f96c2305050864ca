"""Clinic forms: submitted fields -> history-format data, and the core's problems -> fields.

A form's field names are the history format's own paths, relative to the entry the form edits:
``start``, ``doses[2].mg_per_day``, ``items[8]``, ``patient.birth_date``. A problem the core reports
at ``treatments[3].doses[2].mg_per_day`` therefore lands on field ``doses[2].mg_per_day`` once the
entry's prefix ``treatments[3]`` is dropped. Where a form lays a path out differently (a condition
is a checkbox named by its term, empty dose rows are skipped) the builder records an alias; a
problem that no field owns is shown at the top of the form.

Forms only turn text into dates, numbers and flags, saying what was expected when they cannot;
every clinical rule (ranges, dates after today, unknown drugs, answers an instrument refuses) is
the core's, applied by :func:`trdnav.storage.records.change` exactly as for a history file.
"""

from __future__ import annotations

import re
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import Enum, StrEnum
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from trdnav.core import history as h
from trdnav.errors import Problem
from trdnav.knowledge.load import Knowledge
from trdnav.knowledge.schema import Instrument, InstrumentItem

Values = Mapping[str, str]


class Kind(StrEnum):
    """How a field's text becomes a value of the history format."""

    TEXT = "text"  # a name or a choice (at most 200 characters)
    NOTE = "note"  # free text (at most 4000 characters)
    DATE = "date"  # YYYY-MM-DD
    NUMBER = "number"  # a decimal number
    WHOLE = "whole"  # a whole number
    PERCENT = "percent"  # 0-100 on the form, a fraction 0-1 in the history
    FLAG = "flag"  # a checkbox
    YESNO = "yesno"  # yes / no / not recorded


Spec = tuple[tuple[str, Kind], ...]

MAX_LENGTH = {Kind.TEXT: 200, Kind.NOTE: 4000}
MAX_DOSE_ROWS = 200
_DECIMAL = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_WHOLE = re.compile(r"^[+-]?\d+$")
_DOSE_FIELD = re.compile(r"^doses\[(\d+)\]\.(from|mg_per_day)$")
_LAST_PART = re.compile(r"(\.[^.\[\]]+|\[\d+\])$")
PATIENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$")
RESERVED_IDS = frozenset({"new"})
_RANGE_CODES = frozenset({"greater_than_equal", "less_than_equal", "greater_than", "less_than"})

# --- what each form holds ------------------------------------------------------------------------

PATIENT_SPEC: Spec = (
    ("patient.birth_date", Kind.DATE),
    ("patient.sex", Kind.TEXT),
    ("patient.pregnant", Kind.FLAG),
    ("patient.breastfeeding", Kind.FLAG),
    ("episode.onset", Kind.DATE),
    ("episode.diagnosis", Kind.TEXT),
    ("episode.severity", Kind.TEXT),
    ("staging_inputs.functional_impairment", Kind.TEXT),
    ("staging_inputs.comorbid_anxiety", Kind.TEXT),
    ("staging_inputs.personality_disorder", Kind.TEXT),
    ("staging_inputs.psychosocial_stressors", Kind.TEXT),
    ("staging_inputs.childhood_trauma", Kind.YESNO),
    ("staging_inputs.psychotherapy_trials", Kind.WHOLE),
    ("staging_inputs.intensified_treatment", Kind.TEXT),
)
_COURSE: Spec = (("start", Kind.DATE), ("stop", Kind.DATE), ("outcome", Kind.TEXT))
_NOTE: Spec = (("note", Kind.NOTE),)
TREATMENT_SPECS: dict[str, Spec] = {
    "medication": (
        ("drug", Kind.TEXT),
        ("augments", Kind.TEXT),
        *_COURSE,
        ("adherence", Kind.PERCENT),
        ("serum_level", Kind.NUMBER),
        ("response_lost_on", Kind.DATE),
        *_NOTE,
    ),
    "ect": (*_COURSE, ("sessions", Kind.WHOLE), ("electrode_placement", Kind.TEXT), *_NOTE),
    "rtms": (*_COURSE, ("sessions", Kind.WHOLE), ("protocol", Kind.TEXT), *_NOTE),
    "esketamine": (*_COURSE, ("sessions", Kind.WHOLE), ("mg_per_session", Kind.NUMBER), *_NOTE),
    "ketamine": (
        *_COURSE,
        ("sessions", Kind.WHOLE),
        ("route", Kind.TEXT),
        ("mg_per_kg", Kind.NUMBER),
        *_NOTE,
    ),
    "psychotherapy": (*_COURSE, ("modality", Kind.TEXT), ("sessions", Kind.WHOLE), *_NOTE),
}
TREATMENT_MODELS: dict[str, type[BaseModel]] = {
    "medication": h.Medication,
    "ect": h.Ect,
    "rtms": h.Rtms,
    "esketamine": h.Esketamine,
    "ketamine": h.Ketamine,
    "psychotherapy": h.Psychotherapy,
}
LAB_SPEC: Spec = (
    ("test", Kind.TEXT),
    ("value", Kind.NUMBER),
    ("unit", Kind.TEXT),
    ("date", Kind.DATE),
)
PGX_SPEC: Spec = (("gene", Kind.TEXT), ("phenotype", Kind.TEXT), ("date", Kind.DATE))
CURRENT_MEDICATION_SPEC: Spec = (
    ("drug", Kind.TEXT),
    ("mg_per_day", Kind.NUMBER),
    ("start", Kind.DATE),
    ("note", Kind.NOTE),
)

# --- choices, with the words a clinician reads ---------------------------------------------------

LABELS: dict[str, str] = {
    "mdd_single": "Major depressive disorder, single episode",
    "mdd_recurrent": "Major depressive disorder, recurrent",
    "persistent_depressive_disorder": "Persistent depressive disorder",
    "bipolar_i_depression": "Bipolar I disorder, depressive episode",
    "bipolar_ii_depression": "Bipolar II disorder, depressive episode",
    "severe_psychotic": "severe, with psychotic features",
    "intolerance": "intolerance (stopped for side effects)",
    "unknown": "not recorded",
    "right_unilateral": "right unilateral",
    "10hz": "10 Hz",
    "itbs": "iTBS",
    "accelerated_itbs": "accelerated iTBS",
    "deep_tms": "deep TMS (H-coil)",
    "1hz_right": "1 Hz right",
    "iv": "IV",
    "im": "IM",
    "cbt": "CBT",
    "cbasp": "CBASP",
    "ipt": "IPT",
    "dbt": "DBT",
    "mbct": "MBCT",
    "behavioral_activation": "behavioural activation",
    "anxiety_disorder": "anxiety disorder",
    "some": "some",
}
TREATMENT_LABELS = {
    "medication": "Medication",
    "ect": "ECT",
    "rtms": "rTMS",
    "esketamine": "Esketamine",
    "ketamine": "Ketamine",
    "psychotherapy": "Psychotherapy",
}


def label(value: str) -> str:
    return LABELS.get(value, value.replace("_", " "))


def _allowed(annotation: Any) -> list[str]:
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return [str(m.value) for m in annotation]
    origin = get_origin(annotation)
    if origin is Literal:
        return [str(a) for a in get_args(annotation)]
    if origin in (Union, types.UnionType):
        return [v for a in get_args(annotation) if a is not type(None) for v in _allowed(a)]
    return []


def choices(model: type[BaseModel], name: str) -> list[tuple[str, str]]:
    """The values the history format allows for a field, with their labels."""
    return [(v, label(v)) for v in _allowed(model.model_fields[name].annotation)]


def patient_options() -> dict[str, list[tuple[str, str]]]:
    options = {
        "patient.sex": choices(h.Patient, "sex"),
        "episode.diagnosis": choices(h.Episode, "diagnosis"),
        "episode.severity": choices(h.Episode, "severity"),
    }
    for name, kind in PATIENT_SPEC:
        if name.startswith("staging_inputs.") and kind is Kind.TEXT:
            options[name] = choices(h.StagingInputs, name.removeprefix("staging_inputs."))
    return options


def treatment_options(kind: str) -> dict[str, list[tuple[str, str]]]:
    model = TREATMENT_MODELS[kind]
    return {
        name: choices(model, name)
        for name, k in TREATMENT_SPECS[kind]
        if k is Kind.TEXT and _allowed(model.model_fields[name].annotation)
    }


def treatment_defaults(kind: str) -> dict[str, str]:
    """The value the history format gives a choice left out (what a new form shows selected)."""
    model = TREATMENT_MODELS[kind]
    out = {}
    for name in treatment_options(kind) | {"outcome": []}:
        default = model.model_fields[name].default
        if isinstance(default, str):
            out[name] = str(default)
    return out


def drug_names(kb: Knowledge) -> list[tuple[str, str]]:
    """Every name the knowledge base resolves a drug by (generic and brands), for a datalist."""
    out: list[tuple[str, str]] = []
    for d in sorted(kb.drugs.values(), key=lambda d: d.name.lower()):
        out.append((d.name, d.drug_class.replace("_", " ")))
        out.extend((brand, f"brand of {d.name}") for brand in d.brands)
    return out


FIELD_LABELS: dict[str, str] = {
    "patient.id": "Patient identifier",
    "patient.birth_date": "Birth date",
    "patient.sex": "Sex",
    "patient.pregnant": "Pregnant",
    "patient.breastfeeding": "Breastfeeding",
    "episode.onset": "Onset of the current episode",
    "episode.diagnosis": "Diagnosis",
    "episode.severity": "Severity at baseline",
    "staging_inputs.functional_impairment": "Functional impairment",
    "staging_inputs.comorbid_anxiety": "Comorbid anxiety",
    "staging_inputs.personality_disorder": "Personality disorder",
    "staging_inputs.psychosocial_stressors": "Psychosocial stressors",
    "staging_inputs.childhood_trauma": "Childhood trauma",
    "staging_inputs.psychotherapy_trials": "Psychotherapy trials",
    "staging_inputs.intensified_treatment": "Intensified treatment",
    "type": "Treatment type",
    "drug": "Drug",
    "augments": "Added to (for an add-on)",
    "start": "Start",
    "stop": "Stop",
    "outcome": "Outcome",
    "adherence": "Adherence",
    "serum_level": "Serum level",
    "response_lost_on": "Response lost on",
    "note": "Note",
    "sessions": "Sessions",
    "electrode_placement": "Electrode placement",
    "protocol": "Protocol",
    "mg_per_session": "Dose per session",
    "route": "Route",
    "mg_per_kg": "Dose per kg",
    "modality": "Modality",
    "doses": "Dose steps",
    "instrument": "Instrument",
    "date": "Date",
    "items": "Item answers",
    "total": "Total score",
    "test": "Test",
    "value": "Value",
    "unit": "Unit",
    "gene": "Gene",
    "phenotype": "Phenotype",
    "mg_per_day": "Dose",
    "conditions": "Conditions",
}
_ROW_FIELD = re.compile(r"^(doses|items)\[(\d+)\](?:\.(from|mg_per_day))?$")


def field_label(name: str, kb: Knowledge | None = None) -> str:
    """The label a field has on its form (also used in the list of problems at the top)."""
    if name in FIELD_LABELS:
        return FIELD_LABELS[name]
    row = _ROW_FIELD.match(name)
    if row is not None:
        what, n, part = row.group(1), int(row.group(2)) + 1, row.group(3)
        if what == "items":
            return f"Item {n}"
        return f"Dose step {n}: " + ("from" if part == "from" else "mg/day")
    if name.startswith("conditions.") and kb is not None:
        term_id, _, status = name.removeprefix("conditions.").partition(".")
        term = kb.conditions.get(term_id)
        if term is not None:
            return f"Status of {term.label}" if status else term.label
    return name


# --- the entry a form submits --------------------------------------------------------------------


@dataclass
class Entry:
    """One form's entry as history-format data, and what is wrong with it, by field."""

    data: dict[str, Any]
    fields: set[str]
    errors: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    percent: set[str] = field(default_factory=set)
    top: list[str] = field(default_factory=list)

    def place(self, problems: Iterable[Problem], prefix: str = "") -> None:
        """Put each problem next to its field; a problem no field owns goes to the top.

        A field the form itself could not read keeps the form's message (the core then sees the
        field as missing, which would only repeat it).
        """
        refused = set(self.errors)
        for p in problems:
            name = self.field_for(p.loc, prefix)
            if name is None:
                own = bool(prefix) and _inside(p.loc, prefix)
                self.top.append(p.message if own else p.render())
                continue
            if name in refused:
                continue
            message = p.message
            if name in self.percent and p.code in _RANGE_CODES:
                message = "enter a percentage from 0 to 100"
            if name in self.errors:
                if message not in self.errors[name]:
                    self.errors[name] += f"; {message}"
            else:
                self.errors[name] = message

    def field_for(self, loc: str, prefix: str = "") -> str | None:
        if not _inside(loc, prefix):
            return None
        path = loc[len(prefix) :].lstrip(".") if prefix else loc
        while path:
            if path in self.aliases:
                return self.aliases[path]
            if path in self.fields:
                return path
            parent = _LAST_PART.sub("", path)
            if parent == path:
                return None
            path = parent
        return None


def _inside(loc: str, prefix: str) -> bool:
    return not prefix or loc == prefix or loc.startswith((prefix + ".", prefix + "["))


def convert(kind: Kind, text: str) -> tuple[Any, str | None]:
    """``(value, None)`` or ``(None, what was expected)``; an empty field is ``(None, None)``."""
    if kind is Kind.FLAG:
        return text not in ("", "0", "off", "false"), None
    if text == "":
        return None, None
    if kind in MAX_LENGTH:
        limit = MAX_LENGTH[kind]
        return (text, None) if len(text) <= limit else (None, f"at most {limit} characters")
    if kind is Kind.DATE:
        try:
            return date.fromisoformat(text), None
        except ValueError:
            return None, "enter a date as YYYY-MM-DD, e.g. 2024-03-15"
    if kind is Kind.WHOLE:
        return (int(text), None) if _WHOLE.match(text) else (None, "enter a whole number")
    if kind is Kind.YESNO:
        if text in ("yes", "no"):
            return text == "yes", None
        return None, "choose yes, no or not recorded"
    if not _DECIMAL.match(text):
        hint = " (use a decimal point, not a comma)" if "," in text else ""
        return None, f"enter a number, e.g. 150 or 37.5{hint}"
    value = float(text)
    if kind is Kind.PERCENT:
        return round(value / 100, 6), None
    return value, None


def shown(kind: Kind, value: Any) -> str:
    """A stored value as the form shows it."""
    if kind is Kind.FLAG:
        return "on" if value else ""
    if kind is Kind.YESNO:
        return "yes" if value else "no"
    if kind is Kind.PERCENT:
        return plain(round(float(value) * 100, 6))
    if kind is Kind.NUMBER:
        return plain(float(value))
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def plain(x: float) -> str:
    """150.0 -> '150', 37.5 -> '37.5' (no rounding: re-saving keeps the value)."""
    text = repr(float(x))
    return text.removesuffix(".0")


def build(values: Values, spec: Spec) -> tuple[dict[str, Any], dict[str, str]]:
    """The fields of ``spec`` as (nested) history data, and the fields that could not be read."""
    data: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, kind in spec:
        value, error = convert(kind, values.get(name, "").strip())
        if error is not None:
            errors[name] = error
        elif value is not None:
            *parents, last = name.split(".")
            node = data
            for part in parents:
                node = node.setdefault(part, {})
            node[last] = value
    return data, errors


def form_values(data: Mapping[str, Any], spec: Spec) -> dict[str, str]:
    """History data (as :func:`trdnav.storage.records.history_data` gives it) as form values."""
    out: dict[str, str] = {}
    for name, kind in spec:
        node: Any = data
        for part in name.split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        if node is not None:
            out[name] = shown(kind, node)
    return out


def _entry(values: Values, spec: Spec) -> Entry:
    data, errors = build(values, spec)
    return Entry(
        data,
        {n for n, _ in spec},
        errors,
        percent={n for n, k in spec if k is Kind.PERCENT},
    )


# --- patient and episode -------------------------------------------------------------------------


def patient_entry(values: Values, kb: Knowledge, patient_id: str | None = None) -> Entry:
    """``patient``, ``episode``, ``conditions`` and ``staging_inputs`` of a record.

    ``patient_id`` is the stored record's (an edit never changes it); a new patient's comes from
    the form's ``patient.id`` field, which must be usable in a page address.
    """
    entry = _entry(values, PATIENT_SPEC)
    entry.fields |= {"patient.id", "patient", "episode", "staging_inputs", "conditions"}
    if patient_id is None:
        patient_id = values.get("patient.id", "").strip()
        if not patient_id:
            entry.errors["patient.id"] = "enter the clinic's identifier for the patient"
        elif patient_id in RESERVED_IDS:
            entry.errors["patient.id"] = f"{patient_id!r} is reserved: choose another identifier"
        elif not PATIENT_ID.match(patient_id):
            entry.errors["patient.id"] = (
                "use up to 120 letters, digits, '.', '_' or '-', starting with a letter or digit "
                "(the identifier becomes part of the page address)"
            )
    entry.data.setdefault("patient", {})["id"] = patient_id
    conditions: list[dict[str, str]] = []
    for term in kb.conditions.values():
        box = f"conditions.{term.id}"
        status = values.get(f"{box}.status", "").strip()
        entry.fields |= {box, f"{box}.status"}
        if not (convert(Kind.FLAG, values.get(box, ""))[0] or status):
            continue  # choosing a status selects the condition too
        i = len(conditions)
        conditions.append({"name": term.id, **({"status": status} if status else {})})
        entry.aliases |= {
            f"conditions[{i}]": box,
            f"conditions[{i}].name": box,
            f"conditions[{i}].status": f"{box}.status",
        }
    entry.data["conditions"] = conditions
    return entry


def patient_values(data: Mapping[str, Any]) -> dict[str, str]:
    out = form_values(data, PATIENT_SPEC)
    for cond in data.get("conditions", ()):
        out[f"conditions.{cond['name']}"] = "on"
        if cond.get("status"):
            out[f"conditions.{cond['name']}.status"] = cond["status"]
    return out


def apply_patient(data: dict[str, Any], entry: Entry) -> None:
    """Replace a record's patient, episode, conditions and staging inputs by the form's."""
    for key in ("patient", "episode", "conditions"):
        data[key] = entry.data.get(key, {})
    if entry.data.get("staging_inputs"):
        data["staging_inputs"] = entry.data["staging_inputs"]
    else:
        data.pop("staging_inputs", None)


# --- treatments ----------------------------------------------------------------------------------


def dose_rows(values: Values, extra: int = 0) -> int:
    """How many dose rows the form shows: those submitted (at least one), plus ``extra``."""
    indices = [int(m.group(1)) for k in values if (m := _DOSE_FIELD.match(k))]
    shown_rows = max((i + 1 for i in indices if i < MAX_DOSE_ROWS), default=1)
    return min(shown_rows + extra, MAX_DOSE_ROWS)


def treatment_entry(values: Values, kind: str) -> Entry:
    entry = _entry(values, TREATMENT_SPECS[kind])
    entry.data["type"] = kind
    entry.fields.add("type")
    if kind != "medication":
        return entry
    entry.fields.add("doses")
    doses: list[dict[str, Any]] = []
    for row in range(dose_rows(values)):
        names = {key: f"doses[{row}].{key}" for key in ("from", "mg_per_day")}
        entry.fields |= set(names.values())
        texts = {key: values.get(name, "").strip() for key, name in names.items()}
        if not any(texts.values()):
            continue  # an empty row is no dose step
        step: dict[str, Any] = {}
        for key, kind_ in (("from", Kind.DATE), ("mg_per_day", Kind.NUMBER)):
            value, error = convert(kind_, texts[key])
            if error is not None:
                entry.errors[names[key]] = error
            elif value is not None:
                step[key] = value
        k = len(doses)
        doses.append(step)
        entry.aliases |= {
            f"doses[{k}]": names["from"],
            f"doses[{k}].from": names["from"],
            f"doses[{k}].mg_per_day": names["mg_per_day"],
        }
    entry.data["doses"] = doses
    return entry


def treatment_values(data: Mapping[str, Any]) -> dict[str, str]:
    kind = str(data["type"])
    out = form_values(data, TREATMENT_SPECS[kind])
    out["type"] = kind
    for row, step in enumerate(data.get("doses", ())):
        out[f"doses[{row}].from"] = shown(Kind.DATE, step["from"])
        out[f"doses[{row}].mg_per_day"] = shown(Kind.NUMBER, step["mg_per_day"])
    return out


# --- measurements and screens --------------------------------------------------------------------


def item_label(inst: Instrument, item: InstrumentItem) -> str:
    """The item's wording where the licence allows it; otherwise its number and domain."""
    if inst.licence.store_item_text and item.text:
        return item.text
    return f"Item {item.n}" + (f" — {item.domain.replace('_', ' ')}" if item.domain else "")


def answers(inst: Instrument, item: InstrumentItem) -> list[tuple[str, str]]:
    """The answers an item accepts, as (value, label)."""
    if inst.answer_type == "yes_no" and (item.min, item.max) == (0, 1):
        return [("0", "No"), ("1", "Yes")]
    return [(str(v), str(v)) for v in range(item.min, item.max + 1)]


def measurement_entry(values: Values, inst: Instrument) -> Entry:
    """A measurement of ``inst``: its item answers, or a total alone where it has one."""
    entry = _entry(values, (("date", Kind.DATE),))
    entry.data["instrument"] = inst.name
    entry.fields |= {"instrument", "items", "total"}
    given: list[int | None] = []
    for k in range(len(inst.items)):
        name = f"items[{k}]"
        entry.fields.add(name)
        text = values.get(name, "").strip()
        if text and not _WHOLE.match(text):
            entry.errors[name] = "choose one of the answers"
        given.append(int(text) if text and _WHOLE.match(text) else None)
    total_text = values.get("total", "").strip() if inst.scored else ""
    total, error = convert(Kind.NUMBER, total_text)
    if error is not None:
        entry.errors["total"] = error
    elif total is not None and any(a is not None for a in given):
        entry.errors["total"] = "enter the item answers or a total, not both"
    elif total is not None:
        entry.data["total"] = total
        return entry
    entry.data["items"] = given
    return entry


def mark_unanswered(entry: Entry, inst: Instrument) -> None:
    """When the core refuses incomplete answers, mark each unanswered item next to it."""
    if "items" not in entry.errors or "items" not in entry.data:
        return
    for k, a in enumerate(entry.data["items"]):
        if a is None:
            entry.errors.setdefault(f"items[{k}]", "not answered")


def lab_entry(values: Values) -> Entry:
    return _entry(values, LAB_SPEC)


def pgx_entry(values: Values) -> Entry:
    return _entry(values, PGX_SPEC)


def current_medication_entry(values: Values) -> Entry:
    return _entry(values, CURRENT_MEDICATION_SPEC)
