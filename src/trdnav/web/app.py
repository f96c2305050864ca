"""The web app factory ``create_app(settings, knowledge)``: no module-level app, engine, settings.

Pages are server-rendered (Jinja2) with HTMX (vendored under ``static/vendor``); the JSON API lives
under ``/api`` and is described by the generated OpenAPI document (``/api/openapi.json``).
The application log carries method, route *template*, status and time — never a patient id,
a query string or a form value.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException

from trdnav import __version__
from trdnav.errors import InputError
from trdnav.knowledge.load import Knowledge, default_knowledge
from trdnav.storage.engine import make_engine, make_sessionmaker
from trdnav.storage.repository import PatientNotFoundError, StaleRecordError
from trdnav.web.deps import ForbiddenError, NotSignedInError, SecondFactorNeededError
from trdnav.web.security import SECURITY_HEADERS, SESSION_COOKIE
from trdnav.web.settings import WebSettings

HERE = Path(__file__).resolve().parent
log = logging.getLogger("trdnav.web")

DISCLAIMER = "Decision support for qualified clinicians — not a medical device."


def templates(reload: bool = False) -> Jinja2Templates:
    t = Jinja2Templates(directory=str(HERE / "templates"))
    t.env.auto_reload = reload  # re-reading template files on every render is for development
    t.env.globals.update(app_version=__version__, disclaimer=DISCLAIMER)
    return t


def wants_json(request: Request) -> bool:
    return (
        request.url.path.startswith("/api/")
        or "application/json" in request.headers.get("accept", "").split(",")[0]
    )


def error_body(code: str, message: str, problems: list[dict[str, Any]] | None = None) -> Any:
    """The one JSON error shape of the API."""
    return {"error": {"code": code, "message": message, "problems": problems or []}}


def _route_template(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", None) or "(unmatched)"


def set_session_cookie(request: Request, response: Response, value: str) -> None:
    settings: WebSettings = request.app.state.settings
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=settings.session_max_hours * 3600,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    request.state.session_cookie_set = True


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    request.state.session_cookie_set = True


def _install_middleware(app: FastAPI) -> None:
    @app.middleware("http")
    async def sessions_and_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        # the session is read from the database by the route's user dependency (deps.py), which
        # also records its use; the cookie itself never changes after sign-in
        request.state.session = None
        request.state.session_cookie_set = False
        response = await call_next(request)
        is_static = request.url.path.startswith("/static/")
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.url.scheme == "https":
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        if not is_static:
            response.headers.setdefault("Cache-Control", "no-store")
        log.info(
            "%s %s %s %.1fms",
            request.method,
            _route_template(request),
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        return response


def _page_or_json(request: Request, status: int, code: str, title: str, message: str) -> Response:
    if wants_json(request):
        return JSONResponse(error_body(code, message), status_code=status)
    tpl: Jinja2Templates = request.app.state.templates
    return tpl.TemplateResponse(
        request,
        "errors/error.html",
        {"title": title, "message": message, "status": status, "user": None},
        status_code=status,
    )


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(NotSignedInError)
    async def not_signed_in(request: Request, exc: NotSignedInError) -> Response:
        if wants_json(request):
            return JSONResponse(
                error_body("not_signed_in", "sign in or send a valid bearer token"),
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        target = "/signin"
        if exc.reason in ("idle", "revoked"):
            target += "?reason=" + exc.reason
        elif request.method == "GET" and request.url.path not in ("/", "/signin"):
            target += "?next=" + request.url.path
        response: Response = RedirectResponse(target, status_code=303)
        if request.headers.get("hx-request"):
            response = Response(status_code=204, headers={"HX-Redirect": target})
        clear_session_cookie(request, response)
        return response

    @app.exception_handler(SecondFactorNeededError)
    async def second_factor_needed(request: Request, exc: SecondFactorNeededError) -> Response:
        message = "set up a second factor (an authenticator app) first: /account/totp"
        if wants_json(request):
            return JSONResponse(error_body("second_factor_needed", message), status_code=403)
        if request.headers.get("hx-request"):
            return Response(status_code=204, headers={"HX-Redirect": "/account/totp"})
        return RedirectResponse("/account/totp", status_code=303)

    @app.exception_handler(ForbiddenError)
    async def forbidden(request: Request, exc: ForbiddenError) -> Response:
        return _page_or_json(request, 403, "forbidden", "Not allowed", str(exc))

    @app.exception_handler(PatientNotFoundError)
    async def not_found(request: Request, exc: PatientNotFoundError) -> Response:
        return _page_or_json(
            request, 404, "patient_not_found", "No such patient", "No such patient."
        )

    @app.exception_handler(StaleRecordError)
    async def stale(request: Request, exc: StaleRecordError) -> Response:
        return _page_or_json(
            request,
            409,
            "stale_record",
            "Saved by someone else",
            "Someone else saved this record after you opened it. Nothing of yours was saved: "
            "reload the page to see their changes, then enter yours again.",
        )

    @app.exception_handler(InputError)
    async def input_error(request: Request, exc: InputError) -> Response:
        problems = [{"loc": p.loc, "code": p.code, "message": p.message} for p in exc.problems]
        if wants_json(request):
            return JSONResponse(
                error_body("invalid_input", "the input is invalid; nothing was stored", problems),
                status_code=422,
            )
        return _page_or_json(
            request, 422, "invalid_input", "Invalid input", "; ".join(str(p) for p in exc.problems)
        )

    @app.exception_handler(RequestValidationError)
    async def request_invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = [
            {
                "loc": ".".join(str(x) for x in e["loc"] if x not in ("body", "query", "path")),
                "code": e["type"],
                "message": e["msg"],
            }
            for e in exc.errors()
        ]
        if wants_json(request):
            return JSONResponse(
                error_body("invalid_input", "the request is invalid; nothing was stored", problems),
                status_code=422,
            )
        text = "; ".join(f"{p['loc']}: {p['message']}" for p in problems)
        return _page_or_json(request, 422, "invalid_input", "Invalid request", text)

    @app.exception_handler(SQLAlchemyError)
    async def database_error(request: Request, exc: SQLAlchemyError) -> Response:
        # the error's text can hold bound values (patient data): log its class only
        log.error("database error %s on %s", type(exc).__name__, _route_template(request))
        return _page_or_json(
            request,
            503,
            "database_unavailable",
            "The database could not complete the request",
            "The database could not complete this request, so nothing was changed. "
            "Try again in a moment; if it persists, tell your administrator.",
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        titles = {404: "Not found", 405: "Not allowed", 400: "Bad request"}
        return _page_or_json(
            request,
            exc.status_code,
            f"http_{exc.status_code}",
            titles.get(exc.status_code, "Error"),
            str(exc.detail),
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.error("unexpected %s on %s", type(exc).__name__, _route_template(request))
        return _page_or_json(
            request,
            500,
            "internal_error",
            "Something went wrong",
            "The request could not be completed and nothing was changed. "
            "The error has been logged without any patient data.",
        )


class _NoResultRows(logging.Filter):
    """Drops SQLAlchemy's DEBUG records: they print result rows (patient data) verbatim."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.INFO


def keep_data_out_of_sql_logs(engine: Engine) -> None:
    """SQL logging (an operator may turn it on) shows statements, never values or rows.

    Bound parameters are hidden in log lines and in exception messages (``hide_parameters``);
    result rows, logged at DEBUG, are dropped by a filter on the engine's logger.
    """
    engine.hide_parameters = True
    logger = getattr(engine.logger, "logger", engine.logger)
    if isinstance(logger, logging.Logger) and not any(
        isinstance(f, _NoResultRows) for f in logger.filters
    ):
        logger.addFilter(_NoResultRows())


def create_app(settings: WebSettings | None = None, knowledge: Knowledge | None = None) -> FastAPI:
    settings = settings or WebSettings.from_env()
    app = FastAPI(
        title="TRD Navigator",
        version=__version__,
        description="Clinic records, assessments and plans for treatment-resistant depression. "
        + DISCLAIMER,
        docs_url=None,  # /api/docs is our own page (routes/api.py): Swagger UI needs a CDN
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    engine = make_engine(settings.database_url)
    keep_data_out_of_sql_logs(engine)
    app.state.settings = settings
    app.state.knowledge = knowledge or default_knowledge()
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    app.state.templates = templates(reload=settings.dev_mode)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    from trdnav.web.body_limits import BodyLimits
    from trdnav.web.routes import ROUTERS

    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(BodyLimits)  # 413 before a body is read whole (inside the headers one)
    _install_middleware(app)
    _install_error_handlers(app)
    return app
