"""Fuzzing FHIR import: ``decode_fhir`` then ``import_fhir`` (the upload, ``trdnav fhir import``).

Property: any Bundle or NDJSON, however mangled, gives a valid history with its report or an
:class:`InputError` whose every problem has a message — never another exception. Inputs start from
``tests/interop/fixtures/`` (four EHR styles) and TRD Navigator's own export of three examples
(the resources marked as written by TRD Navigator take another reading path), mutated at random
paths or cut and spliced as text. ``TRDNAV_FUZZ_EXAMPLES=4000`` runs a longer campaign.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz.mutations import as_json, mangled_text, mutated
from trdnav.core.assessment import assess
from trdnav.errors import InputError
from trdnav.history_files import load_history
from trdnav.interop.fhir.bundle import decode_fhir
from trdnav.interop.fhir.export import export_fhir
from trdnav.interop.fhir.import_ import import_fhir
from trdnav.interop.fhir.report import FhirImport
from trdnav.knowledge.load import default_knowledge

ROOT = Path(__file__).parents[2]
FIXTURES = ROOT / "tests" / "interop" / "fixtures"
TODAY = date(2024, 6, 1)
KB = default_knowledge()
_N = os.environ.get("TRDNAV_FUZZ_EXAMPLES")
fuzz_settings: Callable[[Any], Any] = (
    settings(max_examples=int(_N), deadline=None) if _N else settings()
)

# a failing example of a large document is printed in full: the warning about its size must
# not replace the failure it reports (filterwarnings = error)
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")


def _own_export(name: str) -> Any:
    history = load_history(ROOT / "examples" / name, KB, TODAY)
    stamp = datetime(2024, 6, 1, tzinfo=UTC)
    return export_fhir(history, assess(history, KB, today=TODAY), KB, timestamp=stamp)


TEXTS = [
    (FIXTURES / n).read_text(encoding="utf-8")
    for n in (
        "ehr_requests.json",
        "pharmacy_dispenses.ndjson",
        "statements_free_text.json",
        "example10_ehr.json",
    )
]
DOCS = [decode_fhir(t) for t in TEXTS] + [
    json.loads(json.dumps(_own_export(n)))
    for n in ("06-tachyphylaxis.yaml", "08-ect-history.yaml", "15-plan-psychotic-depression.yaml")
]


def decode_and_import(raw: str | bytes) -> FhirImport | InputError:
    try:
        return import_fhir(decode_fhir(raw), KB, TODAY)
    except InputError as exc:
        assert exc.problems, "an InputError names at least one problem"
        for p in exc.problems:
            assert p.message.strip() and p.code, p
        return exc


def test_every_fixture_imports():
    for doc in DOCS:
        result = decode_and_import(as_json(doc))
        assert isinstance(result, FhirImport), result
        assert result.report.resources > 0


@fuzz_settings
@given(doc=mutated(DOCS, max_mutations=4))
def test_a_mutated_bundle_imports_or_is_refused_with_a_clear_error(doc):
    result = decode_and_import(as_json(doc))
    if isinstance(result, FhirImport):  # every resource read is accounted for
        report = result.report
        assert len(report.mapped) + len(report.not_mapped) >= report.resources > 0


@fuzz_settings
@given(
    doc=mutated(
        [d for d in DOCS if isinstance(d, list)]
        + [d["entry"] for d in DOCS if isinstance(d, dict)],
        max_mutations=4,
    )
)
def test_mutated_ndjson_imports_or_is_refused_with_a_clear_error(doc):
    if isinstance(doc, list):
        decode_and_import("\n".join(json.dumps(r, default=str) for r in doc))
    else:
        decode_and_import(as_json(doc))


@fuzz_settings
@given(text=mangled_text(TEXTS))
def test_a_spliced_fhir_text_imports_or_is_refused_with_a_clear_error(text):
    decode_and_import(text)


@fuzz_settings
@given(raw=st.one_of(st.binary(max_size=200), st.text(max_size=200)))
def test_random_bytes_are_refused_with_a_clear_error(raw):
    assert isinstance(decode_and_import(raw), InputError)


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        ('{"resourceType": "Bundle", "entry": ' + "[" * 50_000 + "]" * 50_000 + "}", "nested"),
        ('{"resourceType": "Patient", "id": "p", "birthDate": "9999-12-31"}', ""),
        ('{"resourceType": "Patient", "id": "p", "id": "q"}', "given twice"),
        ('{"resourceType": "Patient", "id": ' + "9" * 5000 + "}", "digits"),
        (b"\xff\xfe{}", "UTF-8"),
    ],
)
def test_a_hostile_fhir_input_is_refused_with_a_named_reason(raw, words):
    result = decode_and_import(raw)
    assert isinstance(result, InputError), result
    assert words in str(result)


def _pharmacy_feed_with(**changes: Any) -> str:
    """pharmacy_dispenses.ndjson with its first MedicationDispense changed."""
    resources = [json.loads(line) for line in TEXTS[1].splitlines() if line.strip()]
    first = next(r for r in resources if r["resourceType"] == "MedicationDispense")
    first.update(changes)
    return "\n".join(json.dumps(r) for r in resources)


@pytest.mark.parametrize(
    "changes",
    [
        {"whenHandedOver": "9999-12-31"},
        {"daysSupply": {"value": 10**18, "unit": "day"}},
        {"whenHandedOver": "9999-12-31", "daysSupply": {"value": 1e300, "unit": "day"}},
    ],
)
def test_a_dispense_in_year_9999_or_of_endless_supply_is_not_an_overflow(changes):
    result = decode_and_import(_pharmacy_feed_with(**changes))
    assert isinstance(result, FhirImport | InputError)
    if isinstance(result, FhirImport):
        assert all(t.start.year < 9999 for t in result.history.treatments)


def test_a_patient_name_of_5000_characters_is_refused_naming_the_field():
    resources = [json.loads(line) for line in TEXTS[1].splitlines() if line.strip()]
    resources[0]["name"][0]["family"] = "x" * 5000
    result = decode_and_import("\n".join(json.dumps(r) for r in resources))
    assert isinstance(result, InputError)
    assert result.problems[0].loc == "Patient.name.family"
    assert "at most 200 characters" in result.problems[0].message


def test_a_medical_record_number_of_5000_characters_is_refused_naming_the_field():
    resources = [json.loads(line) for line in TEXTS[1].splitlines() if line.strip()]
    resources[0]["identifier"][0]["value"] = "9" * 5000
    result = decode_and_import("\n".join(json.dumps(r) for r in resources))
    assert isinstance(result, InputError)
    assert result.problems[0].loc == "Patient.identifier.value"
    assert "at most 200 characters" in result.problems[0].message
