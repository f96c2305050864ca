"""Prefetch templates of the services, and the FHIR resources a request brings or lets us fetch.

Each service asks for the same patient record (``PREFETCH``). A key the CDS client did not
satisfy is fetched from its FHIR server (``fhirServer`` with the ``fhirAuthorization`` bearer
token) when the request gives one; without either, the hook answers 412 when the Patient is
missing, and a clearly reduced card naming what is missing otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from trdnav.interop.cdshooks.errors import CdsError
from trdnav.interop.cdshooks.fhir_client import FhirClient

PREFETCH: dict[str, str] = {
    "patient": "Patient/{{context.patientId}}",
    "conditions": "Condition?patient={{context.patientId}}",
    "medicationRequests": "MedicationRequest?patient={{context.patientId}}",
    "medicationStatements": "MedicationStatement?patient={{context.patientId}}",
    "medicationDispenses": "MedicationDispense?patient={{context.patientId}}",
    "observations": "Observation?patient={{context.patientId}}&category=survey,laboratory",
}
# what a missing key costs the assessment (shown on the reduced card)
MISSING_MEANS: dict[str, str] = {
    "patient": "age and sex unknown",
    "conditions": "comorbidities unknown: contraindications not screened",
    "medicationRequests": "prescriptions unknown: trials and interactions incomplete",
    "medicationStatements": "medication statements unknown: trials may be incomplete",
    "medicationDispenses": "dispenses unknown: adherence not estimated",
    "observations": "scores unknown: response and suicide-item screening not possible",
}
_TOKEN = re.compile(r"\{\{\s*context\.(\w+)\s*\}\}")


def render(template: str, context: dict[str, Any]) -> str:
    """Fill ``{{context.x}}`` tokens; a token with no value in the context is an error."""

    def value(match: re.Match[str]) -> str:
        v = context.get(match.group(1))
        if not isinstance(v, str) or not v:
            raise CdsError(400, "invalid_context", f"context.{match.group(1)} is required")
        return v

    return _TOKEN.sub(value, template)


def resources_of(value: Any) -> list[dict[str, Any]]:
    """The resources of one prefetch value: a resource, or a Bundle of them (or null)."""
    if not isinstance(value, dict):
        return []
    if value.get("resourceType") == "Bundle":
        out = []
        for entry in value.get("entry") or ():
            r = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(r, dict) and isinstance(r.get("resourceType"), str):
                out.append(r)
        return out
    return [value] if isinstance(value.get("resourceType"), str) else []


@dataclass
class Gathered:
    resources: list[dict[str, Any]] = field(default_factory=list)
    fetched: list[str] = field(default_factory=list)  # keys read from the FHIR server
    missing: list[str] = field(default_factory=list)  # keys neither prefetched nor fetched


ClientFactory = Callable[[str, str | None, float], FhirClient]


def gather(
    request: dict[str, Any],
    max_resources: int,
    timeout: float,
    client_factory: ClientFactory = FhirClient,
) -> Gathered:
    """Every resource of the record: the prefetch, and what the FHIR server gives for the rest."""
    context = request.get("context") or {}
    prefetch = request.get("prefetch")
    prefetch = prefetch if isinstance(prefetch, dict) else {}
    out = Gathered()
    todo = []
    for key, template in PREFETCH.items():
        if key in prefetch:
            out.resources += resources_of(prefetch[key])
        else:
            todo.append((key, template))
    server = request.get("fhirServer")
    auth = request.get("fhirAuthorization")
    token = auth.get("access_token") if isinstance(auth, dict) else None
    if todo and isinstance(server, str) and server:
        client = client_factory(server, token if isinstance(token, str) else None, timeout)
        with client:
            for key, template in todo:
                out.resources += client.read(render(template, context), max_resources)
                out.fetched.append(key)
    else:
        out.missing = [key for key, _ in todo]
    if len(out.resources) > max_resources:
        raise CdsError(
            413,
            "too_many_resources",
            f"the record has {len(out.resources)} resources; at most {max_resources} are read",
        )
    return out
