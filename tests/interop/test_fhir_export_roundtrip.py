"""Round trip: importing an exported Bundle gives back the very history (and identity).

The import side is ``trdnav.interop.fhir.import_.import_fhir(data, kb, today)``; until that
module exists these tests are skipped (``pytest.importorskip``), and they run as soon as it does.
The Bundle goes through JSON text first, as it would over the wire. ``assessed_on`` is the one
field not compared: an import is a live record, assessed as of the day it is read, so the import
leaves it empty (the export carries it as the assessment Observations' ``effectiveDateTime``).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from trdnav.core.assessment import assess
from trdnav.core.history import History
from trdnav.demo import generated_data
from trdnav.history_files import load_history, parse_history
from trdnav.identity import Identifier, PatientIdentity
from trdnav.interop.fhir.export import export_fhir
from trdnav.knowledge.load import Knowledge

from .test_fhir_export import EVERY_FIELD

import_ = pytest.importorskip("trdnav.interop.fhir.import_")

TODAY = date(2024, 6, 1)
EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.yaml"))


def same(history: History) -> dict[str, Any]:
    """The history as compared: everything but ``assessed_on``."""
    return history.model_copy(update={"assessed_on": None}).model_dump()


def round_trip(history: History, kb: Knowledge, identity: PatientIdentity | None = None) -> Any:
    bundle = export_fhir(history, assess(history, kb, today=TODAY), kb, identity)
    wire = json.loads(json.dumps(bundle))
    return import_.import_fhir(wire, kb, TODAY)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_import_of_the_export_gives_back_every_example(path: Path, kb: Knowledge) -> None:
    history = load_history(path, kb, TODAY)
    result = round_trip(history, kb)
    assert same(result.history) == same(history)


def test_import_of_the_export_gives_back_every_generated_demo_patient(kb: Knowledge) -> None:
    for data in generated_data(TODAY):
        history = parse_history(data, kb, TODAY)
        result = round_trip(history, kb)
        assert same(result.history) == same(history), history.patient.id


def test_every_field_of_the_history_format_comes_back(kb: Knowledge) -> None:
    history = parse_history(EVERY_FIELD, kb, TODAY)
    result = round_trip(history, kb)
    assert same(result.history) == same(history)
    # what is not patient data is reported, not dropped silently
    not_mapped = {n.resource.split("/")[0] for n in result.report.not_mapped}
    assert {"CarePlan", "Device", "Provenance"} <= not_mapped


def test_the_identity_comes_back_too(kb: Knowledge) -> None:
    history = load_history(EXAMPLES[9], kb, TODAY)
    identity = PatientIdentity(
        given=("Ada", "Maria"),
        family="Lovelace",
        birth_date=history.patient.birth_date,
        mrn="MRN-0042",
        identifiers=(Identifier(system="urn:oid:2.16.840.1.113883.4.1", value="123-45-6789"),),
    )
    result = round_trip(history, kb, identity)
    assert same(result.history) == same(history)
    assert result.identity.family == "Lovelace"
    assert result.identity.given == ("Ada", "Maria")
    assert result.identity.mrn == "MRN-0042"
    assert "123-45-6789" in {i.value for i in result.identity.identifiers}


def test_a_second_import_of_the_same_export_changes_nothing(kb: Knowledge) -> None:
    history = load_history(EXAMPLES[9], kb, TODAY)
    first = round_trip(history, kb)
    second = round_trip(first.history, kb)
    assert second.history == first.history
