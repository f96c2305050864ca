"""schemathesis over the OpenAPI document: every API operation, fuzzed in process (ASGI).

For each operation of ``/api/openapi.json``, cases generated from its schema (valid and invalid:
schemathesis' positive and negative modes) are sent with a clinician's bearer token (one in five
as a reader or with no token); half of them have their path filled with real ids (a stored
patient, one of its alert keys) and the patient's current version in ``If-Match``, so that writes
reach the record. Each answer must be:

- never a 500 (nor an exception out of the app);
- when an error (4xx/5xx), JSON in the documented shape ``{"error": {"code", "message",
  "problems": [{"loc", "code", "message"}]}}``;
- when refused (4xx), with every database table unchanged but the audit log (a refused read is
  audited) — compared row by row before and after.

``TRDNAV_API_FUZZ_EXAMPLES`` sets the cases per operation (default 12). The suite runs it on SQLite
only (about 50 s; PostgreSQL doubles that); ``TRDNAV_API_FUZZ_POSTGRES=1`` adds PostgreSQL.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from tests.web.test_roles import build_world, make_app
from tests.web.test_security import database_rows
from trdnav.knowledge.load import Knowledge

EXAMPLES = int(os.environ.get("TRDNAV_API_FUZZ_EXAMPLES", "12"))
ERROR_KEYS = {"code", "message", "problems"}
PROBLEM_KEYS = {"loc", "code", "message"}
UNCHANGED_BUT = frozenset({"audit_events"})
# who sends the cases: mostly a clinician (who may write), sometimes a reader or nobody
WHO = ("clinician", "clinician", "clinician", "read_only", "anonymous")


@dataclass
class Tally:
    cases: int = 0
    by_status: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


def error_shape_problems(body: Any) -> list[str]:
    """What is wrong with an error body, against the documented shape (empty: nothing)."""
    if not isinstance(body, dict) or set(body) != {"error"}:
        return [f"not {{'error': ...}}: {str(body)[:200]}"]
    error = body["error"]
    if not isinstance(error, dict) or set(error) != ERROR_KEYS:
        return [f"error keys are not {sorted(ERROR_KEYS)}: {str(error)[:200]}"]
    wrong = []
    if not (isinstance(error["code"], str) and error["code"]):
        wrong.append("error.code is not a non-empty string")
    if not (isinstance(error["message"], str) and error["message"]):
        wrong.append("error.message is not a non-empty string")
    if not isinstance(error["problems"], list):
        wrong.append("error.problems is not a list")
    else:
        for p in error["problems"]:
            if not isinstance(p, dict) or set(p) != PROBLEM_KEYS:
                wrong.append(f"a problem is not {sorted(PROBLEM_KEYS)}: {str(p)[:200]}")
            elif not all(isinstance(p[k], str) for k in PROBLEM_KEYS):
                wrong.append(f"a problem's loc/code/message is not text: {str(p)[:200]}")
    return wrong


def current_version(app: FastAPI, headers: dict[str, str], patient_id: str) -> str | None:
    from fastapi.testclient import TestClient

    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get(f"/api/patients/{patient_id}", headers=headers)
    return r.headers.get("etag")


def fuzz_operation(
    app: FastAPI,
    op: Any,
    headers: dict[str, dict[str, str]],
    samples: dict[str, str],
    tally: Tally,
) -> None:
    engine = app.state.engine
    strategy = st.one_of(
        op.as_strategy(generation_mode=GenerationMode.POSITIVE),
        op.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # a failure is reported as found, unshrunk
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy, real_ids=st.booleans(), who=st.sampled_from(WHO))
    def run(case: Any, real_ids: bool, who: str) -> None:
        sent = dict(headers[who])
        if real_ids:
            for name in case.path_parameters or {}:
                if name in samples:
                    case.path_parameters[name] = unquote(samples[name])
            version = current_version(app, headers["clinician"], samples["patient_id"])
            if version:
                sent["If-Match"] = version
        before = database_rows(engine, without=UNCHANGED_BUT)
        where = f"{case.method} {case.formatted_path}"
        tally.cases += 1
        try:
            response = case.call(headers=sent)
        except Exception as exc:  # noqa: BLE001 - any exception out of the app is a finding
            tally.failures.append(f"{where}: {type(exc).__name__}: {exc}"[:400])
            return
        status = response.status_code
        tally.by_status[status] = tally.by_status.get(status, 0) + 1
        if status >= 500:
            tally.failures.append(f"{where}: {status} {response.text[:300]}")
        if status >= 400:
            try:
                body = response.json()
            except ValueError:
                body = response.text
            for wrong in error_shape_problems(body):
                tally.failures.append(f"{where}: {status}: {wrong}")
        if 400 <= status < 500 and database_rows(engine, without=UNCHANGED_BUT) != before:
            tally.failures.append(f"{where}: refused with {status}, but the database changed")

    run()


@pytest.fixture
def api(db_url: str, kb: Knowledge) -> Any:
    app = make_app(db_url, kb)
    try:
        yield app, build_world(app, db_url, kb)
    finally:
        app.state.engine.dispose()


@pytest.mark.parametrize(
    "db_url",
    ["sqlite", *(["postgresql"] if os.environ.get("TRDNAV_API_FUZZ_POSTGRES") else [])],
    indirect=True,
)
def test_every_api_operation_answers_without_a_500_in_the_error_shape_and_refusals_change_nothing(
    api: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    app, world = api
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)
    headers = {
        role: {"Authorization": f"Bearer {world.api_tokens[role]}"}
        for role in set(WHO) - {"anonymous"}
    }
    headers["anonymous"] = {}
    tally = Tally()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30
    for op in operations:
        fuzz_operation(app, op, headers, world.samples, tally)
    with capsys.disabled():
        print(  # noqa: T201 - the figure quoted in docs/reliability.md
            f"\nschemathesis: {len(operations)} operations, {tally.cases} cases, "
            f"statuses {dict(sorted(tally.by_status.items()))}, {len(tally.failures)} failures"
        )
    assert not tally.failures, "\n".join(tally.failures[:40])
    assert tally.cases >= len(operations) * EXAMPLES // 2


HOSTILE_BODIES = {
    "10,000 nested brackets": (b'{"a": ' + b"[" * 10_000 + b"]" * 10_000 + b"}", "nested more"),
    "a 5,000-digit number": (b'{"patient": {"id": ' + b"9" * 5_000 + b"}}", "4,300 digits"),
    "a key given twice": (b'{"type": "medication", "type": "ect"}', "given twice"),
    "a dose of Infinity mg": (
        b'{"type": "medication", "drug": "sertraline", "start": "2024-01-01", '
        b'"doses": [{"from": "2024-01-01", "mg_per_day": Infinity}]}',
        "finite number",
    ),
}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("name", sorted(HOSTILE_BODIES))
def test_a_hostile_json_body_is_a_422_in_the_error_shape_and_stores_nothing(
    api: Any, name: str
) -> None:
    from fastapi.testclient import TestClient

    app, world = api
    body, words = HOSTILE_BODIES[name]
    headers = {
        "Authorization": f"Bearer {world.api_tokens['clinician']}",
        "Content-Type": "application/json",
        "If-Match": '"1"',
    }
    before = database_rows(app.state.engine, without=UNCHANGED_BUT)
    with TestClient(app, raise_server_exceptions=False) as client:
        for path in ("/api/patients", f"/api/patients/{world.samples['patient_id']}/treatments"):
            response = client.post(path, content=body, headers=headers)
            assert response.status_code == 422, (path, response.text[:300])
            assert not error_shape_problems(response.json())
            if path.endswith("/treatments") or "Infinity" not in name:  # (not a history)
                assert words in response.text
    assert database_rows(app.state.engine, without=UNCHANGED_BUT) == before
