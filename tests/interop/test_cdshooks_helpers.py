"""What the CDS Hooks tests share: an EHR (its keys, its signed JWTs), a patient record as FHIR
R4 resources, and a real HTTP stand-in on loopback serving the EHR's JWK Set and FHIR API.

No tests here: the test files import these (``tests.interop.test_cdshooks_helpers``).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from trdnav.interop.cdshooks.config import CdsSettings

TODAY = date(2024, 6, 1)
ISSUER = "https://ehr.example.org"
BASE = "http://testserver"
PATIENT = "pat-1"
ACCESS_TOKEN = "fhir-access-token-for-the-service"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
PHQ9_ITEMS = ["44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5"]
PHQ9_ITEMS += ["44253-3", "44260-8"]
_EC = ECKey.generate_key("P-384", parameters={"kid": "ehr-ec", "alg": "ES384", "use": "sig"})
_RSA = RSAKey.generate_key(2048, parameters={"kid": "ehr-rsa", "alg": "RS384", "use": "sig"})
_OTHER = ECKey.generate_key("P-384", parameters={"kid": "ehr-ec", "alg": "ES384"})  # not the EHR


def public_jwks() -> dict[str, Any]:
    return KeySet([_EC, _RSA]).as_dict(private=False)


def sign(
    aud: str | list[str],
    *,
    alg: str = "ES384",
    iss: str = ISSUER,
    exp_in: int = 300,
    jti: str | None = None,
    header: dict[str, Any] | None = None,
    drop: tuple[str, ...] = (),
    wrong_key: bool = False,
) -> str:
    """A JWT as the EHR signs it (ES384 with ``ehr-ec``, or RS384 with ``ehr-rsa``)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": iss,
        "aud": aud,
        "exp": now + exp_in,
        "iat": now - 5,
        "jti": jti or str(uuid.uuid4()),
    }
    for name in drop:
        claims.pop(name, None)
    key = _EC if alg == "ES384" else _RSA
    if wrong_key:
        key = _OTHER
    head = {"alg": alg, "typ": "JWT", "kid": key.kid, **(header or {})}
    return jwt.encode(head, claims, key, algorithms=[alg])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def settings(jwks_url: str | None = None, **overrides: Any) -> CdsSettings:
    issuer: dict[str, Any] = {"iss": ISSUER}
    if jwks_url:
        issuer["jwks_url"] = jwks_url
    else:
        issuer["jwks"] = public_jwks()
    values: dict[str, Any] = {
        "base_url": BASE,
        "issuers": [issuer],
        "today": TODAY,
        "patient_link": "https://trd.clinic.example/patients/{patient_id}",
    }
    values.update(overrides)
    return CdsSettings.model_validate(values)


# --- a patient record as FHIR R4 -------------------------------------------------------------


def med_request(
    rid: str,
    rxnorm: str | None,
    text: str,
    authored: str,
    mg: float | None,
    status: str = "completed",
    days: int = 60,
    per_day: int = 1,
) -> dict[str, Any]:
    concept: dict[str, Any] = {"text": text}
    if rxnorm:
        concept["coding"] = [{"system": RXNORM, "code": rxnorm, "display": text}]
    r: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": status,
        "intent": "order",
        "subject": {"reference": f"Patient/{PATIENT}"},
        "medicationCodeableConcept": concept,
        "authoredOn": authored,
        "dispenseRequest": {"expectedSupplyDuration": {"value": days, "unit": "d"}},
    }
    if mg is not None:
        r["dosageInstruction"] = [
            {
                "timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}},
                "doseAndRate": [
                    {
                        "doseQuantity": {
                            "value": mg / per_day,
                            "unit": "mg",
                            "system": "http://unitsofmeasure.org",
                            "code": "mg",
                        }
                    }
                ],
            }
        ]
    return r


def dispense(rid: str, rxnorm: str, text: str, day: str, days: int = 30) -> dict[str, Any]:
    return {
        "resourceType": "MedicationDispense",
        "id": rid,
        "status": "completed",
        "subject": {"reference": f"Patient/{PATIENT}"},
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": rxnorm, "display": text}],
            "text": text,
        },
        "whenHandedOver": day,
        "daysSupply": {"value": days, "unit": "d"},
    }


def monthly(prefix: str, rxnorm: str, text: str, start: date, months: int) -> list[dict[str, Any]]:
    """A 30-day dispense every 30 days from ``start``."""
    return [
        dispense(f"{prefix}{i}", rxnorm, text, (start + timedelta(days=30 * i)).isoformat())
        for i in range(months)
    ]


def phq9(rid: str, day: str, items: list[int]) -> list[dict[str, Any]]:
    """A PHQ-9 as EHRs send it: one Observation per item and one for the total (44261-6)."""
    out = [
        {
            "resourceType": "Observation",
            "id": f"{rid}-{i + 1}",
            "status": "final",
            "code": {"coding": [{"system": LOINC, "code": code}]},
            "subject": {"reference": f"Patient/{PATIENT}"},
            "effectiveDateTime": day,
            "valueInteger": items[i],
        }
        for i, code in enumerate(PHQ9_ITEMS)
    ]
    out.append(
        {
            "resourceType": "Observation",
            "id": f"{rid}-total",
            "status": "final",
            "category": [{"coding": [{"code": "survey"}]}],
            "code": {"coding": [{"system": LOINC, "code": "44261-6"}]},
            "subject": {"reference": f"Patient/{PATIENT}"},
            "effectiveDateTime": day,
            "valueQuantity": {"value": sum(items), "unit": "{score}"},
        }
    )
    return out


@dataclass
class Record:
    """The patient's record by prefetch key (each a resource or a searchset Bundle)."""

    patient: dict[str, Any]
    conditions: list[dict[str, Any]]
    requests: list[dict[str, Any]]
    statements: list[dict[str, Any]] = field(default_factory=list)
    observations: list[dict[str, Any]] = field(default_factory=list)
    dispenses: list[dict[str, Any]] = field(default_factory=list)

    def prefetch(self) -> dict[str, Any]:
        return {
            "patient": self.patient,
            "conditions": searchset(self.conditions),
            "medicationRequests": searchset(self.requests),
            "medicationStatements": searchset(self.statements),
            "observations": searchset(self.observations),
            "medicationDispenses": searchset(self.dispenses),
        }

    def all(self) -> list[dict[str, Any]]:
        return [
            self.patient,
            *self.conditions,
            *self.requests,
            *self.statements,
            *self.observations,
            *self.dispenses,
        ]


def searchset(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"resource": r} for r in resources],
    }


def trd_record(item9: int = 0, current: bool = True) -> Record:
    """Two failed adequate SSRI trials (sertraline 150, escitalopram 20), now on venlafaxine,
    hypertension on record; PHQ-9 every month (item 9 of the last one = ``item9``)."""
    requests = [
        med_request("mr-s1", "36437", "sertraline 50 MG Oral Tablet", "2023-02-01", 50, days=14),
        med_request("mr-s2", "36437", "sertraline 100 MG Oral Tablet", "2023-02-15", 150, days=75),
        med_request("mr-e1", "321988", "escitalopram 10 MG", "2023-05-15", 10, days=14),
        med_request("mr-e2", "321988", "escitalopram 20 MG", "2023-05-29", 20, days=92),
    ]
    if current:
        requests.append(
            med_request(
                "mr-v1", "39786", "venlafaxine 75 MG", "2024-04-01", 150, status="active", days=90
            )
        )
    observations: list[dict[str, Any]] = []
    scores = [
        ("2023-02-01", [3, 3, 2, 3, 2, 3, 2, 2, 0]),
        ("2023-04-20", [3, 3, 2, 3, 2, 2, 2, 2, 0]),
        ("2023-05-15", [3, 3, 2, 3, 2, 3, 2, 2, 0]),
        ("2023-08-20", [3, 2, 2, 3, 2, 3, 2, 2, 0]),
        ("2024-04-01", [3, 3, 2, 2, 2, 3, 2, 2, 0]),
        ("2024-05-20", [3, 3, 2, 2, 2, 3, 2, 2, item9]),
    ]
    for i, (day, items) in enumerate(scores):
        observations += phq9(f"phq{i}", day, items)
    return Record(
        patient={
            "resourceType": "Patient",
            "id": PATIENT,
            "name": [{"given": ["Ana"], "family": "Silva"}],
            "gender": "female",
            "birthDate": "1985-03-02",
        },
        conditions=[
            {
                "resourceType": "Condition",
                "id": "cond-mdd",
                "clinicalStatus": {"coding": [{"code": "active"}]},
                "verificationStatus": {"coding": [{"code": "confirmed"}]},
                "code": {"coding": [{"system": ICD10, "code": "F33.2"}]},
                "subject": {"reference": f"Patient/{PATIENT}"},
                "onsetDateTime": "2023-01-15",
            },
            {
                "resourceType": "Condition",
                "id": "cond-htn",
                "clinicalStatus": {"coding": [{"code": "active"}]},
                "code": {"coding": [{"system": ICD10, "code": "I10"}]},
                "subject": {"reference": f"Patient/{PATIENT}"},
                "onsetDateTime": "2019-01-01",
            },
        ],
        requests=requests,
        observations=observations,
        dispenses=monthly("d-s", "36437", "sertraline", date(2023, 2, 1), 3)
        + monthly("d-e", "321988", "escitalopram", date(2023, 5, 15), 4)
        + (monthly("d-v", "39786", "venlafaxine", date(2024, 4, 1), 2) if current else []),
    )


def hook_request(
    hook: str, record: Record | None, *, context: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "hook": hook,
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/dr-1", "patientId": PATIENT, **(context or {})},
    }
    if record is not None:
        body["prefetch"] = record.prefetch()
    body.update(extra)
    return body


def draft(rid: str, rxnorm: str | None, text: str, mg: float, per_day: int = 1) -> dict[str, Any]:
    r = med_request(rid, rxnorm, text, TODAY.isoformat(), mg, status="draft", per_day=per_day)
    r["dispenseRequest"] = {"expectedSupplyDuration": {"value": 30, "unit": "d"}}
    return r


def order_context(*orders: dict[str, Any], select: bool = True) -> dict[str, Any]:
    ctx: dict[str, Any] = {"draftOrders": searchset(list(orders))}
    ctx["draftOrders"]["type"] = "collection"
    if select:
        ctx["selections"] = [f"MedicationRequest/{o['id']}" for o in orders]
    return ctx


# --- the EHR's HTTP stand-in on loopback -----------------------------------------------------


@dataclass
class StandIn:
    """A real HTTP server on 127.0.0.1: ``/jwks.json`` and a FHIR API under ``/fhir``."""

    url: str
    resources: list[dict[str, Any]]
    requests: list[tuple[str, str | None]]  # (path with query, Authorization header)
    delay: dict[str, float]  # path prefix -> seconds to wait before answering

    @property
    def fhir(self) -> str:
        return self.url + "/fhir"

    @property
    def jwks_url(self) -> str:
        return self.url + "/jwks.json"


def _search(resources: list[dict[str, Any]], kind: str, query: dict[str, list[str]]) -> Any:
    patient = (query.get("patient") or [""])[0]
    found = [
        r
        for r in resources
        if r.get("resourceType") == kind
        and (r.get("subject") or {}).get("reference") == f"Patient/{patient}"
    ]
    return searchset(found)


@contextmanager
def stand_in(record: Record | None = None) -> Iterator[StandIn]:
    state = StandIn("", record.all() if record else [], [], {})

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def _send(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the service gave up waiting (the timeout test)

        def do_GET(self) -> None:
            auth = self.headers.get("Authorization")
            state.requests.append((self.path, auth))
            for prefix, seconds in list(state.delay.items()):
                if self.path.startswith(prefix):
                    time.sleep(seconds)
            parts = urlsplit(self.path)
            if parts.path == "/jwks.json":
                self._send(200, public_jwks())
                return
            if not parts.path.startswith("/fhir/"):
                self._send(404, {"resourceType": "OperationOutcome"})
                return
            if auth != f"Bearer {ACCESS_TOKEN}":
                self._send(401, {"resourceType": "OperationOutcome"})
                return
            rest = parts.path[len("/fhir/") :].split("/")
            if len(rest) == 2:
                match = [
                    r
                    for r in state.resources
                    if r.get("resourceType") == rest[0] and r.get("id") == rest[1]
                ]
                self._send(200 if match else 404, match[0] if match else {})
                return
            self._send(200, _search(state.resources, rest[0], parse_qs(parts.query)))

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
