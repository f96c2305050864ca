"""HTTP for the CDS Hooks service: the routes (shared by the clinic app and the standalone app)
and ``create_cds_app`` for ``trdnav cds serve``.

Routes::

    GET  /cds-services                      discovery (no patient data: open, no JWT needed)
    POST /cds-services/{service_id}         a hook call (JWT required)
    POST /cds-services/{service_id}/feedback  card outcomes (JWT required; audited)

Errors use the clinic app's one JSON shape ``{"error": {"code", "message", "problems"}}``: 400
for a malformed request, 401 for any JWT failure, 404 for an unknown service, 412 when the
record cannot be read, 413 for a body over ``max_body_bytes``. A caller's mistake is never a 500.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from trdnav import __version__
from trdnav.interop.cdshooks.config import CdsSettings
from trdnav.interop.cdshooks.errors import CdsError
from trdnav.interop.cdshooks.service import CdsService, Feedback
from trdnav.knowledge.load import Knowledge, default_knowledge

log = logging.getLogger("trdnav.cdshooks")

ServiceOf = Callable[[Request], CdsService]
FeedbackSink = Callable[[Request, str, list[Feedback]], None]


def _error(exc: CdsError) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer error="invalid_token"'} if exc.status == 401 else None
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) past ``limit`` bytes without reading it all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise CdsError(
            413, "request_too_large", f"the request body is over {limit:,} bytes; send less"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise CdsError(
                413, "request_too_large", f"the request body is over {limit:,} bytes; send less"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def base_of(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def log_feedback(request: Request, issuer: str, items: list[Feedback]) -> None:
    for f in items:
        log.info("cds feedback %s card=%s suggestions=%d", f.outcome, f.card, len(f.accepted))


def add_routes(router: APIRouter, service_of: ServiceOf, sink: FeedbackSink) -> None:
    # not in the clinic app's OpenAPI document: the CDS Hooks specification is their contract
    @router.get("/cds-services", summary="CDS Hooks discovery", include_in_schema=False)
    def cds_discovery() -> dict[str, Any]:
        return CdsService.discovery()

    @router.post(
        "/cds-services/{service_id}", summary="Call a CDS Hooks service", include_in_schema=False
    )
    async def cds_call(service_id: str, request: Request) -> Any:
        try:
            service = service_of(request)
            body = await read_body(request, service.settings.max_body_bytes)
            answer = await run_in_threadpool(
                service.call,
                service_id,
                body,
                request.headers.get("authorization"),
                base_of(request),
            )
            return JSONResponse(answer)
        except CdsError as exc:
            return _error(exc)

    @router.post(
        "/cds-services/{service_id}/feedback",
        summary="Feedback on the cards of a CDS Hooks service",
        include_in_schema=False,
    )
    async def cds_feedback(service_id: str, request: Request) -> Any:
        try:
            service = service_of(request)
            body = await read_body(request, service.settings.max_body_bytes)
            url = service.service_url(service_id, base_of(request))
            claims = await run_in_threadpool(
                service.verifier.verify,
                request.headers.get("authorization"),
                (url + "/feedback", url),
            )
            issuer = str(claims["iss"])
            items = service.feedback(service_id, body)
            await run_in_threadpool(sink, request, issuer, items)
            return {"recorded": len(items)}
        except CdsError as exc:
            return _error(exc)


def create_cds_app(settings: CdsSettings, knowledge: Knowledge | None = None) -> FastAPI:
    """The CDS Hooks service alone (``trdnav cds serve``)."""
    app = FastAPI(
        title="TRD Navigator CDS Hooks service",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    service = CdsService(settings, knowledge or default_knowledge())
    app.state.cds_service = service
    router = APIRouter()
    add_routes(router, lambda request: service, log_feedback)
    app.include_router(router)
    return app


def app_from_env() -> FastAPI:
    """The standalone app with the settings of ``TRDNAV_CDS_CONFIG`` (uvicorn factory)."""
    from trdnav.interop.cdshooks.config import settings_from_env

    return create_cds_app(settings_from_env())
