"""Load and validate the knowledge base once.

``load_knowledge()`` reads every YAML file under ``knowledge/data``, validates it with the models in
:mod:`trdnav.knowledge.schema`, checks that every citation key resolves in the bibliography, and
returns a frozen :class:`Knowledge`. A defect raises :class:`~trdnav.errors.KnowledgeError` naming
the file and the field.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from trdnav.core.history import Diagnosis
from trdnav.errors import KnowledgeError, Problem
from trdnav.knowledge.codes import CodesKnowledge, load_codes
from trdnav.knowledge.options import OptionsKnowledge, load_options
from trdnav.knowledge.payers import PayerPolicy, load_payers
from trdnav.knowledge.plan import PlanKnowledge, load_plan, plan_defects
from trdnav.knowledge.population import PopulationKnowledge, load_population
from trdnav.knowledge.protocols import Protocol, load_protocols
from trdnav.knowledge.safety import SafetyKnowledge, load_safety
from trdnav.knowledge.schema import (
    AdequacyDefaults,
    BibEntry,
    ConditionTerm,
    ConditionVocabulary,
    Drug,
    DrugClass,
    Instrument,
    Manifest,
    MeasurementDefaults,
    Role,
    StagingMethod,
)
from trdnav.knowledge.workup import WorkupKnowledge, load_workup

M = TypeVar("M", bound=BaseModel)

_FORM_SUFFIXES = frozenset(
    {"xl", "sr", "xr", "cr", "er", "ir", "la", "odt", "hcl", "hydrochloride"}
)


@lru_cache(maxsize=8192)
def normalize_drug_name(name: str) -> str:
    """Fold case, punctuation and release-form suffixes: ``"Wellbutrin XL"`` -> ``"wellbutrin"``."""
    tokens = [t for t in re.split(r"[^a-z0-9]+", name.lower()) if t]
    while len(tokens) > 1 and tokens[-1] in _FORM_SUFFIXES:
        tokens.pop()
    return "".join(tokens)


@cache
def normalize_instrument_name(name: str) -> str:
    """Fold case and punctuation: ``"QIDS-SR 16"`` -> ``"qidssr16"``."""
    return re.sub(r"[^a-z0-9]+", "", name.lower())


def instrument_defects(inst: Instrument) -> list[tuple[str, str]]:
    """Internal consistency of one instrument: item numbers, domains, bands, rule parameters."""
    out: list[tuple[str, str]] = []
    numbers = [i.n for i in inst.items]
    if numbers != list(range(1, len(numbers) + 1)):
        out.append(("items", "items must be numbered 1..n in order"))
    for i in inst.items:
        if i.max < i.min:
            out.append((f"items[{i.n - 1}]", "max is below min"))
    for d in inst.domains:
        if not set(d.items) <= set(numbers):
            out.append((f"domains.{d.name}", "names an item that does not exist"))
    if inst.domains:
        covered = sorted(n for d in inst.domains for n in d.items)
        if inst.scored and covered != numbers:
            out.append(("domains", "a scored instrument's domains must cover every item once"))
    if inst.scored and inst.total_max is None:
        out.append(("total_max", "required for a scored instrument"))
    for k, (a, b) in enumerate(zip(inst.bands, inst.bands[1:], strict=False)):
        if a.max is None or a.max >= b.min:
            out.append((f"bands[{k}]", "bands must ascend without overlap"))
    if inst.suicide_item is not None and inst.suicide_item not in numbers:
        out.append(("suicide_item", "names an item that does not exist"))
    for n in inst.missing.never_missing:
        if n not in numbers:
            out.append(("missing.never_missing", f"item {n} does not exist"))
    return out


@dataclass(frozen=True, eq=False)  # identity: hashable for memoised pure functions
class Knowledge:
    manifest: Manifest
    bibliography: Mapping[str, BibEntry]
    classes: Mapping[str, DrugClass]
    drugs: Mapping[str, Drug]
    adequacy: AdequacyDefaults
    conditions: Mapping[str, ConditionTerm]
    conditions_source: ConditionVocabulary
    staging: Mapping[str, StagingMethod]
    instruments: Mapping[str, Instrument]
    measurement: MeasurementDefaults
    options: OptionsKnowledge
    safety: SafetyKnowledge
    workup: WorkupKnowledge
    population: PopulationKnowledge
    plan: PlanKnowledge
    codes: CodesKnowledge
    _names: Mapping[str, str] = field(repr=False)
    _instrument_names: Mapping[str, str] = field(repr=False)
    protocols: Mapping[str, Protocol] = field(default_factory=lambda: MappingProxyType({}))
    payers: Mapping[str, PayerPolicy] = field(default_factory=lambda: MappingProxyType({}))

    def resolve_instrument(self, name: str) -> Instrument | None:
        """``"phq9"``, ``"PHQ 9"`` or ``"QIDS-SR"`` -> the instrument, or None."""
        inst_id = self._instrument_names.get(normalize_instrument_name(name))
        return None if inst_id is None else self.instruments[inst_id]

    def closest_instrument_names(self, name: str, n: int = 3) -> list[str]:
        key = normalize_instrument_name(name)
        hits = difflib.get_close_matches(key, list(self._instrument_names), n=n * 3, cutoff=0.5)
        out: list[str] = []
        for hit in hits:
            canonical = self.instruments[self._instrument_names[hit]].name
            if canonical not in out:
                out.append(canonical)
        return out[:n]

    @property
    def kb_version(self) -> str:
        return self.manifest.kb_version

    def resolve_drug(self, name: str) -> Drug | None:
        drug_id = self._names.get(normalize_drug_name(name))
        return None if drug_id is None else self.drugs[drug_id]

    def closest_drug_names(self, name: str, n: int = 3) -> list[str]:
        key = normalize_drug_name(name)
        hits = difflib.get_close_matches(key, list(self._names), n=n * 3, cutoff=0.6)
        out: list[str] = []
        for hit in hits:
            drug_name = self.drugs[self._names[hit]].name
            if drug_name not in out:
                out.append(drug_name)
        return out[:n]

    def closest_conditions(self, name: str, n: int = 3) -> list[str]:
        return difflib.get_close_matches(name.lower(), list(self.conditions), n=n, cutoff=0.5)

    def is_antidepressant(self, drug: Drug) -> bool:
        return Role.ANTIDEPRESSANT in drug.roles and self.classes[drug.drug_class].antidepressant

    def citation(self, key: str) -> str:
        return self.bibliography[key].citation

    def citations(self, keys: Iterable[str]) -> dict[str, str]:
        return {k: self.bibliography[k].citation for k in sorted(set(keys))}


def _data_dir() -> Path:
    return Path(str(resources.files("trdnav.knowledge") / "data"))


def _read_yaml(path: Path, problems: list[Problem]) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        problems.append(Problem("", "yaml_invalid", f"not valid YAML: {exc}", str(path)))
        return None


def _validate(model: type[M], data: Any, path: Path, problems: list[Problem]) -> M | None:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            problems.append(Problem(loc, "knowledge_invalid", err["msg"], str(path)))
        return None


def _sourced_items(obj: Any) -> Iterable[BaseModel]:
    """Every model with a ``source`` field inside a validated model, depth first."""
    if isinstance(obj, BaseModel) and "source" in type(obj).model_fields:
        yield obj
    if isinstance(obj, BaseModel):
        for name in type(obj).model_fields:
            yield from _sourced_items(getattr(obj, name))
    elif isinstance(obj, tuple | list):
        for item in obj:
            yield from _sourced_items(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _sourced_items(item)


def load_knowledge(
    data_dir: Path | None = None,
    protocols_dir: Path | None = None,
    payers_dir: Path | None = None,
) -> Knowledge:
    """Read, validate and cross-check the knowledge base under ``data_dir``; clinic protocol
    templates from ``protocols_dir`` (default: the folder named by ``TRDNAV_PROTOCOLS_DIR``) and
    the clinic's payer policies from ``payers_dir`` (default: ``TRDNAV_PAYERS_DIR``)."""
    root = data_dir or _data_dir()
    if protocols_dir is None and os.environ.get("TRDNAV_PROTOCOLS_DIR"):
        protocols_dir = Path(os.environ["TRDNAV_PROTOCOLS_DIR"])
    if payers_dir is None and os.environ.get("TRDNAV_PAYERS_DIR"):
        payers_dir = Path(os.environ["TRDNAV_PAYERS_DIR"])
    problems: list[Problem] = []

    manifest = _validate(
        Manifest, _read_yaml(root / "MANIFEST.yaml", problems), root / "MANIFEST.yaml", problems
    )

    bibliography: dict[str, BibEntry] = {}
    for path in sorted((root / "bibliography").glob("*.yaml")):
        raw = _read_yaml(path, problems) or {}
        for key, value in raw.items():
            entry = _validate(BibEntry, value, path, problems)
            if key in bibliography:
                problems.append(
                    Problem(key, "duplicate_key", "citation key defined twice", str(path))
                )
            if entry is not None:
                bibliography[key] = entry

    classes: dict[str, DrugClass] = {}
    for raw in _read_yaml(root / "classes.yaml", problems) or []:
        cls = _validate(DrugClass, raw, root / "classes.yaml", problems)
        if cls is not None:
            classes[cls.id] = cls

    drugs: dict[str, Drug] = {}
    names: dict[str, str] = {}
    for path in sorted((root / "drugs").glob("*.yaml")):
        drug = _validate(Drug, _read_yaml(path, problems), path, problems)
        if drug is None:
            continue
        if drug.id != path.stem:
            problems.append(
                Problem("id", "id_mismatch", f"id {drug.id!r} differs from file name", str(path))
            )
        if drug.drug_class not in classes:
            problems.append(
                Problem(
                    "drug_class", "unknown_class", f"unknown class {drug.drug_class!r}", str(path)
                )
            )
        drugs[drug.id] = drug
        for alias in (drug.id, drug.name, *drug.brands, *drug.misspellings):
            key = normalize_drug_name(alias)
            if names.get(key, drug.id) != drug.id:
                problems.append(
                    Problem(
                        "brands",
                        "ambiguous_name",
                        f"{alias!r} also names {names[key]!r}",
                        str(path),
                    )
                )
            names[key] = drug.id

    adequacy = _validate(
        AdequacyDefaults,
        _read_yaml(root / "adequacy.yaml", problems),
        root / "adequacy.yaml",
        problems,
    )
    vocabulary = _validate(
        ConditionVocabulary,
        _read_yaml(root / "conditions.yaml", problems),
        root / "conditions.yaml",
        problems,
    )
    measurement = _validate(
        MeasurementDefaults,
        _read_yaml(root / "measurement.yaml", problems),
        root / "measurement.yaml",
        problems,
    )
    staging: dict[str, StagingMethod] = {}
    for path in sorted((root / "staging").glob("*.yaml")):
        method = _validate(StagingMethod, _read_yaml(path, problems), path, problems)
        if method is not None:
            staging[method.id] = method

    instruments: dict[str, Instrument] = {}
    instrument_names: dict[str, str] = {}
    for path in sorted((root / "instruments").glob("*.yaml")):
        inst = _validate(Instrument, _read_yaml(path, problems), path, problems)
        if inst is None:
            continue
        problems.extend(
            Problem(loc, "instrument_invalid", msg, str(path))
            for loc, msg in instrument_defects(inst)
        )
        instruments[inst.id] = inst
        for alias in (inst.id, inst.name, *inst.aliases):
            key = normalize_instrument_name(alias)
            if instrument_names.get(key, inst.id) != inst.id:
                problems.append(
                    Problem(
                        "aliases",
                        "ambiguous_name",
                        f"{alias!r} also names {instrument_names[key]!r}",
                        str(path),
                    )
                )
            instrument_names[key] = inst.id

    options = load_options(root, problems)
    safety = load_safety(root, problems)
    workup = load_workup(root, problems)
    population = load_population(root / "population", problems)
    plan = load_plan(root, problems)
    codes = load_codes(
        root,
        problems,
        conditions=None
        if vocabulary is None
        else {c.id: c.statuses for c in vocabulary.conditions},
        labs=None if workup is None else set(workup.labs),
        drugs=set(drugs),
    )
    if plan is not None and options is not None:
        problems.extend(
            Problem(loc, code, f"unknown option {msg}", str(root / "plan"))
            for loc, code, msg in plan_defects(plan, set(options.options))
        )
    protocols = load_protocols(root / "protocols", problems, instrument_ids=instruments)
    if protocols_dir is not None:
        for pid, protocol in load_protocols(
            protocols_dir, problems, instrument_ids=instruments, clinic=True
        ).items():
            if pid in protocols:
                problems.append(
                    Problem(
                        "id",
                        "protocol_id_taken",
                        f"{pid!r} is a packaged protocol: give the clinic template its own id",
                        str(protocols_dir / f"{pid}.yaml"),
                    )
                )
            else:
                protocols[pid] = protocol
    for pid, protocol in protocols.items():
        folder = protocols_dir if protocol.clinic and protocols_dir else root / "protocols"
        where = str(folder / f"{pid}.yaml")
        if options is not None and protocol.option_id not in options.options:
            problems.append(
                Problem(
                    "option_id", "unknown_option", f"unknown option {protocol.option_id!r}", where
                )
            )
        for item in _sourced_items(protocol):
            for key in getattr(item, "source", ()):
                if key not in bibliography:
                    label = getattr(item, "id", type(item).__name__)
                    problems.append(
                        Problem(
                            f"{label}.source",
                            "unknown_citation",
                            f"citation key {key!r} is not in the bibliography",
                            where,
                        )
                    )
    payers = _load_all_payers(
        root / "payers", payers_dir, problems, bibliography, instruments, vocabulary, drugs, classes
    )
    everything: list[Any] = [
        options,
        safety,
        workup,
        *instruments.values(),
        measurement,
        *classes.values(),
        *drugs.values(),
        adequacy,
        vocabulary,
        *staging.values(),
        population,
        plan,
        codes,
    ]
    for item in _sourced_items(everything):
        for key in getattr(item, "source", ()):
            if key not in bibliography:
                label = getattr(item, "id", type(item).__name__)
                problems.append(
                    Problem(
                        str(label),
                        "unknown_citation",
                        f"citation key {key!r} is not in the bibliography",
                    )
                )

    if measurement is not None:
        for rule in measurement.schedule:
            if rule.instrument not in instruments:
                problems.append(
                    Problem(
                        f"schedule.{rule.id}.instrument",
                        "unknown_instrument",
                        f"unknown instrument {rule.instrument!r}",
                        str(root / "measurement.yaml"),
                    )
                )
        if measurement.default_locale not in measurement.crisis_resources:
            problems.append(
                Problem(
                    "default_locale",
                    "unknown_locale",
                    "default locale has no crisis resources",
                    str(root / "measurement.yaml"),
                )
            )
    if (
        problems
        or manifest is None
        or adequacy is None
        or vocabulary is None
        or measurement is None
        or options is None
        or safety is None
        or workup is None
        or population is None
        or plan is None
        or codes is None
    ):
        raise KnowledgeError(problems or [Problem("", "knowledge_missing", "incomplete")])
    return Knowledge(
        manifest=manifest,
        bibliography=MappingProxyType(bibliography),
        classes=MappingProxyType(classes),
        drugs=MappingProxyType(drugs),
        adequacy=adequacy,
        conditions=MappingProxyType({c.id: c for c in vocabulary.conditions}),
        conditions_source=vocabulary,
        staging=MappingProxyType(staging),
        instruments=MappingProxyType(instruments),
        measurement=measurement,
        options=options,
        safety=safety,
        workup=workup,
        _names=MappingProxyType(names),
        _instrument_names=MappingProxyType(instrument_names),
        protocols=MappingProxyType(protocols),
        payers=MappingProxyType(payers),
        population=population,
        plan=plan,
        codes=codes,
    )


def _load_all_payers(
    packaged: Path,
    clinic_dir: Path | None,
    problems: list[Problem],
    bibliography: Mapping[str, BibEntry],
    instruments: Mapping[str, Instrument],
    vocabulary: ConditionVocabulary | None,
    drugs: Mapping[str, Drug],
    classes: Mapping[str, DrugClass],
) -> dict[str, PayerPolicy]:
    """The packaged payer policies and the clinic's (a clinic policy may not reuse an id)."""
    ids: dict[str, Any] = {
        "instruments": set(instruments),
        "conditions": set() if vocabulary is None else {c.id for c in vocabulary.conditions},
        "diagnoses": {d.value for d in Diagnosis},
        "agents": set(drugs) | set(classes),
        "bibliography": set(bibliography),
    }
    payers = load_payers(packaged, problems, **ids)
    if clinic_dir is not None:
        for pid, policy in load_payers(clinic_dir, problems, clinic=True, **ids).items():
            if pid in payers:
                problems.append(
                    Problem(
                        "id",
                        "payer_id_taken",
                        f"{pid!r} is a packaged policy: give the clinic's policy its own id",
                        str(clinic_dir / f"{pid}.yaml"),
                    )
                )
            else:
                payers[pid] = policy
    return payers


@cache
def default_knowledge() -> Knowledge:
    """The packaged knowledge base, loaded once per process."""
    return load_knowledge()
