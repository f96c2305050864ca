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

import gc
import logging
from collections.abc import Awaitable, Callable

from fastapi import APIRouter
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

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


Handler = Callable[[Request], Awaitable[Response]]


def handlers(service_of: ServiceOf, sink: FeedbackSink) -> dict[str, tuple[str, str, Handler]]:
    """The three endpoints as plain ``request -> response`` functions, mounted by the clinic app
    (FastAPI router) and by the standalone service (Starlette routes) alike."""

    async def discovery(request: Request) -> Response:
        return JSONResponse(CdsService.discovery())

    async def call(request: Request) -> Response:
        try:
            service = service_of(request)
            service_id = str(request.path_params["service_id"])
            body = await read_body(request, service.settings.max_body_bytes)
            authorization, base = request.headers.get("authorization"), base_of(request)
            # a memoised record is answered here (about a millisecond of CPU, no I/O); a new one
            # (FHIR import, assessment, perhaps the EHR's FHIR server) in a worker thread
            memoised = service.call_memoised(service_id, body, authorization, base)
            if memoised is not None:
                return Response(memoised, media_type="application/json")
            answer = await run_in_threadpool(service.call, service_id, body, authorization, base)
            return JSONResponse(answer)
        except CdsError as exc:
            return _error(exc)

    async def feedback(request: Request) -> Response:
        try:
            service = service_of(request)
            service_id = str(request.path_params["service_id"])
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
            return JSONResponse({"recorded": len(items)})
        except CdsError as exc:
            return _error(exc)

    return {
        "CDS Hooks discovery": ("/cds-services", "GET", discovery),
        "Call a CDS Hooks service": ("/cds-services/{service_id}", "POST", call),
        "Feedback on the cards of a CDS Hooks service": (
            "/cds-services/{service_id}/feedback",
            "POST",
            feedback,
        ),
    }


def add_routes(router: APIRouter, service_of: ServiceOf, sink: FeedbackSink) -> None:
    # not in the clinic app's OpenAPI document: the CDS Hooks specification is their contract
    for summary, (path, method, endpoint) in handlers(service_of, sink).items():
        router.add_api_route(
            path, endpoint, methods=[method], summary=summary, include_in_schema=False
        )


def create_cds_app(settings: CdsSettings, knowledge: Knowledge | None = None) -> Starlette:
    """The CDS Hooks service alone (``trdnav cds serve``): three routes on Starlette, without the
    clinic app's FastAPI layers (OpenAPI, dependency injection), which cost a third of a warm
    call's time."""
    service = CdsService(settings, knowledge or default_knowledge())
    routes = [
        Route(path, endpoint, methods=[method])
        for path, method, endpoint in handlers(lambda request: service, log_feedback).values()
    ]
    app = Starlette(routes=routes)
    app.state.cds_service = service
    return app


def freeze_long_lived() -> None:
    """Move what exists now (the knowledge base: ~10^5 long-lived objects) out of the garbage
    collector's view, so that a full collection under load does not walk it (it showed as the
    p99 of the CDS benchmark). For a server process, once its app is built."""
    gc.collect()
    gc.freeze()


def app_from_env() -> Starlette:
    """The standalone app with the settings of ``TRDNAV_CDS_CONFIG`` (uvicorn factory)."""
    from trdnav.interop.cdshooks.config import settings_from_env

    app = create_cds_app(settings_from_env())
    freeze_long_lived()
    return app
