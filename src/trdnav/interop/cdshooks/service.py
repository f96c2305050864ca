"""The CDS Hooks service, without HTTP: discovery, the three hooks and feedback.

``CdsService.call(service_id, body, authorization, service_url)`` verifies the caller's JWT,
reads the request, gathers the record (prefetch, else the EHR's FHIR server), turns it into a
History, assesses it with the core and returns ``{"cards": [...]}``. Every refusal is a
:class:`~trdnav.interop.cdshooks.errors.CdsError` with its HTTP status (4xx, never 5xx for a
caller's mistake). Assessments are memoised by the content of the History (the core is pure),
so an EHR calling ``order-select`` on every keystroke does not recompute the plan.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from trdnav.core.assessment import Assessment, assess
from trdnav.core.history import History
from trdnav.errors import InputError
from trdnav.interop.cdshooks.auth import Fetch, JwksNotCached, JwtVerifier, fetch_json
from trdnav.interop.cdshooks.cards import Links, order_cards, patient_view_cards, reduced_card
from trdnav.interop.cdshooks.config import CdsSettings
from trdnav.interop.cdshooks.errors import CdsError
from trdnav.interop.cdshooks.fhir_client import FhirClient
from trdnav.interop.cdshooks.fhir_history import FhirHistory, read_history
from trdnav.interop.cdshooks.prefetch import PREFETCH, ClientFactory, gather
from trdnav.knowledge.load import Knowledge


@dataclass(frozen=True)
class ServiceInfo:
    id: str
    hook: str
    title: str
    description: str

    def discovery(self) -> dict[str, Any]:
        return {
            "hook": self.hook,
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "prefetch": dict(PREFETCH),
        }


SERVICES: dict[str, ServiceInfo] = {
    s.id: s
    for s in (
        ServiceInfo(
            "trdnav-patient-view",
            "patient-view",
            "TRD Navigator: treatment-resistance summary",
            "TRD status and stage with the failed adequate trials, the current state and the top "
            "of the plan, open workup items, overdue measures and any suicide-risk signal.",
        ),
        ServiceInfo(
            "trdnav-order-select",
            "order-select",
            "TRD Navigator: antidepressant order check",
            "For a selected antidepressant or augmentation order: a drug that already failed an "
            "adequate trial, contraindications and interactions, an MAOI washout not met, a dose "
            "below the adequate minimum.",
        ),
        ServiceInfo(
            "trdnav-order-sign",
            "order-sign",
            "TRD Navigator: antidepressant order check at signing",
            "The order-select checks on every antidepressant or augmentation order being signed.",
        ),
    )
}


@dataclass(frozen=True)
class Feedback:
    card: str
    outcome: str  # accepted | overridden
    accepted: tuple[str, ...]
    override_code: str | None


def _problem(loc: str, code: str, message: str) -> CdsError:
    return CdsError(
        400,
        "invalid_request",
        f"{loc}: {message}",
        [{"loc": loc, "code": code, "message": message}],
    )


def parse_json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise CdsError(400, "invalid_json", "the request body is not JSON") from None
    if not isinstance(data, dict):
        raise CdsError(400, "invalid_json", "the request body must be a JSON object")
    return data


class _UnreadableError(Exception):
    def __init__(self, card: dict[str, Any]) -> None:
        self.card = card


@dataclass(frozen=True)
class Prepared:
    """What a call's cards are made from: the record read, its assessment, the hook context."""

    read: FhirHistory
    assessment: Assessment
    context: dict[str, Any]
    missing: list[str]  # prefetch keys neither given nor fetched
    fetched: bool  # part of the record came from the FHIR server (not memoised)
    # the cards made from it, once (a memoised record is answered with copies under new uuids),
    # and each card as JSON with the uuids it holds (the answer is written by replacing them)
    cards: list[dict[str, Any]] = field(default_factory=list, compare=False)
    cards_json: list[tuple[str, tuple[str, ...]]] = field(default_factory=list, compare=False)


class _Cache:
    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[str, Prepared] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Prepared | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: str, value: Prepared) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


class CdsService:
    def __init__(
        self,
        settings: CdsSettings,
        kb: Knowledge,
        *,
        jwks_fetch: Fetch = fetch_json,
        client_factory: ClientFactory = FhirClient,
        today: Callable[[], date] = date.today,
    ) -> None:
        self.settings = settings
        self.kb = kb
        self.verifier = JwtVerifier(settings, jwks_fetch)
        self.client_factory = client_factory
        self._today = today
        self.links = Links(settings.patient_link, settings.smart_launch_url)
        self.cache = _Cache(settings.assessment_cache)

    def today(self) -> date:
        return self.settings.today or self._today()

    @staticmethod
    def discovery() -> dict[str, Any]:
        return {"services": [s.discovery() for s in SERVICES.values()]}

    def service_url(self, service_id: str, request_base: str) -> str:
        base = self.settings.base_url or request_base.rstrip("/")
        return f"{base}/cds-services/{service_id}"

    def _service(self, service_id: str) -> ServiceInfo:
        info = SERVICES.get(service_id)
        if info is None:
            raise CdsError(
                404, "unknown_service", f"no CDS service {service_id!r}; see /cds-services"
            )
        return info

    def authenticate(self, service_id: str, authorization: str | None, base: str) -> str:
        """Verify the caller for ``service_id``; its issuer."""
        self._service(service_id)
        claims = self.verifier.verify(authorization, self.service_url(service_id, base))
        return str(claims["iss"])

    def _memo_key(self, service_id: str, today: date, body: bytes) -> str:
        # a request carrying its whole record is answered from the memo when the same request
        # (less its per-call hookInstance and token) was answered before: nothing to re-read
        return f"{service_id}|{today.isoformat()}|{self.kb.kb_version}|{_body_key(body)}"

    def call(self, service_id: str, body: bytes, authorization: str | None, base: str) -> Any:
        info = self._service(service_id)
        self.authenticate(service_id, authorization, base)
        today = self.today()
        key = self._memo_key(service_id, today, body)
        prepared = self.cache.get(key)
        if prepared is None:
            try:
                prepared = self._prepare(info, parse_json(body), today)
            except _UnreadableError as exc:  # not an error for the EHR: one reduced card
                return {"cards": [exc.card]}
            if not prepared.fetched:
                self.cache.put(key, prepared)
        return {"cards": self._cards(info, prepared, today)}

    def call_memoised(
        self, service_id: str, body: bytes, authorization: str | None, base: str
    ) -> bytes | None:
        """The answer (JSON) to a request whose record is memoised, made without blocking (no
        network, no import, no assessment), so the HTTP layer can answer it on its event loop;
        None when :meth:`call` must do the work (not memoised, or the issuer's keys must be
        fetched). The caller is verified exactly as by :meth:`call`."""
        info = self._service(service_id)
        today = self.today()
        prepared = self.cache.get(self._memo_key(service_id, today, body))
        if prepared is None:
            return None
        try:
            self.verifier.verify(
                authorization, self.service_url(service_id, base), fetch_keys=False
            )
        except JwksNotCached:
            return None
        if not prepared.cards_json:
            prepared.cards_json.extend(
                (_dumps(c), _uuids_of(c)) for c in self._cards(info, prepared, today)
            )
        cards = []
        for text, uuids in prepared.cards_json:
            for old in uuids:
                text = text.replace(old, str(uuid.uuid4()))
            cards.append(text)
        return ('{"cards":[' + ",".join(cards) + "]}").encode()

    def _prepare(self, info: ServiceInfo, request: dict[str, Any], today: date) -> Prepared:
        context = self._check_request(request, info)
        gathered = gather(
            request,
            self.settings.max_resources,
            self.settings.fhir_timeout_seconds,
            self.client_factory,
        )
        if "patient" in gathered.missing and not gathered.resources:
            raise CdsError(
                412,
                "fhir_data_unavailable",
                "no prefetch and no fhirServer: the service cannot read the patient's record",
            )
        drafts = _draft_ids(context)
        resources = [r for r in gathered.resources if _ref(r) not in drafts]
        try:
            read = read_history(resources, self.kb, today)
        except InputError as exc:
            notes = [f"{p.loc}: {p.message}" for p in exc.problems] or ["unreadable record"]
            reduced = reduced_card(notes, gathered.missing) or {}
            reduced["summary"] = "No TRD advice: the patient's record could not be read"
            raise _UnreadableError(reduced) from None
        a = assess(read.history, self.kb, today=today)
        return Prepared(read, a, context, list(gathered.missing), bool(gathered.fetched))

    def _cards(self, info: ServiceInfo, p: Prepared, today: date) -> list[dict[str, Any]]:
        """The cards of ``p``: made once, given to every call as a copy under new uuids (the
        EHR's feedback names a card by its uuid)."""
        if not p.cards:
            p.cards.extend(self._make_cards(info, p, today))
        return [_renew_uuids(c) for c in p.cards]

    def _make_cards(self, info: ServiceInfo, p: Prepared, today: date) -> list[dict[str, Any]]:
        # the clinic app knows the patient by the history's id (the MRN when the EHR gives one,
        # else the FHIR id), as the FHIR import stores it
        links = self.links.for_patient(p.read.history.patient.id)
        if info.hook == "patient-view":
            return patient_view_cards(p.assessment, links, p.read.notes, p.missing)
        orders = _orders(p.context, info.hook)
        cards = order_cards(orders, p.assessment, p.read.history, self.kb, today, links)
        reduced = reduced_card([], p.missing)
        if reduced is not None and cards:
            cards.append(reduced)
        return cards

    def _check_request(self, request: dict[str, Any], info: ServiceInfo) -> dict[str, Any]:
        if request.get("hook") != info.hook:
            raise _problem("hook", "wrong_hook", f"expected {info.hook!r} for this service")
        if not isinstance(request.get("hookInstance"), str) or not request["hookInstance"]:
            raise _problem("hookInstance", "missing", "a UUID string is required")
        context = request.get("context")
        if not isinstance(context, dict):
            raise _problem("context", "missing", "an object is required")
        patient = context.get("patientId")
        if not isinstance(patient, str) or not patient.strip():
            raise _problem("context.patientId", "missing", "the patient's FHIR id is required")
        if "fhirAuthorization" in request and not isinstance(request.get("fhirServer"), str):
            raise _problem("fhirServer", "missing", "required when fhirAuthorization is given")
        if info.hook in ("order-select", "order-sign"):
            drafts = context.get("draftOrders")
            if not isinstance(drafts, dict) or drafts.get("resourceType") != "Bundle":
                raise _problem("context.draftOrders", "missing", "a FHIR Bundle is required")
        if info.hook == "order-select":
            selections = context.get("selections")
            if not isinstance(selections, list) or not all(isinstance(s, str) for s in selections):
                raise _problem(
                    "context.selections", "missing", "an array of 'Type/id' strings is required"
                )
        return context

    def feedback(self, service_id: str, body: bytes) -> list[Feedback]:
        self._service(service_id)
        data = parse_json(body)
        items = data.get("feedback")
        if not isinstance(items, list) or not items:
            raise _problem("feedback", "missing", "a non-empty array is required")
        out = []
        for i, item in enumerate(items):
            loc = f"feedback[{i}]"
            if not isinstance(item, dict):
                raise _problem(loc, "type", "an object is required")
            cid, outcome = item.get("card"), item.get("outcome")
            if not isinstance(cid, str) or not cid:
                raise _problem(f"{loc}.card", "missing", "the card's uuid is required")
            if outcome not in ("accepted", "overridden"):
                raise _problem(f"{loc}.outcome", "value", "expected 'accepted' or 'overridden'")
            if not isinstance(item.get("outcomeTimestamp"), str):
                raise _problem(f"{loc}.outcomeTimestamp", "missing", "an ISO timestamp is required")
            accepted = item.get("acceptedSuggestions") or []
            if outcome == "accepted" and not accepted:
                raise _problem(
                    f"{loc}.acceptedSuggestions", "missing", "required for an accepted outcome"
                )
            ids = tuple(str(s.get("id")) for s in accepted if isinstance(s, dict) and s.get("id"))
            reason = (item.get("overrideReason") or {}).get("reason") or {}
            code = reason.get("code") if isinstance(reason, dict) else None
            out.append(Feedback(cid[:120], outcome, ids, code if isinstance(code, str) else None))
        return out


# the per-call fields of a request: a string hookInstance, an object fhirAuthorization
_VOLATILE = (
    (b'"hookInstance"', re.compile(rb'\s*:\s*"[^"]*"')),
    (b'"fhirAuthorization"', re.compile(rb"\s*:\s*\{[^{}]*\}")),
)


def _body_key(body: bytes) -> str:
    """A digest of the request without its per-call fields: equal digests, equal records.

    The field names are found with ``bytes.find`` (a 65 kB prefetch is scanned in microseconds;
    a regular expression tried at every offset took a quarter of a millisecond)."""
    cuts: list[tuple[int, int]] = []
    for name, value in _VOLATILE:
        at = body.find(name)
        while at >= 0:
            m = value.match(body, at + len(name))
            if m is not None:
                cuts.append((at, m.end()))
            at = body.find(name, at + len(name))
    digest = hashlib.sha256()
    pos = 0
    for start, end in sorted(cuts):
        if start >= pos:
            digest.update(body[pos:start])
            pos = end
    digest.update(body[pos:])
    return "body:" + digest.hexdigest()


def _dumps(obj: Any) -> str:
    """JSON as the HTTP layer writes it (Starlette's JSONResponse)."""
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _uuids_of(card: dict[str, Any]) -> tuple[str, ...]:
    return (card["uuid"], *(s["uuid"] for s in card.get("suggestions", ())))


def _renew_uuids(card: dict[str, Any]) -> dict[str, Any]:
    """A copy of a card under a new ``uuid``, its suggestions too (the only places cards.py puts
    one); what lies deeper is shared with the memo, which nothing mutates."""
    out = {**card, "uuid": str(uuid.uuid4())}
    if "suggestions" in card:
        out["suggestions"] = [{**s, "uuid": str(uuid.uuid4())} for s in card["suggestions"]]
    return out


def _ref(r: dict[str, Any]) -> str:
    return f"{r.get('resourceType')}/{r.get('id')}"


def _draft_resources(context: dict[str, Any]) -> list[dict[str, Any]]:
    bundle = context.get("draftOrders")
    if not isinstance(bundle, dict):
        return []
    return [
        e["resource"]
        for e in bundle.get("entry") or ()
        if isinstance(e, dict) and isinstance(e.get("resource"), dict)
    ]


def _draft_ids(context: dict[str, Any]) -> set[str]:
    return {_ref(r) for r in _draft_resources(context)}


def _orders(context: dict[str, Any], hook: str) -> list[dict[str, Any]]:
    orders = [r for r in _draft_resources(context) if r.get("resourceType") == "MedicationRequest"]
    if hook == "order-select":
        selected = set(context.get("selections") or ())
        orders = [r for r in orders if _ref(r) in selected]
    return orders


__all__ = ["SERVICES", "CdsService", "Feedback", "History"]
