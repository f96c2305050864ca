"""Routes: the CDS Hooks 2.0 service mounted in the clinic app (issue 14).

``/cds-services`` (discovery), ``/cds-services/{service_id}`` (hooks) and
``/cds-services/{service_id}/feedback``. Callers are EHRs, not signed-in users: each call is
authenticated by the EHR's signed JWT (:mod:`trdnav.interop.cdshooks.auth`), so these routes
declare no role. The service's settings come from the file named by ``TRDNAV_CDS_CONFIG``
(read on first use; ``app.state.cds_service`` may be set beforehand, as the tests do). Feedback
is written to the audit log: who ``cds:<issuer>``, action ``cds_accepted`` or
``cds_overridden``, entity ``cds_card``, entity id the card's uuid.
"""

from __future__ import annotations

import threading

from fastapi import APIRouter, Request

from trdnav.interop.cdshooks.app import add_routes
from trdnav.interop.cdshooks.config import settings_from_env
from trdnav.interop.cdshooks.service import CdsService, Feedback
from trdnav.storage.repository import record_audit
from trdnav.web.deps import client_ip

router = APIRouter()
_lock = threading.Lock()


def service_of(request: Request) -> CdsService:
    state = request.app.state
    found: CdsService | None = getattr(state, "cds_service", None)
    if found is not None:
        return found
    with _lock:
        found = getattr(state, "cds_service", None)
        if found is None:
            settings = settings_from_env()
            if settings.today is None and state.settings.today is not None:
                settings = settings.model_copy(update={"today": state.settings.today})
            found = CdsService(settings, state.knowledge)
            state.cds_service = found
    return found


def audit_feedback(request: Request, issuer: str, items: list[Feedback]) -> None:
    with request.app.state.sessionmaker() as db:
        for f in items:
            record_audit(
                db,
                f"cds:{issuer}"[:120],
                f"cds_{f.outcome}",
                "cds_card",
                f.card,
                client_ip(request),
            )
        db.commit()


add_routes(router, service_of, audit_feedback)
