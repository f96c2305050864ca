"""HTTP mechanics of the JSON API: its error answers, JSON bodies, versions and security schemes.

``ApiRoute`` answers :class:`ApiProblem` and a stale version (412) in the API's one error shape;
``json_body`` decodes a body that the history format validates later; ``expected_version`` reads
``If-Match``; ``body_doc`` documents a body as a history-format model of the OpenAPI components.
The security schemes only *document* authentication, which stays in :mod:`trdnav.web.deps`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Header, Path, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import APIKeyCookie, HTTPBearer
from pydantic import TypeAdapter

from trdnav.bounded_decode import DecodeRefused, load_json
from trdnav.errors import InputError, Problem
from trdnav.storage.repository import StaleRecordError
from trdnav.web.app import error_body
from trdnav.web.security import CSRF_HEADER, SESSION_COOKIE


class ApiProblem(Exception):
    """An error answered in the API's error shape (status, stable code, message, problems)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        problems: tuple[Problem, ...] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status, self.code, self.message = status, code, message
        self.problems, self.headers = problems, headers
        super().__init__(message)


def _stale(exc: StaleRecordError) -> JSONResponse:
    return JSONResponse(
        error_body(
            "stale_record",
            f"the record is at version {exc.stored}, not {exc.expected}: someone saved it after "
            "you read it, and nothing of yours was stored. GET it again, re-apply your change "
            "and send the new version in If-Match.",
        ),
        status_code=412,
        headers={"ETag": etag(exc.stored)},
    )


class ApiRoute(APIRoute):
    """Answers :class:`ApiProblem` and stale versions (412) in the API's error shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiProblem as p:
                problems = [
                    {"loc": x.loc, "code": x.code, "message": x.message} for x in p.problems
                ]
                body = error_body(p.code, p.message, problems)
                return JSONResponse(body, status_code=p.status, headers=p.headers)
            except StaleRecordError as exc:
                return _stale(exc)

        return handle


bearer_token = HTTPBearer(
    auto_error=False,
    scheme_name="bearerToken",
    description="`Authorization: Bearer trd_…` from `trdnav user token USERNAME` (no CSRF).",
)
session_cookie = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    scheme_name="sessionCookie",
    description=f"The browser session; writes must also send the `{CSRF_HEADER}` header.",
)
REF = "#/components/schemas/{model}"


def schema_of(kind: Any) -> dict[str, Any]:
    """The JSON Schema of a history-format model, pointing at the document's components."""
    schema = TypeAdapter(kind).json_schema(ref_template=REF, by_alias=True)
    schema.pop("$defs", None)
    if "properties" in schema:  # a model: its component (registered by the response models)
        return {"$ref": REF.format(model=schema["title"])}
    return schema


def body_doc(kind: Any, what: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "description": f"{what}, in the history format (docs/history-format.md)",
            "content": {"application/json": {"schema": schema_of(kind)}},
        }
    }


def etag(version: int) -> str:
    return f'"{version}"'


def expected_version(if_match: str | None, required: bool) -> int | None:
    """The version named by ``If-Match`` (``"3"``, ``W/"3"`` or ``3``); ``*`` means any."""
    if if_match is None or not if_match.strip():
        if required:
            raise ApiProblem(
                428,
                "if_match_required",
                'send If-Match: "<version>" with the version you read (the ETag of '
                "GET /api/patients/{id}), so a change made meanwhile is not overwritten",
            )
        return None
    value = if_match.strip()
    if value == "*":
        return None
    value = value.removeprefix("W/").strip('"')
    if not value.isdigit():
        problem = Problem("If-Match", "invalid_etag", 'expected "<version>" as sent in the ETag')
        raise ApiProblem(422, "invalid_input", "the If-Match header is invalid", (problem,))
    return int(value)


async def json_body(request: Request) -> Any:
    """The request's JSON body, decoded (validation is the history format's, later)."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media and not media.endswith("json"):
        raise ApiProblem(415, "unsupported_media_type", "send the body as application/json")
    raw = await request.body()
    if not raw.strip():
        problem = Problem("", "body_missing", "send a JSON object in the history format")
        raise InputError([problem])
    try:
        return load_json(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InputError([Problem("", "json_invalid", "the body is not UTF-8 text")]) from None
    except DecodeRefused as exc:  # 10,000 nested brackets, a 5,000-digit number, a key twice
        raise InputError([Problem("", "input_refused", str(exc))]) from None
    except json.JSONDecodeError as exc:
        message = f"malformed JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        raise InputError([Problem("", "json_invalid", message)]) from None


JsonBody = Annotated[Any, Depends(json_body)]
IfMatch = Annotated[
    str | None,
    Header(alias="If-Match", description='the version read, as its ETag: "3"'),
]
PatientId = Annotated[str, Path(max_length=120, description="the clinic's patient identifier")]
