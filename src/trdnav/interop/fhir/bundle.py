"""Reading FHIR input: a Bundle (collection, transaction, batch, searchset), a single resource or
NDJSON lines, each resource validated with the ``fhir.resources`` R4B model of its type.

A resource that fails validation, has an unsupported type, is deleted by a transaction entry or
repeats another's id is reported as not mapped; the others are returned in input order. Input
larger than :data:`MAX_BYTES` is refused before it is read whole.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from trdnav.bounded_decode import DecodeRefused, load_json
from trdnav.errors import InputError, Problem
from trdnav.interop.fhir.ledger import Ledger

MAX_BYTES = 25 * 1024 * 1024  # 25 MiB: ~15,000 resources of a typical EHR export
MAX_RESOURCES = 50_000
BUNDLE_TYPES = ("collection", "transaction", "batch", "searchset")
READ_TYPES = frozenset(
    {
        "Patient",
        "Condition",
        "MedicationRequest",
        "MedicationStatement",
        "MedicationDispense",
        "Medication",
        "Procedure",
        "Observation",
        "QuestionnaireResponse",
        "RiskAssessment",
    }
)
_DERIVED = {
    "CarePlan": "a plan: the plan is recomputed from the history, not imported",
    "Provenance": "provenance of another system's output: not patient data",
    "Device": "a device (e.g. the software that wrote an export): not patient data",
}


@dataclass(frozen=True)
class Entry:
    ref: str  # "Type/id"
    full_url: str | None
    resource: Any  # the validated fhir.resources model


def too_large(size: int, limit: int = MAX_BYTES) -> Problem:
    return Problem(
        "",
        "too_large",
        f"the input is {size / 1_048_576:.1f} MiB; the import reads at most "
        f"{limit / 1_048_576:.0f} MiB (split the export, e.g. one patient per file)",
    )


def decode_fhir(raw: str | bytes, file: str | None = None, limit: int = MAX_BYTES) -> Any:
    """JSON (a Bundle or one resource) or NDJSON (one resource per line) as Python data."""
    size = len(raw.encode("utf-8") if isinstance(raw, str) else raw)
    if size > limit:
        raise InputError([Problem(*_fields(too_large(size, limit)), file)])
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        raise InputError([Problem("", "not_utf8", "not UTF-8 text", file)]) from None
    if not text.strip():
        raise InputError([Problem("", "empty", "the input is empty", file)])
    try:
        return load_json(text)
    except DecodeRefused as exc:
        raise InputError([Problem("", "input_refused", str(exc), file)]) from None
    except json.JSONDecodeError as first:
        lines = [line for line in text.splitlines() if line.strip()]
        if len(lines) > 1 and _is_object(lines[0]):
            out = []
            for n, line in enumerate(lines, start=1):
                try:
                    out.append(load_json(line))
                except json.JSONDecodeError as exc:
                    message = f"malformed NDJSON at line {n}, column {exc.colno}: {exc.msg}"
                    raise InputError([Problem("", "json_invalid", message, file)]) from None
                except DecodeRefused as exc:
                    message = f"NDJSON line {n}: {exc}"
                    raise InputError([Problem("", "input_refused", message, file)]) from None
            return out
        message = f"malformed JSON at line {first.lineno}, column {first.colno}: {first.msg}"
        raise InputError([Problem("", "json_invalid", message, file)]) from None


def _is_object(line: str) -> bool:
    """The line alone is a JSON object: the text is NDJSON, not one pretty-printed document."""
    try:
        return isinstance(load_json(line), dict)
    except ValueError:  # JSONDecodeError or DecodeRefused
        return False


def _fields(p: Problem) -> tuple[str, str, str]:
    return p.loc, p.code, p.message


def read_fhir_file(path: Path, limit: int = MAX_BYTES) -> Any:
    """Decode a FHIR file, refusing one above ``limit`` bytes before reading it."""
    name = str(path)
    try:
        size = path.stat().st_size
        if size > limit:
            raise InputError([Problem(*_fields(too_large(size, limit)), name)])
        raw = path.read_bytes()
    except OSError as exc:
        message = f"cannot read file: {exc.strerror}"
        raise InputError([Problem("", "file_unreadable", message, name)]) from None
    return decode_fhir(raw, name, limit)


def _resources(data: Any) -> list[tuple[dict[str, Any], str | None, str | None]]:
    """(resource, fullUrl, transaction method) of every entry."""
    if isinstance(data, list):
        return [(r, None, None) for r in data]
    if not isinstance(data, dict) or "resourceType" not in data:
        raise InputError(
            [Problem("", "not_fhir", "expected a FHIR Bundle, a resource or NDJSON resources")]
        )
    if data["resourceType"] != "Bundle":
        return [(data, None, None)]
    kind = data.get("type")
    if kind not in BUNDLE_TYPES:
        raise InputError(
            [
                Problem(
                    "type",
                    "bundle_type",
                    f"Bundle type {kind!r} is not imported: expected one of "
                    + ", ".join(BUNDLE_TYPES),
                )
            ]
        )
    entries = data.get("entry") or []
    if not isinstance(entries, list):
        raise InputError([Problem("entry", "not_a_list", "Bundle.entry must be a list")])
    out: list[tuple[dict[str, Any], str | None, str | None]] = []
    for n, e in enumerate(entries):
        if not isinstance(e, dict):
            out.append(({}, None, None))
            continue
        request = e.get("request")
        method = request.get("method") if isinstance(request, dict) else None
        full_url = e.get("fullUrl")
        for field, value in (("fullUrl", full_url), ("request.method", method)):
            if value is not None and not isinstance(value, str):
                raise InputError(
                    [
                        Problem(
                            f"entry[{n}].{field}",
                            "not_a_string",
                            f"Bundle.entry[{n}].{field} must be a string, "
                            f"not {type(value).__name__}",
                        )
                    ]
                )
        out.append((e.get("resource") or {}, full_url, method))
    return out


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        loc = ".".join(str(x) for x in err["loc"])
        parts.append(f"{loc}: {err['msg']}" if loc else err["msg"])
    more = len(exc.errors()) - 3
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def _version_key(resource: dict[str, Any]) -> tuple[str, str]:
    meta = resource.get("meta")
    if not isinstance(meta, dict):
        meta = {}
    version = str(meta.get("versionId") or "")
    return (version.zfill(12) if version.isdigit() else version, str(meta.get("lastUpdated") or ""))


def read_entries(data: Any, ledger: Ledger) -> list[Entry]:
    """Validate every resource; the ones not imported go to the ledger with the reason."""
    raw = _resources(data)
    if len(raw) > MAX_RESOURCES:
        raise InputError(
            [
                Problem(
                    "entry",
                    "too_many_resources",
                    f"{len(raw)} resources; the import reads at most {MAX_RESOURCES}",
                )
            ]
        )
    chosen: dict[str, tuple[int, dict[str, Any], str | None]] = {}
    order: list[str] = []
    for n, (resource, full_url, method) in enumerate(raw):
        kind = resource.get("resourceType") if isinstance(resource, dict) else None
        rid = resource.get("id") if isinstance(resource, dict) else None
        ref = f"{kind}/{rid}" if kind and isinstance(rid, str) and rid else f"entry[{n}]"
        if kind and ref.startswith("entry["):
            ref = f"entry[{n}] ({kind} without id)"
        ledger.read(ref)
        if not isinstance(kind, str):
            ledger.skip(ref, "not_a_resource", "no resourceType: not a FHIR resource")
            continue
        if method == "DELETE":
            ledger.skip(ref, "deleted", "a DELETE entry of a transaction: nothing to import")
            continue
        if kind == "OperationOutcome":
            ledger.skip(ref, "operation_outcome", "a server message, not patient data")
            continue
        if kind in _DERIVED:
            ledger.skip(ref, "not_patient_data", _DERIVED[kind])
            continue
        if kind not in READ_TYPES:
            ledger.skip(ref, "unsupported_type", f"{kind} is not read by the import")
            continue
        if ref in chosen:
            _prev_n, prev, _ = chosen[ref]
            if _version_key(resource) >= _version_key(prev):
                chosen[ref] = (n, resource, full_url)
            ledger.assume(
                ref,
                "the id appears more than once in the input: the latest version "
                "(meta.versionId, then meta.lastUpdated, then the later entry) was read",
            )
            continue
        chosen[ref] = (n, resource, full_url)
        order.append(ref)
    out: list[Entry] = []
    for ref in order:
        _n, resource, full_url = chosen[ref]
        try:
            model = get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        except ValidationError as exc:
            ledger.skip(
                ref, "invalid_resource", "fails FHIR validation: " + _validation_message(exc)
            )
            continue
        except (TypeError, ValueError) as exc:  # odd shapes pydantic does not wrap
            ledger.skip(ref, "invalid_resource", f"fails FHIR validation: {exc}")
            continue
        out.append(Entry(ref, full_url, model))
    return out
