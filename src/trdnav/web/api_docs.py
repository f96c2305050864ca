"""The API reference page (``/api/docs``), read from the app's own OpenAPI document.

Swagger UI would need a CDN (or vendored assets) and an inline script, which the CSP
(``script-src 'self'``) forbids; this page is plain server-rendered HTML instead, and links to
``/api/openapi.json`` for tools.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

METHODS = ("get", "post", "put", "delete", "patch")
_CODE = re.compile(r"`([^`]+)`")


def inline_code(text: str) -> Markup:
    """Escaped text with `backticked` spans as ``<code>``."""
    return Markup(_CODE.sub(lambda m: f"<code>{m.group(1)}</code>", str(escape(text))))  # noqa: S704 - escaped first


def schema_name(schema: dict[str, Any] | None) -> str:
    """A short name of a schema: its component, a list of it, or a union of them."""
    if not schema:
        return ""
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if "oneOf" in schema or "anyOf" in schema:
        return " | ".join(schema_name(s) for s in schema.get("oneOf") or schema["anyOf"])
    if schema.get("type") == "array":
        return f"list of {schema_name(schema.get('items'))}"
    return str(schema.get("type", ""))


@dataclass(frozen=True)
class Parameter:
    name: str
    where: str
    required: bool
    description: str


@dataclass(frozen=True)
class Answer:
    status: str
    description: str
    model: str


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    description: Markup
    parameters: tuple[Parameter, ...]
    body: str
    answers: tuple[Answer, ...]

    @property
    def anchor(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", f"{self.method} {self.path}".lower()).strip("-")


@dataclass(frozen=True)
class Group:
    tag: str
    operations: tuple[Operation, ...]


@dataclass(frozen=True)
class Reference:
    title: str
    version: str
    description: str
    schemes: tuple[tuple[str, Markup], ...]
    groups: tuple[Group, ...]


def _answer(status: str, value: dict[str, Any]) -> Answer:
    schema = value.get("content", {}).get("application/json", {}).get("schema")
    return Answer(status, str(value.get("description", "")), schema_name(schema))


def _operation(method: str, path: str, op: dict[str, Any]) -> Operation:
    params = tuple(
        Parameter(
            str(p["name"]),
            str(p["in"]),
            bool(p.get("required")),
            str(p.get("description") or schema_name(p.get("schema"))),
        )
        for p in op.get("parameters", [])
    )
    body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
    return Operation(
        method=method.upper(),
        path=path,
        summary=str(op.get("summary", "")),
        description=inline_code(str(op.get("description", ""))),
        parameters=params,
        body=schema_name(body.get("schema")),
        answers=tuple(_answer(s, v) for s, v in sorted(op.get("responses", {}).items())),
    )


def api_reference(openapi: dict[str, Any]) -> Reference:
    """Operations grouped by tag, in the order the document lists them."""
    groups: dict[str, list[Operation]] = {}
    for path, item in openapi.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                op = item[method]
                tag = (op.get("tags") or ["other"])[0]
                groups.setdefault(tag, []).append(_operation(method, path, op))
    schemes = openapi.get("components", {}).get("securitySchemes", {})
    info = openapi.get("info", {})
    return Reference(
        title=str(info.get("title", "")),
        version=str(info.get("version", "")),
        description=str(info.get("description", "")),
        schemes=tuple(
            (name, inline_code(str(s.get("description", "")))) for name, s in schemes.items()
        ),
        groups=tuple(Group(tag, tuple(ops)) for tag, ops in groups.items()),
    )
