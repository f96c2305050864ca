"""Knowledge models and loader for the code tables of the FHIR import and export.

Files under ``knowledge/data/codes/``, each a mapping of table name to a list of entries:

- ``diagnoses.yaml``: ``diagnoses`` (ICD-10-CM and SNOMED CT codes of the episode's diagnosis and,
  for ICD-10-CM, its severity) and ``severities`` (SNOMED CT severity qualifiers);
- ``conditions.yaml``: ``conditions`` (codes of the conditions vocabulary,
  ``knowledge/data/conditions.yaml``, with a status where the code implies one);
- ``patient.yaml``: ``pregnancy`` (Condition codes meaning the patient is pregnant) and
  ``patient_status`` (the LOINC pregnancy and breastfeeding status observations and answers);
- ``labs.yaml``: ``labs`` (LOINC codes of the screening labs, ``knowledge/data/workup/labs.yaml``,
  and of drug levels);
- ``answers.yaml``: ``answers`` (LOINC answer codes and the item score they stand for);
- ``procedures.yaml``: ``procedures`` (CPT, HCPCS and SNOMED CT codes of treatment courses).

Every entry names its code system, the code, the display read in the source, what it maps to, and
carries ``source``, ``verified`` and ``checked_against``. ICD-10-CM entries may be prefixes
(``prefix: true``: the code and every code under it; the longest prefix wins). Load errors name
the file and the entry (``<table>[<system> <code>]``): an unknown diagnosis, severity, condition
term or status, lab or drug; a duplicate (system, code); a prefix outside ICD-10-CM; ``verified``
without ``checked_against``. Citation keys are checked by the loader with every other source.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError

from trdnav.core.history import Diagnosis, Severity
from trdnav.errors import Problem
from trdnav.knowledge.schema import Sourced, Strict

CodeSystemName = Literal["icd10cm", "snomed", "loinc", "cpt", "hcpcs"]
TreatmentType = Literal["ect", "rtms", "esketamine", "ketamine", "psychotherapy"]
TABLES = (
    "diagnoses",
    "severities",
    "conditions",
    "pregnancy",
    "patient_status",
    "labs",
    "answers",
    "procedures",
)


def code_key(system: str, code: str) -> str:
    """The form a code is compared in: ICD-10-CM without dots, upper case; others as written."""
    return code.replace(".", "").upper() if system == "icd10cm" else code


class CodeEntry(Sourced):
    """One code of a standard code system and what it maps to (the subclass's fields)."""

    system: CodeSystemName
    code: str = Field(min_length=1)
    display: str = Field(min_length=1, description="the display or title read in the source")
    prefix: bool = Field(
        default=False, description="ICD-10-CM: the code and every code under it (longest wins)"
    )

    @property
    def id(self) -> str:
        """``"icd10cm F33.1"``: how load errors and the review name the entry."""
        return f"{self.system} {self.code}"

    @property
    def key(self) -> str:
        return code_key(self.system, self.code)


class DiagnosisCode(CodeEntry):
    """An episode diagnosis (and, for ICD-10-CM, the severity its 4th character gives)."""

    diagnosis: str | None = Field(
        default=None, description="history episode.diagnosis; none when excluded"
    )
    excluded: bool = Field(
        default=False, description="under a diagnosis prefix but not that diagnosis (F32.A)"
    )
    severity: str | None = Field(default=None, description="history episode.severity it gives")
    export_for: tuple[str, ...] = Field(
        default=(), description="episode severities the export writes this code for"
    )


class SeverityCode(CodeEntry):
    """A severity qualifier of ``Condition.severity``."""

    severity: str
    export_for: tuple[str, ...] = Field(
        default=(), description="episode severities the export writes this code for"
    )


class ConditionCode(CodeEntry):
    """A term of the conditions vocabulary, with the status the code implies (if any)."""

    condition: str
    status: str | None = None


class PregnancyCode(CodeEntry):
    """A Condition code meaning the patient is pregnant (history ``patient.pregnant``)."""


class PatientStatusCode(CodeEntry):
    """A LOINC status observation (``answer`` none) or one of its answers."""

    status: Literal["pregnant", "breastfeeding"]
    answer: bool | None = Field(
        default=None, description="the status this answer gives; none for the observation code"
    )


class LabCode(CodeEntry):
    """A LOINC laboratory code: a screening lab (``lab``) or a drug's serum level."""

    lab: str | None = Field(default=None, description="lab id of knowledge/data/workup/labs.yaml")
    drug_level: str | None = Field(default=None, description="drug id whose serum level it is")


class AnswerCode(CodeEntry):
    """A LOINC answer code and the item score it stands for."""

    score: int
    answer_list: str | None = None


class ProcedureCode(CodeEntry):
    """A procedure code of a treatment course."""

    treatment: TreatmentType
    detail: str | None = Field(default=None, description="e.g. a psychotherapy modality")
    mg_per_session: float | None = Field(
        default=None, gt=0, description="esketamine: the dose assumed per session"
    )
    export: bool = Field(default=False, description="the code the export writes for the type")


class CodesKnowledge(Strict):
    """Everything under knowledge/data/codes/."""

    diagnoses: tuple[DiagnosisCode, ...]
    severities: tuple[SeverityCode, ...]
    conditions: tuple[ConditionCode, ...]
    pregnancy: tuple[PregnancyCode, ...]
    patient_status: tuple[PatientStatusCode, ...]
    labs: tuple[LabCode, ...]
    answers: tuple[AnswerCode, ...]
    procedures: tuple[ProcedureCode, ...]

    def tables(self) -> dict[str, tuple[CodeEntry, ...]]:
        return {name: getattr(self, name) for name in TABLES}

    def entries(self) -> Iterable[tuple[str, CodeEntry]]:
        for name, table in self.tables().items():
            for entry in table:
                yield name, entry


def _read(path: Path, problems: list[Problem]) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        problems.append(Problem("", "yaml_invalid", f"cannot read: {exc}", str(path)))
        return None


_DIAGNOSES = frozenset(d.value for d in Diagnosis)
_SEVERITIES = frozenset(s.value for s in Severity)


def _entry_defects(table: str, e: CodeEntry, ctx: _Context) -> list[tuple[str, str]]:
    """(field, message) of one entry."""
    out: list[tuple[str, str]] = []
    if e.verified and not (e.checked_against or "").strip():
        out.append(("checked_against", "verified: true needs checked_against (where it was read)"))
    if e.prefix and e.system != "icd10cm":
        out.append(("prefix", "only ICD-10-CM codes can be prefixes"))
    severities: tuple[str, ...] = ()
    match e:
        case DiagnosisCode():
            if e.excluded == (e.diagnosis is not None):
                out.append(("diagnosis", "give a diagnosis, or excluded: true (not both)"))
            if e.diagnosis is not None and e.diagnosis not in _DIAGNOSES:
                out.append(("diagnosis", f"unknown diagnosis {e.diagnosis!r}"))
            severities = (*((e.severity,) if e.severity else ()), *e.export_for)
        case SeverityCode():
            severities = (e.severity, *e.export_for)
        case ConditionCode():
            out += _condition_defects(e, ctx)
        case LabCode():
            if (e.lab is None) == (e.drug_level is None):
                out.append(("lab", "give lab or drug_level (one of them)"))
            if e.lab is not None and ctx.labs is not None and e.lab not in ctx.labs:
                out.append(("lab", f"unknown lab {e.lab!r}"))
            if e.drug_level is not None and ctx.drugs is not None and e.drug_level not in ctx.drugs:
                out.append(("drug_level", f"unknown drug {e.drug_level!r}"))
    out += [("severity", f"unknown severity {s!r}") for s in severities if s not in _SEVERITIES]
    return [(f"{table}[{e.id}].{f}", msg) for f, msg in out]


def _condition_defects(e: ConditionCode, ctx: _Context) -> list[tuple[str, str]]:
    if ctx.conditions is None:
        return []
    statuses = ctx.conditions.get(e.condition)
    if statuses is None:
        return [("condition", f"unknown condition term {e.condition!r}")]
    if e.status is not None and e.status not in statuses:
        return [("status", f"{e.condition} has no status {e.status!r}")]
    return []


class _Context:
    """What the entries are checked against (None: that part failed to load, not checked)."""

    def __init__(
        self,
        conditions: Mapping[str, Iterable[str]] | None,
        labs: Set[str] | None,
        drugs: Set[str] | None,
    ) -> None:
        self.conditions = (
            None if conditions is None else {k: tuple(v) for k, v in conditions.items()}
        )
        self.labs = labs
        self.drugs = drugs


def codes_defects(
    kb: CodesKnowledge,
    conditions: Mapping[str, Iterable[str]] | None = None,
    labs: Set[str] | None = None,
    drugs: Set[str] | None = None,
) -> list[tuple[str, str]]:
    """(loc, message) of every defect: per entry, duplicates, a missing status observation or
    answer, more than one export code per treatment."""
    ctx = _Context(conditions, labs, drugs)
    out: list[tuple[str, str]] = []
    seen: dict[tuple[str, str], str] = {}
    for table, e in kb.entries():
        out += _entry_defects(table, e, ctx)
        where = f"{table}[{e.id}]"
        first = seen.setdefault((e.system, e.key), where)
        if first != where:
            out.append((where, f"duplicate code: {e.system} {e.code} is also {first}"))
    have = {(s.status, s.answer) for s in kb.patient_status}
    needed = [("pregnant", None), ("pregnant", True), ("pregnant", False)]
    needed += [("breastfeeding", None), ("breastfeeding", True)]
    out += [
        (
            "patient_status",
            f"the export needs the {status} "
            + ("observation code" if answer is None else f"answer {answer}".lower()),
        )
        for status, answer in needed
        if (status, answer) not in have
    ]
    exported: dict[str, str] = {}
    for p in kb.procedures:
        if p.export and exported.setdefault(p.treatment, p.code) != p.code:
            out.append(
                (
                    f"procedures[{p.id}].export",
                    f"{p.treatment} already exports {exported[p.treatment]}",
                )
            )
    return out


def load_codes(
    root: Path,
    problems: list[Problem],
    conditions: Mapping[str, Iterable[str]] | None = None,
    labs: Set[str] | None = None,
    drugs: Set[str] | None = None,
) -> CodesKnowledge | None:
    """Read and validate knowledge/data/codes/ (root is knowledge/data); ``conditions`` maps each
    condition term to its statuses, ``labs`` and ``drugs`` are the known ids."""
    folder = root / "codes"
    data: dict[str, Any] = {}
    file_of: dict[str, Path] = {}
    for path in sorted(folder.glob("*.yaml")):
        raw = _read(path, problems)
        if not isinstance(raw, dict):
            problems.append(Problem("", "knowledge_invalid", "expected a mapping", str(path)))
            continue
        for table, rows in raw.items():
            if table in data:
                problems.append(
                    Problem(
                        str(table),
                        "duplicate_key",
                        f"table also in {file_of[table].name}",
                        str(path),
                    )
                )
            data[table] = rows
            file_of[table] = path
    try:
        kb = CodesKnowledge.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            table = str(err["loc"][0]) if err["loc"] else ""
            where = file_of.get(table, folder)
            problems.append(Problem(loc, "knowledge_invalid", err["msg"], str(where)))
        return None
    bad = codes_defects(kb, conditions, labs, drugs)
    for loc, msg in bad:
        table = loc.split("[", 1)[0]
        problems.append(Problem(loc, "knowledge_invalid", msg, str(file_of.get(table, folder))))
    return None if bad else kb
