"""FHIR import: bad input gets a clear error (exit 2) or a clearly reduced result, never a
traceback."""

from __future__ import annotations

import copy
import json
import random
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from trdnav.cli import app
from trdnav.errors import InputError
from trdnav.interop.fhir.bundle import MAX_BYTES, decode_fhir
from trdnav.interop.fhir.import_ import import_fhir
from trdnav.knowledge.load import Knowledge

from .fixtures import fhir_bundles as fb

TODAY = date(2024, 6, 1)
S = "Patient/p"


def bundle(*resources: dict[str, Any], kind: str = "collection") -> dict[str, Any]:
    pt = fb.patient("p", "MRN-9", "Test", ["Pat"], "1980-01-01", "female")
    dx = fb.condition("dx", S, fb.ICD10CM, "F33.1", "MDD recurrent moderate", "2023-01-01")
    return {
        "resourceType": "Bundle",
        "type": kind,
        "entry": [{"resource": r} for r in (pt, dx, *resources)],
    }


def problems_of(exc: pytest.ExceptionInfo[InputError]) -> dict[str, str]:
    return {p.code: p.message for p in exc.value.problems}


def run(*args: str) -> Any:
    return CliRunner().invoke(app, ["fhir", "import", *args])


def test_malformed_json_is_an_error_with_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{"resourceType": "Bundle",\n  "type": "collection",\n  "entry": [}\n')
    result = run(str(path))
    assert result.exit_code == 2
    assert "malformed JSON at line 3" in result.output
    assert "Traceback" not in result.output


def test_a_broken_ndjson_line_is_named(kb: Knowledge) -> None:
    text = '{"resourceType": "Patient", "id": "p"}\n{"resourceType": "Condition",\n'
    with pytest.raises(InputError) as exc:
        decode_fhir(text)
    assert "malformed NDJSON at line 2" in problems_of(exc)["json_invalid"]


@pytest.mark.parametrize(
    ("field", "entry"),
    [
        ("fullUrl", {"fullUrl": [None]}),
        ("request.method", {"request": {"method": ["PUT"], "url": "Patient/p"}}),
    ],
)
def test_an_entry_field_that_is_not_a_string_is_named(
    kb: Knowledge, field: str, entry: dict[str, Any]
) -> None:
    """Found by the fuzzer: a fullUrl of [None] crashed the import (unhashable type: 'list')."""
    data = bundle(kind="transaction")
    data["entry"][0].update(entry)
    with pytest.raises(InputError) as exc:
        import_fhir(data, kb, TODAY)
    (problem,) = exc.value.problems
    assert problem.loc == f"entry[0].{field}" and problem.code == "not_a_string"
    assert "must be a string, not list" in problem.message


def test_a_resource_that_fails_validation_is_left_out_and_named_with_its_field(
    kb: Knowledge,
) -> None:
    bad = fb.med_request("rx-bad", S, "2023-13-45", "36437", "sertraline", mg=50)
    worse = {
        "resourceType": "Observation",
        "id": "o-bad",
        "status": "final",
        "code": {"text": "PHQ-9"},
        "valueInteger": "many",
        "colour": "blue",
    }
    good = fb.med_request("rx-ok", S, "2023-02-01", "36437", "sertraline", mg=50)
    r = import_fhir(bundle(bad, worse, good), kb, TODAY)
    reasons = {n.resource: (n.code, n.reason) for n in r.report.not_mapped}
    assert reasons["MedicationRequest/rx-bad"][0] == "invalid_resource"
    assert "authoredOn" in reasons["MedicationRequest/rx-bad"][1]
    assert reasons["Observation/o-bad"][0] == "invalid_resource"
    assert "colour" in reasons["Observation/o-bad"][1]
    assert [t.start.isoformat() for t in r.history.treatments] == ["2023-02-01"]


def test_an_unknown_rxnorm_code_is_reported_and_a_named_one_is_read_from_its_words(
    kb: Knowledge,
) -> None:
    nameless = fb.med_request("rx-1", S, "2023-02-01", "1234567", "", mg=50)
    nameless["medicationCodeableConcept"] = {"coding": [{"system": fb.RXNORM, "code": "1234567"}]}
    named = fb.med_request("rx-2", S, "2023-02-01", "7654321", "Lexapro 10 MG Oral Tablet", mg=10)
    r = import_fhir(bundle(nameless, named), kb, TODAY)
    unknown = next(n for n in r.report.not_mapped if n.resource == "MedicationRequest/rx-1")
    assert unknown.code == "unknown_drug"
    assert "RxNorm 1234567" in unknown.reason
    assert [t.drug for t in r.history.treatments] == ["escitalopram"]  # type: ignore[union-attr]


def test_a_medication_request_with_no_dosage_is_a_trial_of_unknown_dose(kb: Knowledge) -> None:
    request = fb.med_request("rx-1", S, "2023-02-01", "36437", "sertraline", status="active")
    r = import_fhir(bundle(request), kb, TODAY)
    (trial,) = r.history.treatments
    assert trial.doses == ()  # type: ignore[union-attr]
    assert trial.stop is None
    said = [a.assumption for a in r.report.assumptions]
    assert any(s.startswith("no dosage") for s in said)


def test_a_dose_the_history_refuses_drops_that_trial_only_with_the_history_message(
    kb: Knowledge,
) -> None:
    lab = fb.observation(
        "tsh", S, "3016-3", "TSH", "2023-02-01", {"valueQuantity": {"value": 5000, "unit": "mIU/L"}}
    )
    good = fb.med_request("rx-ok", S, "2023-02-01", "36437", "sertraline", mg=50)
    r = import_fhir(bundle(lab, good), kb, TODAY)
    assert r.history.labs == ()
    refused = next(n for n in r.report.not_mapped if n.resource == "Observation/tsh")
    assert refused.code == "refused_by_checks"
    assert len(r.history.treatments) == 1


def test_a_bundle_above_the_size_limit_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    with path.open("wb") as f:  # a 50 MB file (sparse: nothing is written, nothing read)
        f.truncate(50 * 1024 * 1024)
    result = run(str(path))
    assert result.exit_code == 2
    assert "50.0 MiB" in result.output
    assert f"at most {MAX_BYTES // 1_048_576} MiB" in result.output


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({"resourceType": "Bundle", "type": "document", "entry": []}, "bundle_type"),
        ({"hello": "world"}, "not_fhir"),
        (
            [
                fb.condition("c", "Patient/a", fb.ICD10CM, "F33.1", "x", "2023-01-01"),
                fb.condition("d", "Patient/b", fb.ICD10CM, "F33.1", "x", "2023-01-01"),
            ],
            "no_patient",
        ),
    ],
)
def test_input_that_is_no_patients_record_is_an_error(data: Any, code: str, kb: Knowledge) -> None:
    with pytest.raises(InputError) as exc:
        import_fhir(data, kb, TODAY)
    assert code in problems_of(exc)


def test_two_patients_in_one_bundle_are_refused_and_another_patients_resource_left_out(
    tmp_path: Path, kb: Knowledge
) -> None:
    other = fb.patient("q", "MRN-8", "Other", ["Olga"], "1970-01-01", "female")
    data = bundle(other)
    path = tmp_path / "two.json"
    path.write_text(json.dumps(data))
    result = run(str(path))
    assert result.exit_code == 2
    assert "import one patient at a time" in result.output
    foreign = fb.med_request("rx-q", "Patient/q", "2023-02-01", "36437", "sertraline", mg=50)
    r = import_fhir(bundle(foreign), kb, TODAY)
    assert {n.resource: n.code for n in r.report.not_mapped} == {
        "MedicationRequest/rx-q": "other_patient"
    }


def test_entered_in_error_and_unsupported_resources_are_reported_not_dropped(
    kb: Knowledge,
) -> None:
    wrong = fb.med_request(
        "rx-e", S, "2023-02-01", "36437", "sertraline", mg=50, status="entered-in-error"
    )
    allergy = {"resourceType": "AllergyIntolerance", "id": "al-1", "patient": {"reference": S}}
    gone = fb.condition(
        "dx-x", S, fb.ICD10CM, "I10", "Hypertension", "2020-01-01", verification="entered-in-error"
    )
    r = import_fhir(bundle(wrong, allergy, gone), kb, TODAY)
    assert {n.resource: n.code for n in r.report.not_mapped} == {
        "MedicationRequest/rx-e": "entered_in_error",
        "AllergyIntolerance/al-1": "unsupported_type",
        "Condition/dx-x": "entered_in_error",
    }


def test_the_cli_writes_the_history_and_prints_the_report_as_json(tmp_path: Path) -> None:
    source = Path(__file__).parent / "fixtures" / "ehr_requests.json"
    out = tmp_path / "h.yaml"
    result = run(str(source), "--out", str(out), "--json", "--today", "2024-06-01")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["patient_id"] == "MRN-1001"
    assert payload["identity"]["family"] == "Rivera"
    assert {n["code"] for n in payload["report"]["not_mapped"]} >= {"unknown_drug", "refuted"}
    assessed = CliRunner().invoke(app, ["assess", str(out), "--today", "2024-06-01"])
    assert assessed.exit_code == 0, assessed.output
    text = run(str(source), "--today", "2024-06-01")
    assert text.exit_code == 0
    assert "Not mapped" in text.output and "nothing written" in text.output


def _paths(o: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out: list[tuple[Any, ...]] = []
    if isinstance(o, dict):
        for k, v in o.items():
            out.append((*prefix, k))
            out += _paths(v, (*prefix, k))
    elif isinstance(o, list):
        for i, v in enumerate(o):
            out += _paths(v, (*prefix, i))
    return out


def test_damaged_records_give_a_reduced_result_or_an_input_error_never_a_crash(
    kb: Knowledge,
) -> None:
    """Elements deleted or replaced at random (a fixed seed) in an EHR export and in our own."""
    from trdnav.core.assessment import assess
    from trdnav.history_files import load_history
    from trdnav.interop.fhir.bundle import read_fhir_file

    examples = Path(__file__).parents[2] / "examples"
    history = load_history(examples / "10-measured-course.yaml", kb, TODAY)
    export = pytest.importorskip("trdnav.interop.fhir.export")
    sources = [
        read_fhir_file(Path(__file__).parent / "fixtures" / "ehr_requests.json"),
        export.export_fhir(history, assess(history, kb), kb),
    ]
    rng = random.Random(14)  # noqa: S311 (a fixed sequence of damage, not a secret)
    for _ in range(40):
        data = copy.deepcopy(rng.choice(sources))
        paths = [p for p in _paths(data) if isinstance(p[-1], str) and p[-1] != "resourceType"]
        for p in rng.sample(paths, k=rng.randint(1, 6)):
            node: Any = data
            try:
                for k in p[:-1]:
                    node = node[k]
                if rng.random() < 0.7:
                    del node[p[-1]]
                else:
                    node[p[-1]] = rng.choice([None, "", 0, "x", [], {}, "2023-13-01", -5])
            except (KeyError, IndexError, TypeError):
                continue  # an ancestor was deleted already
        try:
            result = import_fhir(data, kb, TODAY)
        except InputError as exc:
            assert exc.problems
        else:
            assert result.report.resources > 0
