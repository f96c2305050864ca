"""Administration: the audit log and the users of the clinic app (role ``Admin`` only).

- ``GET /admin/audit``: the append-only audit log, newest first, 50 events a page, filtered by
  user, patient identifier, action and a date range (UTC days). Reading it is itself audited
  (``read_audit``, with the patient filter as entity id when one is given).
- ``GET /admin/users``: every user (name, role, active) and a form to add one.
- ``POST /admin/users``: create a user (name, role, initial password of at least 12 characters,
  stored as an argon2id hash). ``POST /admin/users/{user_id}/deactivate``: the user can no longer
  sign in, their open sessions and API tokens stop working at their next request; an admin cannot
  deactivate themself (so an active admin always remains). Both are audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from trdnav.storage import models as m
from trdnav.storage.repository import record_audit
from trdnav.web.deps import Admin, SessionDep, client_ip
from trdnav.web.pages import render
from trdnav.web.security import hash_password

router = APIRouter(include_in_schema=False)

AUDIT_PAGE_SIZE = 50
MIN_PASSWORD = 12
MAX_USERNAME = 120
ROLE_LABELS = {"admin": "Admin", "clinician": "Clinician", "read_only": "Read-only"}


@dataclass(frozen=True)
class AuditFilters:
    user: str
    patient: str
    action: str
    date_from: date | None
    date_to: date | None

    def query_string(self) -> str:
        """The filters as URL parameters (for the pager links)."""
        pairs = {
            "user": self.user,
            "patient": self.patient,
            "action": self.action,
            "date_from": self.date_from.isoformat() if self.date_from else "",
            "date_to": self.date_to.isoformat() if self.date_to else "",
        }
        return urlencode({k: v for k, v in pairs.items() if v})


def _parse_day(value: str, field: str, errors: dict[str, str]) -> date | None:
    value = value.strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors[field] = f"expected a date as YYYY-MM-DD, got {value!r}"
        return None


def _utc_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def as_utc(at: datetime) -> datetime:
    """Stored times are UTC; SQLite hands them back without a time zone."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def _filtered(query: Select[Any], f: AuditFilters) -> Select[Any]:
    if f.user:
        query = query.where(m.AuditEvent.who == f.user)
    if f.patient:
        # patient ids are the entity id of every entity but users (whose ids are numbers)
        query = query.where(m.AuditEvent.entity != "user", m.AuditEvent.entity_id == f.patient)
    if f.action:
        query = query.where(m.AuditEvent.action == f.action)
    if f.date_from:
        query = query.where(m.AuditEvent.at >= _utc_midnight(f.date_from))
    if f.date_to:
        query = query.where(m.AuditEvent.at < _utc_midnight(f.date_to + timedelta(days=1)))
    return query


def audit_page(db: Session, f: AuditFilters, page: int) -> tuple[list[m.AuditEvent], int]:
    """One page of events matching ``f`` (newest first) and how many match in all."""
    total = db.scalar(_filtered(select(func.count(m.AuditEvent.id)), f)) or 0
    query = _filtered(select(m.AuditEvent), f).order_by(m.AuditEvent.id.desc())
    events = list(db.scalars(query.limit(AUDIT_PAGE_SIZE).offset((page - 1) * AUDIT_PAGE_SIZE)))
    return events, total


@router.get("/admin/audit")
def audit_log(
    request: Request,
    db: SessionDep,
    user: Admin,
    who: Annotated[str, Query(alias="user", max_length=120)] = "",
    patient: Annotated[str, Query(max_length=120)] = "",
    action: Annotated[str, Query(max_length=32)] = "",
    date_from: Annotated[str, Query(max_length=32)] = "",
    date_to: Annotated[str, Query(max_length=32)] = "",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    errors: dict[str, str] = {}
    filters = AuditFilters(
        who.strip(),
        patient.strip(),
        action.strip(),
        _parse_day(date_from, "date_from", errors),
        _parse_day(date_to, "date_to", errors),
    )
    if filters.date_from and filters.date_to and filters.date_to < filters.date_from:
        errors["date_to"] = "expected a date on or after the “from” date"
    record_audit(db, user.who, "read_audit", "audit", filters.patient or None, client_ip(request))
    db.commit()
    events, total = ([], 0) if errors else audit_page(db, filters, page)
    actions = sorted(db.scalars(select(m.AuditEvent.action).distinct()))
    user_names = {str(uid): name for uid, name in db.execute(select(m.User.id, m.User.username))}
    context = {
        "events": [(e, as_utc(e.at)) for e in events],
        "total": total,
        "filters": filters,
        "raw": {"date_from": date_from, "date_to": date_to},
        "errors": errors,
        "actions": actions,
        "user_names": user_names,
        "page": page,
        "pages": max(1, -(-total // AUDIT_PAGE_SIZE)),
        "query": filters.query_string(),
    }
    return render(request, "admin/audit.html", context, status_code=422 if errors else 200)


def _users_page(
    request: Request,
    db: Session,
    *,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    message: str | None = None,
    status_code: int = 200,
) -> Response:
    users = list(db.scalars(select(m.User).order_by(m.User.username)))
    context = {
        "users": users,
        "roles": ROLE_LABELS,
        "errors": errors or {},
        "form": form or {"username": "", "role": "clinician"},
        "message": message,
        "min_password": MIN_PASSWORD,
    }
    return render(request, "admin/users.html", context, status_code=status_code)


@router.get("/admin/users")
def users(request: Request, db: SessionDep, user: Admin) -> Response:
    # the notice after a change names the user only if the change is really there
    created = request.query_params.get("created", "")[:MAX_USERNAME]
    deactivated = request.query_params.get("deactivated", "")[:MAX_USERNAME]
    message = None
    name = created or deactivated
    row = db.scalar(select(m.User).where(m.User.username == name)) if name else None
    if row is not None and created:
        message = f"User {row.username} was created."
    elif row is not None and not row.active:
        message = f"User {row.username} was deactivated."
    return _users_page(request, db, message=message)


@router.post("/admin/users")
def create_user(
    request: Request,
    db: SessionDep,
    user: Admin,
    username: Annotated[str, Form(max_length=1024)] = "",
    role: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    username = username.strip()
    errors: dict[str, str] = {}
    if not username:
        errors["username"] = "expected a user name"
    elif len(username) > MAX_USERNAME:
        errors["username"] = f"expected at most {MAX_USERNAME} characters"
    elif db.scalar(select(m.User.id).where(m.User.username == username)) is not None:
        errors["username"] = f"a user named {username!r} exists already"
    if role not in ROLE_LABELS:
        errors["role"] = "expected one of " + ", ".join(ROLE_LABELS.values())
    if len(password) < MIN_PASSWORD:
        errors["password"] = f"expected at least {MIN_PASSWORD} characters"
    if errors:
        form = {"username": username, "role": role if role in ROLE_LABELS else "clinician"}
        return _users_page(request, db, errors=errors, form=form, status_code=422)
    row = m.User(username=username, role=role, password_hash=hash_password(password), active=True)
    db.add(row)
    db.flush()
    record_audit(db, user.who, "user_create", "user", str(row.id), client_ip(request))
    db.commit()
    return RedirectResponse("/admin/users?" + urlencode({"created": row.username}), status_code=303)


@router.post("/admin/users/{user_id}/deactivate")
def deactivate_user(request: Request, user_id: int, db: SessionDep, user: Admin) -> Response:
    row = db.get(m.User, user_id)
    if row is None:
        return _users_page(request, db, message="There is no such user.", status_code=404)
    if row.id == user.id:
        return _users_page(
            request,
            db,
            message="You cannot deactivate your own account; ask another administrator.",
            status_code=409,
        )
    if row.active:
        row.active = False
        record_audit(db, user.who, "user_deactivate", "user", str(row.id), client_ip(request))
        db.commit()
    return RedirectResponse(
        "/admin/users?" + urlencode({"deactivated": row.username}), status_code=303
    )
