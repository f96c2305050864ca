"""Who may do what: one table, ``POLICY``, of every route of the app and the roles it admits.

A route added without a line here fails ``test_the_policy_table_covers_every_route_of_the_app``;
each line is then checked twice: against the role alias the route declares (``Reader``,
``Writer``, ``Admin`` or none), and by requests — every route, as every role and anonymously,
with its path filled with real ids and a valid CSRF token — so a role not admitted gets 403, an
admitted one never 401/403, and an anonymous visitor is sent to /signin (pages) or gets 401
(API). ``docs/security.md`` prints the same table.
"""

from __future__ import annotations

import functools
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from sqlalchemy import select

from trdnav.knowledge.load import Knowledge
from trdnav.storage import models as m
from trdnav.storage.engine import make_sessionmaker
from trdnav.web.app import create_app
from trdnav.web.security import CSRF_HEADER, SESSION_COOKIE, hash_password, token_digest
from trdnav.web.sessions import start_session

from .conftest import PASSWORD, USERS, make_settings, signin_token, store_examples

ADMIN = frozenset({"admin"})
WRITE = frozenset({"admin", "clinician"})
READ = frozenset({"admin", "clinician", "read_only"})
PUBLIC = frozenset({"public"})
EHR = frozenset({"ehr_jwt"})  # CDS Hooks: an EHR's signed JWT, never a user's session or token
ROLES = ("admin", "clinician", "read_only")
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}

# --- a fast app: the conftest's users, hashed once per test session ---------------------------


@functools.cache
def password_hash() -> str:
    return hash_password(PASSWORD)


def make_app(db_url: str, kb: Knowledge, **settings: object) -> FastAPI:
    """The conftest's app (same users, same password), without hashing it for every test."""
    app = create_app(make_settings(db_url, **settings), kb)
    with make_sessionmaker(app.state.engine)() as db:
        for name, role in USERS.items():
            db.add(m.User(username=name, role=role, password_hash=password_hash(), active=True))
        db.commit()
    return app


@pytest.fixture
def app(db_url: str, kb: Knowledge) -> Iterator[FastAPI]:
    application = make_app(db_url, kb)
    yield application
    application.state.engine.dispose()


def new_session(app: FastAPI, username: str, *, started: datetime | None = None) -> tuple[str, str]:
    """A fresh session of ``username`` in the database (no sign-in): (cookie token, CSRF token).

    ``started`` backdates it (its ``last_seen`` too), for the idle and absolute limits.
    """
    with make_sessionmaker(app.state.engine)() as db:
        user = db.scalar(select(m.User).where(m.User.username == username))
        assert user is not None
        token, data = start_session(db, user, now=started)
        db.commit()
    return token, data.csrf


def session_for(app: FastAPI, client: TestClient, username: str) -> str:
    """Give ``client`` a fresh session of ``username`` (no sign-in); return its CSRF token."""
    token, csrf = new_session(app, username)
    client.cookies.set(SESSION_COOKIE, token)
    return csrf


# (method, path template) -> roles admitted. "public": anyone, signed in or not.
POLICY: dict[tuple[str, str], frozenset[str]] = {
    # sign-in (public by nature; the form has its own double-submit CSRF token)
    ("GET", "/"): PUBLIC,
    ("GET", "/signin"): PUBLIC,
    ("POST", "/signin"): PUBLIC,
    ("POST", "/signout"): READ,
    # the second step of a sign-in with a second factor (its own pending token and CSRF token)
    ("GET", "/signin/code"): PUBLIC,
    ("POST", "/signin/code"): PUBLIC,
    # the signed-in user's own account: sessions, sign out everywhere, the second factor
    ("GET", "/account"): READ,
    ("POST", "/account/signout-everywhere"): READ,
    ("GET", "/account/totp"): READ,
    ("POST", "/account/totp"): READ,
    ("POST", "/account/totp/disable"): READ,
    ("POST", "/account/totp/recovery-codes"): READ,
    # patients
    ("GET", "/patients"): READ,
    ("GET", "/patients/{patient_id}"): READ,
    ("GET", "/patients/{patient_id}/chart.svg"): READ,
    ("GET", "/patients/{patient_id}/alerts"): READ,
    ("POST", "/patients/{patient_id}/alerts/acknowledge"): WRITE,
    # record forms (each GET shows the form, its POST stores it)
    ("GET", "/patients/new"): WRITE,
    ("POST", "/patients/new"): WRITE,
    ("GET", "/patients/{patient_id}/edit"): WRITE,
    ("POST", "/patients/{patient_id}/edit"): WRITE,
    ("GET", "/patients/{patient_id}/treatments/new"): WRITE,
    ("POST", "/patients/{patient_id}/treatments/new"): WRITE,
    ("GET", "/patients/{patient_id}/treatments/{index}/edit"): WRITE,
    ("POST", "/patients/{patient_id}/treatments/{index}/edit"): WRITE,
    ("POST", "/patients/{patient_id}/treatments/{index}/delete"): WRITE,
    ("GET", "/patients/{patient_id}/measurements/new"): WRITE,
    ("POST", "/patients/{patient_id}/measurements/new"): WRITE,
    ("GET", "/patients/{patient_id}/screens/new"): WRITE,
    ("POST", "/patients/{patient_id}/screens/new"): WRITE,
    ("GET", "/patients/{patient_id}/labs/new"): WRITE,
    ("POST", "/patients/{patient_id}/labs/new"): WRITE,
    ("GET", "/patients/{patient_id}/pgx/new"): WRITE,
    ("POST", "/patients/{patient_id}/pgx/new"): WRITE,
    ("GET", "/patients/{patient_id}/medications/new"): WRITE,
    ("POST", "/patients/{patient_id}/medications/new"): WRITE,
    ("GET", "/patients/{patient_id}/identity"): WRITE,
    ("POST", "/patients/{patient_id}/identity"): WRITE,
    # documents
    ("GET", "/patients/{patient_id}/summary"): READ,
    ("GET", "/patients/{patient_id}/summary.pdf"): READ,
    # prior authorisation: the panel, the packet page and its PDF (a read: nothing is stored)
    ("GET", "/patients/{patient_id}/prior-auth"): READ,
    ("GET", "/patients/{patient_id}/prior-auth/packet"): READ,
    ("POST", "/patients/{patient_id}/prior-auth/packet.pdf"): READ,
    # self-report: the clinician's side, then the patient's (the signed link is the credential)
    ("GET", "/patients/{patient_id}/selfreport/new"): WRITE,
    ("POST", "/patients/{patient_id}/selfreport"): WRITE,
    ("GET", "/patients/{patient_id}/selfreport/{link_id}"): WRITE,
    ("POST", "/patients/{patient_id}/selfreport/{link_id}/revoke"): WRITE,
    ("GET", "/r/{token}"): PUBLIC,
    ("POST", "/r/{token}"): PUBLIC,
    # administration
    ("GET", "/admin/audit"): ADMIN,
    ("GET", "/admin/users"): ADMIN,
    ("POST", "/admin/users"): ADMIN,
    ("POST", "/admin/users/{user_id}/deactivate"): ADMIN,
    ("POST", "/admin/users/{user_id}/password"): ADMIN,
    ("POST", "/admin/users/{user_id}/totp/reset"): ADMIN,
    ("POST", "/admin/users/{user_id}/sessions/revoke"): ADMIN,
    # the JSON API (session cookie or bearer token)
    ("GET", "/api/docs"): READ,
    ("GET", "/api/drugs"): READ,
    ("GET", "/api/instruments"): READ,
    ("GET", "/api/patients"): READ,
    ("POST", "/api/patients"): WRITE,
    ("GET", "/api/patients/{patient_id}"): READ,
    ("GET", "/api/patients/{patient_id}/$everything"): READ,
    # CDS Hooks: discovery is open (no patient data); the hooks answer only an EHR's signed JWT
    ("GET", "/cds-services"): PUBLIC,
    ("POST", "/cds-services/{service_id}"): EHR,
    ("POST", "/cds-services/{service_id}/feedback"): EHR,
    # FHIR import: the API and the upload page
    ("POST", "/api/fhir/import"): WRITE,
    ("GET", "/fhir/import"): WRITE,
    ("POST", "/fhir/import"): WRITE,
    ("PUT", "/api/patients/{patient_id}"): WRITE,
    ("GET", "/api/patients/{patient_id}/assessment"): READ,
    ("GET", "/api/patients/{patient_id}/alerts"): READ,
    ("POST", "/api/patients/{patient_id}/alerts/{alert_key}/acknowledge"): WRITE,
    ("POST", "/api/patients/{patient_id}/treatments"): WRITE,
    ("PUT", "/api/patients/{patient_id}/treatments/{index}"): WRITE,
    ("DELETE", "/api/patients/{patient_id}/treatments/{index}"): WRITE,
    ("POST", "/api/patients/{patient_id}/measurements"): WRITE,
    ("POST", "/api/patients/{patient_id}/labs"): WRITE,
    ("POST", "/api/patients/{patient_id}/pgx"): WRITE,
    ("POST", "/api/patients/{patient_id}/current-medications"): WRITE,
    ("GET", "/patients/{patient_id}/courses"): READ,
    ("GET", "/patients/{patient_id}/courses/new"): WRITE,
    ("POST", "/patients/{patient_id}/courses/new"): WRITE,
    ("GET", "/courses/outcomes"): READ,
    ("GET", "/courses/{course_id}"): READ,
    ("GET", "/courses/{course_id}/eligibility"): READ,
    ("POST", "/courses/{course_id}/eligibility"): WRITE,
    ("POST", "/courses/{course_id}/overrides"): WRITE,
    ("POST", "/courses/{course_id}/start"): WRITE,
    ("POST", "/courses/{course_id}/notes"): WRITE,
    ("POST", "/courses/{course_id}/plan"): WRITE,
    ("POST", "/courses/{course_id}/sessions/{number}/reschedule"): WRITE,
    ("POST", "/courses/{course_id}/sessions/{number}/missed"): WRITE,
    ("GET", "/courses/{course_id}/sessions/new"): WRITE,
    ("POST", "/courses/{course_id}/sessions"): WRITE,
    ("GET", "/courses/{course_id}/chart.svg"): READ,
    ("GET", "/courses/{course_id}/summary.pdf"): READ,
    ("GET", "/courses/{course_id}/rems.csv"): READ,
    ("GET", "/api/patients/{patient_id}/courses"): READ,
    ("POST", "/api/patients/{patient_id}/courses"): WRITE,
    ("GET", "/api/courses/outcomes"): READ,
    ("GET", "/api/courses/{course_id}"): READ,
    ("PUT", "/api/courses/{course_id}"): WRITE,
    ("GET", "/api/courses/{course_id}/eligibility"): READ,
    ("POST", "/api/courses/{course_id}/eligibility"): WRITE,
    ("POST", "/api/courses/{course_id}/overrides"): WRITE,
    ("POST", "/api/courses/{course_id}/sessions"): WRITE,
    ("POST", "/api/courses/{course_id}/notes"): WRITE,
    ("GET", "/api/courses/{course_id}/rems"): READ,
    ("GET", "/api/patients/{patient_id}/prior-auth"): READ,
    ("GET", "/api/prior-auth/policies"): READ,
}

# Routes that are not the app's own (no APIRoute) and carry no clinic data: skipped by name.
# (/api/docs is the app's own page, an APIRoute with a policy line: FastAPI's Swagger page is off.)
NOT_APP_ROUTES = {
    "/static": "the stylesheet, the script and vendored htmx: public files, no data",
    "/api/openapi.json": "the API's description, generated from the code (open source anyway)",
}


def app_routes(app: FastAPI) -> Iterator[tuple[str, str, Any]]:
    """(method, path template, route) of every route of ``app``, included routers too."""
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        path = context.path or ""
        if not isinstance(route, APIRoute):
            assert path in NOT_APP_ROUTES, f"{path}: a route that is not an APIRoute"
            continue
        for method in sorted((route.methods or set()) - {"HEAD"}):
            yield method, path, route


def declared_roles(route: APIRoute) -> set[frozenset[str]]:
    """The role sets of the role aliases (``Reader``/``Writer``/``Admin``) a route depends on."""
    found: set[frozenset[str]] = set()
    stack = list(route.dependant.dependencies)
    while stack:
        dep = stack.pop()
        roles = getattr(dep.call, "roles", None)
        if roles is not None:
            found.add(frozenset(roles))
        stack.extend(dep.dependencies)
    return found


@pytest.fixture
def routes_only(kb: Knowledge, tmp_path: Path) -> FastAPI:
    """The app, for its routes alone: no database is opened (engines connect lazily)."""
    return create_app(make_settings(f"sqlite:///{tmp_path / 'unused.db'}"), kb)


def test_the_policy_table_covers_every_route_of_the_app(routes_only: FastAPI) -> None:
    routes = {(method, path) for method, path, _ in app_routes(routes_only)}
    missing = sorted(routes - POLICY.keys())
    gone = sorted(POLICY.keys() - routes)
    assert not missing, f"routes without a line in POLICY: {missing}"
    assert not gone, f"POLICY lines for routes that no longer exist: {gone}"


def test_every_route_declares_exactly_the_roles_of_its_policy_line(routes_only: FastAPI) -> None:
    wrong = []
    for method, path, route in app_routes(routes_only):
        expected = POLICY.get((method, path))
        declared = declared_roles(route)
        if expected in (PUBLIC, EHR):
            ok = not declared
        else:
            ok = declared == {expected}
        if not ok:
            wrong.append(f"{method} {path}: declares {declared}, policy {expected}")
    assert not wrong, "\n".join(wrong)


# --- requests ---------------------------------------------------------------------------------


@dataclass
class World:
    """Real ids to fill path templates with, and a way to be each role."""

    app: FastAPI
    client: TestClient
    user_ids: dict[str, int]
    api_tokens: dict[str, str]
    samples: dict[str, str]

    def session_cookie(self, role: str) -> tuple[str, str]:
        """A fresh session of the user with ``role``: (cookie value, its CSRF token)."""
        name = next(k for k, v in USERS.items() if v == role)
        return new_session(self.app, name)

    def fill(self, path: str) -> str:
        def value(match: re.Match[str]) -> str:
            name = match.group(1)
            assert name in self.samples, f"{path}: no sample value for {{{name}}} (add one)"
            return self.samples[name]

        return re.sub(r"\{(\w+)(?::\w+)?\}", value, path)

    def request(
        self,
        method: str,
        path: str,
        role: str | None,
        *,
        bearer: bool = False,
        csrf: str | None = "valid",
        data: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """``method`` on ``path`` (a template) as ``role`` (None: anonymous).

        ``csrf="valid"`` sends the session's own token in the header, ``None`` none, anything
        else that value.
        """
        self.client.cookies.clear()
        if (method, path) == ("POST", "/signin"):
            # its own double-submit token (cookie and field), and real credentials
            data = {
                "username": next(k for k, v in USERS.items() if v == (role or "clinician")),
                "password": PASSWORD,
                "csrf_token": signin_token(self.client),
                **(data or {}),
            }
        sent = dict(headers or {})
        if role is not None and bearer:
            sent["Authorization"] = f"Bearer {self.api_tokens[role]}"
        elif role is not None:
            cookie, token = self.session_cookie(role)
            self.client.cookies.set(SESSION_COOKIE, cookie)
            if method in UNSAFE and csrf is not None:
                sent[CSRF_HEADER] = token if csrf == "valid" else csrf
        return self.client.request(method, self.fill(path), data=data, headers=sent)


def build_world(app: FastAPI, db_url: str, kb: Knowledge) -> World:
    """EX10 stored, one spare user to deactivate, one API token per role, one self-report link."""
    (patient_id,) = store_examples(db_url, kb, "10")
    from trdnav.web import selfreport_links

    now = datetime.now(UTC)
    with make_sessionmaker(app.state.engine)() as db:
        users = {u.role: u.id for u in db.scalars(select(m.User)) if u.username in USERS}
        spare = m.User(username="spare", role="clinician", password_hash="!", active=True)
        db.add(spare)
        tokens = {}
        for role, uid in users.items():
            tokens[role] = "trd_" + secrets.token_urlsafe(24)
            db.add(
                m.ApiToken(
                    user_id=uid,
                    token_sha256=token_digest(tokens[role]),
                    label="test",
                    created_at=now,
                    revoked=False,
                )
            )
        row_id = db.scalar(select(m.Patient.id).where(m.Patient.external_id == patient_id))
        summary = db.get(m.PatientSummary, row_id)
        assert summary is not None and summary.alert_keys
        link_id = selfreport_links.new_link_id()
        db.add(
            m.SelfReportLink(
                id=link_id,
                patient_id=row_id,
                instrument="phq9",
                created_by=users["admin"],
                created_at=now,
                expires_at=now + timedelta(hours=24),
            )
        )
        db.commit()
        spare_id = spare.id
    samples = {
        "patient_id": patient_id,
        "user_id": str(spare_id),
        "link_id": link_id,
        "token": selfreport_links.sign_link(app.state.settings.secret_key, link_id),
        "alert_key": quote(summary.alert_keys[0], safe=""),
        "index": "0",
        "course_id": "C-NONE",
        "service_id": "trdnav-patient-view",
        "number": "1",
    }
    client = TestClient(
        app, base_url="http://testserver", follow_redirects=False, raise_server_exceptions=False
    )
    return World(app, client, users, tokens, samples)


@pytest.fixture
def world(app: FastAPI, db_url: str, kb: Knowledge, monkeypatch: pytest.MonkeyPatch) -> World:
    # the role checks need no real PDF: a stand-in keeps the test fast
    from trdnav.web.routes import documents

    monkeypatch.setattr(documents, "render_pdf_in_child", lambda _html: b"%PDF-1.7 stand-in")
    return build_world(app, db_url, kb)


def is_api(path: str) -> bool:
    return path.startswith("/api/")


def check_route(world: World, method: str, path: str) -> list[str]:
    """Every role, and anonymous, on one route; the problems found."""
    admitted = POLICY[(method, path)]
    problems = []

    def expect(who: str, ok: Callable[[int, str], bool], response: Any, want: str) -> None:
        location = response.headers.get("location", "")
        if not ok(response.status_code, location):
            problems.append(
                f"{method} {path} as {who}: got {response.status_code} {location}, want {want}"
            )

    if admitted == EHR:  # no user, signed in or not, gets past the EHR's JWT check
        for who in (*ROLES, None):
            response = world.request(method, path, who)
            expect(str(who), lambda s, _l: s == 401, response, "401 (EHR JWT required)")
        return problems
    for role in ROLES:
        response = world.request(method, path, role)
        if "public" in admitted or role in admitted:
            expect(
                role,
                lambda s, _l: s not in (401, 403) and s < 500,
                response,
                "admitted (not 401/403, no 5xx)",
            )
        else:
            expect(role, lambda s, _l: s == 403, response, "403")
        if is_api(path):
            response = world.request(method, path, role, bearer=True)
            if "public" in admitted or role in admitted:
                expect(
                    f"{role} (bearer)",
                    lambda s, _l: s not in (401, 403) and s < 500,
                    response,
                    "admitted",
                )
            else:
                expect(f"{role} (bearer)", lambda s, _l: s == 403, response, "403")
    response = world.request(method, path, None)
    if "public" in admitted:
        expect(
            "anonymous",
            lambda s, loc: s not in (401, 403) and s < 500 and not loc.startswith("/signin"),
            response,
            "admitted without sign-in",
        )
    elif is_api(path):
        expect("anonymous", lambda s, _l: s == 401, response, "401")
    else:
        expect(
            "anonymous",
            lambda s, loc: s == 303 and loc.startswith("/signin"),
            response,
            "303 to /signin",
        )
    return problems


def test_every_route_admits_exactly_the_roles_of_its_policy_line(
    app: FastAPI, world: World
) -> None:
    problems: list[str] = []
    # sign-out last: it is harmless (each request has a fresh session), but read the table in order
    for method, path, _route in sorted(app_routes(app), key=lambda r: r[1] == "/signout"):
        problems += check_route(world, method, path)
    assert not problems, "\n".join(problems)


def test_pages_show_only_the_actions_and_links_a_role_may_use(world: World) -> None:
    page = world.request("GET", "/patients/{patient_id}", "read_only")
    assert page.status_code == 200
    assert "/alerts/acknowledge" not in page.text
    page = world.request("GET", "/patients/{patient_id}", "clinician")
    assert "/alerts/acknowledge" in page.text
    for role, shown in (("admin", True), ("clinician", False), ("read_only", False)):
        page = world.request("GET", "/patients", role)
        assert ('href="/admin/audit"' in page.text) is shown, role
        assert ('href="/admin/users"' in page.text) is shown, role


def test_the_security_doc_prints_exactly_this_table() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "security.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(\w+)` \| `([^`]+)` \| ([^|]+) \|$", doc, flags=re.MULTILINE)
    names = {"admin": "admin", "clinician": "clinician", "read-only": "read_only"}

    def roles(cell: str) -> frozenset[str]:
        cell = cell.strip()
        if cell == "anyone (no sign-in)":
            return PUBLIC
        if cell == "an EHR with a signed JWT (no user)":
            return EHR
        return frozenset(names[r.strip()] for r in cell.split(","))

    documented = {(method, path): roles(cell) for method, path, cell in rows}
    assert len(documented) == len(rows)  # no line twice
    assert documented == POLICY
