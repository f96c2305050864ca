"""The OpenAPI document describes every API route, its security, its bodies and its answers.

A route added under ``/api`` without a summary, an error model or a typed response fails here;
real answers are validated against the schemas the document gives for them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from trdnav.core.history import (
    TREATMENT_TYPES,
    CurrentMedication,
    History,
    Lab,
    Measurement,
    PgxResult,
)
from trdnav.knowledge.load import Knowledge

from .conftest import store_examples
from .test_api import BUPROPION_FAILED, api_routes, bearer, history_json, token_for

REF = "#/components/schemas/{model}"
SECURITY = [{"bearerToken": []}, {"sessionCookie": []}]
# API routes that are not operations of the document, and why
UNDOCUMENTED = {("GET", "/api/docs"): "the HTML reference page built from this document"}


@pytest.fixture
def doc(client: TestClient) -> dict[str, Any]:
    response = client.get("/api/openapi.json")  # public: it holds no clinic data
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    document: dict[str, Any] = response.json()
    return document


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, op in item.items():
            yield method.upper(), path, op


def schema_at(doc: dict[str, Any], op: dict[str, Any], status: str) -> dict[str, Any]:
    schema: dict[str, Any] = op["responses"][status]["content"]["application/json"]["schema"]
    return schema


def validator(doc: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    """A validator of ``schema`` whose references resolve in the document's components."""
    return Draft202012Validator({**schema, "components": doc["components"]})


def without_null_defaults(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: without_null_defaults(v)
            for k, v in value.items()
            if not (k == "default" and v is None)
        }
    if isinstance(value, list):
        return [without_null_defaults(v) for v in value]
    return value


def refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str):
                yield item
            else:
                yield from refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from refs(item)


def test_the_document_lists_every_api_route_and_nothing_else(
    app: FastAPI, doc: dict[str, Any]
) -> None:
    assert doc["openapi"].startswith("3.1")
    routes = set(api_routes(app)) - UNDOCUMENTED.keys()
    documented = {(method, path) for method, path, _ in operations(doc)}
    assert sorted(routes - documented) == [], "API routes missing from the OpenAPI document"
    assert sorted(documented - routes) == [], "documented operations without a route"
    assert all(path.startswith("/api/") for _, path in documented)
    assert len(documented) >= 16


def test_every_api_route_is_in_the_endpoint_table_of_docs_api_md(app: FastAPI) -> None:
    text = (Path(__file__).parents[2] / "docs" / "api.md").read_text(encoding="utf-8")
    rows = re.findall(
        r"^\| `(GET|POST|PUT|DELETE) (/api/[^`?]*)[^`]*` \| (?:reader|writer) \|", text, re.M
    )
    table = set(rows)
    routes = set(api_routes(app)) - UNDOCUMENTED.keys()
    assert sorted(routes - table) == [], "routes missing from docs/api.md"
    assert sorted(table - routes) == [], "docs/api.md lists routes that do not exist"


def test_every_operation_has_a_summary_the_security_schemes_and_typed_answers(
    doc: dict[str, Any],
) -> None:
    for method, path, op in operations(doc):
        where = f"{method} {path}"
        assert op.get("summary"), where
        assert op.get("description"), where
        assert op.get("tags"), where
        assert op["security"] == SECURITY, where
        answers = op["responses"]
        ok = [s for s in answers if s.startswith("2")]
        assert len(ok) == 1, where
        assert "$ref" in schema_at(doc, op, ok[0]), f"{where}: untyped success response"
        assert answers[ok[0]]["description"] != "Successful Response", f"{where}: say what"
        errors = {"401", "403"}
        if "{patient_id}" in path:
            errors |= {"404", "422"}
        if method != "GET":
            errors |= {"422"}
        for status in errors:
            assert status in answers, f"{where}: {status} not documented"
        for status in answers:
            if not status.startswith("2"):
                assert schema_at(doc, op, status) == {"$ref": REF.format(model="ErrorOut")}, (
                    f"{where}: {status} without the error model"
                )
        assert "HTTPValidationError" not in str(answers), where


def test_if_match_is_documented_on_every_change_and_required_on_replacements(
    doc: dict[str, Any],
) -> None:
    appends = {
        f"/api/patients/{{patient_id}}/{item}"
        for item in ("treatments", "measurements", "labs", "pgx", "current-medications")
    }
    for method, path, op in operations(doc):
        where = f"{method} {path}"
        headers = {p["name"]: p for p in op.get("parameters", []) if p["in"] == "header"}
        replaces = method in ("PUT", "DELETE")
        if replaces or (method == "POST" and path in appends):
            assert "If-Match" in headers, where
        else:
            assert "If-Match" not in headers, where
        assert ("428" in op["responses"]) is replaces, where


def test_the_security_schemes_are_the_bearer_token_and_the_session_cookie(
    doc: dict[str, Any],
) -> None:
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearerToken"]["type"] == "http"
    assert schemes["bearerToken"]["scheme"] == "bearer"
    assert schemes["sessionCookie"] == {
        **schemes["sessionCookie"],
        "type": "apiKey",
        "in": "cookie",
        "name": "trdnav_session",
    }
    assert "X-CSRF-Token" in schemes["sessionCookie"]["description"]


def test_every_reference_resolves_and_every_schema_is_valid_json_schema(
    doc: dict[str, Any],
) -> None:
    components = doc["components"]["schemas"]
    for ref in set(refs(doc)):
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.rsplit("/", 1)[-1] in components, f"dangling {ref}"
    for name, schema in components.items():
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as exc:
            pytest.fail(f"{name}: {exc.message}")


def test_request_bodies_are_the_history_formats_own_models(doc: dict[str, Any]) -> None:
    def body(method: str, path: str) -> dict[str, Any]:
        op = doc["paths"][path][method]
        assert op["requestBody"]["required"] is True
        schema: dict[str, Any] = op["requestBody"]["content"]["application/json"]["schema"]
        return schema

    history = {"$ref": REF.format(model="History")}
    assert body("post", "/api/patients") == history
    assert body("put", "/api/patients/{patient_id}") == history
    for path, model in (
        ("measurements", Measurement),
        ("labs", Lab),
        ("pgx", PgxResult),
        ("current-medications", CurrentMedication),
    ):
        assert body("post", f"/api/patients/{{patient_id}}/{path}") == {
            "$ref": REF.format(model=model.__name__)
        }
    for path, method in (("treatments", "post"), ("treatments/{index}", "put")):
        treatment = body(method, f"/api/patients/{{patient_id}}/{path}")
        assert treatment["discriminator"]["propertyName"] == "type"
        assert set(treatment["discriminator"]["mapping"]) == set(TREATMENT_TYPES)
    # the components are the history format's JSON Schema itself, not a parallel model
    # (FastAPI leaves out "default": null; nothing else differs)
    own = History.model_json_schema(ref_template=REF, by_alias=True)
    components = doc["components"]["schemas"]
    for name, schema in {**own.pop("$defs"), "History": own}.items():
        assert without_null_defaults(components[name]) == without_null_defaults(schema), name


def test_real_answers_match_the_schemas_the_document_gives_them(
    client: TestClient, doc: dict[str, Any], db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "10")
    auth = bearer(token_for(db_url, "clinician"))
    alerts = client.get("/api/patients/EX10/alerts", headers=auth)
    key = quote(alerts.json()["alerts"][0]["key"], safe="")
    one = "/api/patients/{patient_id}"
    calls: list[tuple[str, str, str, str, Any, dict[str, str]]] = [
        ("200", "get", "/api/patients", "", None, auth),
        ("200", "get", one, "EX10", None, auth),
        ("404", "get", one, "NOPE", None, auth),
        ("200", "get", one + "/assessment", "EX10", None, auth),
        ("200", "get", one + "/alerts", "EX10", None, auth),
        ("200", "post", one + "/alerts/{alert_key}/acknowledge", "EX10", None, auth),
        ("201", "post", one + "/treatments", "EX10", BUPROPION_FAILED, auth),
        ("428", "put", one + "/treatments/{index}", "EX10", BUPROPION_FAILED, auth),
        ("422", "post", one + "/labs", "EX10", {"test": "TSH"}, auth),
        ("409", "post", "/api/patients", "", history_json("10"), auth),
        ("200", "get", "/api/instruments", "", None, auth),
        ("401", "get", "/api/drugs", "", None, {}),
    ]
    for status, method, template, patient, body, headers in calls:
        url = template.format(patient_id=patient, alert_key=key, index=0)
        response = client.request(method, url, json=body, headers=headers)
        assert str(response.status_code) == status, (method, url, response.text)
        op = doc["paths"][template][method]
        assert status in op["responses"], f"{method} {template}: {status} is not documented"
        schema = schema_at(doc, op, status)
        errors = sorted(validator(doc, schema).iter_errors(response.json()), key=str)
        assert not errors, f"{method} {url} {status}: {errors[0].message}"


def test_the_reference_page_needs_no_cdn_and_no_inline_script(
    client: TestClient, doc: dict[str, Any], db_url: str
) -> None:
    assert client.get("/api/docs").status_code == 401
    page = client.get("/api/docs", headers=bearer(token_for(db_url, "reader")))
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    html = page.text
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts and all(re.search(r'src="/static/', s) for s in scripts), scripts
    assert not re.search(r"<script\b[^>]*>\s*[^<\s]", html), "inline script"
    assert " style=" not in html and "<style" not in html
    assert not re.search(r'(src|href)="(https?:)?//', html), "an asset from another origin"
    assert 'href="/api/openapi.json"' in html
    for method, path, op in operations(doc):
        assert f"{method} {path}" in html.replace("&#39;", "'"), (method, path)
        assert op["summary"].replace("'", "&#39;") in html
