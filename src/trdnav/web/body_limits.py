"""Request bodies above a size limit are refused with 413 before they are read whole.

One ASGI middleware for every route: API JSON bodies, form posts (the patient's self-report
form included, which is public) and uploads. A body that declares its size (``Content-Length``)
above the limit is refused at once, without reading a byte of it; a body that does not (chunked
transfer) is counted as the route reads it, and the read that passes the limit raises
:class:`BodyTooLarge` — an HTTP 413 answered by the app's own handler, in the API's error shape
for ``/api`` and as the error page for a form. The connection is then closed by the server, so
the rest of the body is never read.

Limits by path prefix (the first that matches): the FHIR import takes up to its
:data:`~trdnav.interop.fhir.bundle.MAX_BYTES` plus a margin for the form's multipart framing (the
route refuses above ``MAX_BYTES`` itself, naming the import's limit); the CDS Hooks service has
its own configurable limit (``max_body_bytes``) and is left to it; everything else takes
:data:`DEFAULT_LIMIT`, far above the largest history a clinic sends (~200 kB for 1,000 entries).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trdnav.interop.fhir.bundle import MAX_BYTES

MIB = 1_048_576
DEFAULT_LIMIT = 2 * MIB
# (path prefix, limit in bytes or None: the route enforces its own)
LIMITS: tuple[tuple[str, int | None], ...] = (
    ("/api/fhir/import", MAX_BYTES + MIB),
    ("/fhir/import", MAX_BYTES + MIB),
    ("/cds-services", None),
)


def limit_for(path: str) -> int | None:
    for prefix, limit in LIMITS:
        if path == prefix or path.startswith(prefix + "/"):
            return limit
    return DEFAULT_LIMIT


def _shown(n: int) -> str:
    return f"{n / MIB:.0f} MiB" if n >= MIB else f"{n:,} bytes"


class BodyTooLarge(HTTPException):
    """413: the body is above the limit of its address (answered by the app's HTTP handler)."""

    def __init__(self, limit: int, declared: int | None = None) -> None:
        size = f" ({declared / MIB:.1f} MiB)" if declared is not None else ""
        super().__init__(
            413,
            f"the request body{size} is above the limit of {_shown(limit)} for this address: "
            "send less",
        )


class BodyLimits:
    """ASGI middleware: refuse (413) a body above :func:`limit_for` its path."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        limit = limit_for(scope["path"]) if scope["type"] == "http" else None
        if limit is None:
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(scope, receive, send, BodyTooLarge(limit, declared))
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


Handler = Callable[[Request, Exception], Awaitable[Any]]


async def _refuse(scope: Scope, receive: Receive, send: Send, exc: BodyTooLarge) -> None:
    """Answer with the app's own handler of HTTP errors (JSON for the API, else the error page)."""
    app: Any = scope.get("app")
    handlers: MutableMapping[Any, Handler] = getattr(app, "exception_handlers", {})
    handler = handlers.get(HTTPException) or handlers.get(413)
    if handler is None:  # no app around (a bare ASGI use): plain JSON in the API's shape
        from starlette.responses import JSONResponse

        body = {"error": {"code": "http_413", "message": exc.detail, "problems": []}}
        response: Any = JSONResponse(body, status_code=413)
    else:
        response = await handler(Request(scope, receive), exc)
    response.headers["Connection"] = "close"  # the unread body is not waited for
    await response(scope, receive, send)
