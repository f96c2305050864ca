"""Administration: the audit log and the users of the clinic app (role ``Admin`` only).

- ``GET /admin/audit``: the append-only audit log, newest first, 50 events a page, filtered by
  user, patient identifier, action and a date range (UTC days). Reading it is itself audited
  (``read_audit``, with the patient filter as entity id when one is given).
- ``GET /admin/users``: every user (name, role, active) and a form to add one.
- ``POST /admin/users``: create a user (name, role, initial password of at least 12 characters,
  stored as an argon2id hash). ``POST /admin/users/{user_id}/deactivate``: the user can no longer
  sign in, their open sessions end at once and their API tokens stop working at their next
  request; an admin cannot deactivate themself (so an active admin always remains).
- ``POST /admin/users/{user_id}/password``: a new password (12 characters or more); the user's
  sessions end at once. ``POST /admin/users/{user_id}/totp/reset``: removes the user's second
  factor (a lost phone) and ends their sessions. ``POST /admin/users/{user_id}/sessions/revoke``:
  ends the user's sessions. An admin does none of these to themself here (their own account page
  has "sign out everywhere" and the second factor). Every change is audited, and every ending of
  sessions as ``sessions_revoked``.
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
from trdnav.web.sessions import end_user_sessions, live
from trdnav.web.settings import WebSettings
from trdnav.web.totp import remove_totp

router = APIRouter(include_in_schema=False)

AUDIT_PAGE_SIZE = 50
MIN_PASSWORD = 12
MAX_USERNAME = 120
ROLE_LABELS = {"admin": "Admin", "clinician": "Clinician", "read_only": "Read-only"}
# the notice after a change (the page names the user only if the user exists)
DONE = {
    "password": "The password of {name} was changed; their sessions were ended.",
    "totp": "The second factor of {name} was removed; their sessions were ended.",
    "sessions": "The sessions of {name} were ended.",
}


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
    settings: WebSettings = request.app.state.settings
    users = list(db.scalars(select(m.User).order_by(m.User.username)))
    with_totp = set(
        db.scalars(select(m.UserTotp.user_id).where(m.UserTotp.confirmed_at.is_not(None)))
    )
    open_count = (
        select(m.UserSession.user_id, func.count())
        .where(live(settings.idle_timeout_minutes * 60, settings.session_max_hours * 3600))
        .group_by(m.UserSession.user_id)
    )
    sessions = {uid: count for uid, count in db.execute(open_count)}
    context = {
        "users": users,
        "with_totp": with_totp,
        "sessions": sessions,
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
    done = request.query_params.get("done", "")
    changed = request.query_params.get("user", "")[:MAX_USERNAME]
    message = None
    name = created or deactivated or changed
    row = db.scalar(select(m.User).where(m.User.username == name)) if name else None
    if row is not None and created:
        message = f"User {row.username} was created."
    elif row is not None and deactivated and not row.active:
        message = f"User {row.username} was deactivated."
    elif row is not None and done in DONE:
        message = DONE[done].format(name=row.username)
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
        ip = client_ip(request)
        record_audit(db, user.who, "user_deactivate", "user", str(row.id), ip)
        end_user_sessions(db, user.who, row.id, ip)
        db.commit()
    return RedirectResponse(
        "/admin/users?" + urlencode({"deactivated": row.username}), status_code=303
    )


def _other_user(request: Request, db: Session, user_id: int, me: int) -> m.User | Response:
    """The user an admin acts on, or the page saying why not (unknown, or the admin)."""
    row = db.get(m.User, user_id)
    if row is None:
        return _users_page(request, db, message="There is no such user.", status_code=404)
    if row.id == me:
        return _users_page(
            request,
            db,
            message="Change your own account on your account page (sign out everywhere, the "
            "second factor) or ask another administrator.",
            status_code=409,
        )
    return row


def _done(row: m.User, what: str) -> Response:
    query = urlencode({"done": what, "user": row.username})
    return RedirectResponse("/admin/users?" + query, status_code=303)


@router.post("/admin/users/{user_id}/password")
def reset_password(
    request: Request,
    user_id: int,
    db: SessionDep,
    user: Admin,
    password: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    row = _other_user(request, db, user_id, user.id)
    if not isinstance(row, m.User):
        return row
    if len(password) < MIN_PASSWORD:
        return _users_page(
            request,
            db,
            message=f"The new password of {row.username} was not set: expected at least "
            f"{MIN_PASSWORD} characters.",
            status_code=422,
        )
    ip = client_ip(request)
    row.password_hash = hash_password(password)
    record_audit(db, user.who, "user_password_reset", "user", str(row.id), ip)
    end_user_sessions(db, user.who, row.id, ip)
    db.commit()
    return _done(row, "password")


@router.post("/admin/users/{user_id}/totp/reset")
def reset_totp(request: Request, user_id: int, db: SessionDep, user: Admin) -> Response:
    row = _other_user(request, db, user_id, user.id)
    if not isinstance(row, m.User):
        return row
    ip = client_ip(request)
    remove_totp(db, row.id)
    record_audit(db, user.who, "totp_reset_by_admin", "user", str(row.id), ip)
    end_user_sessions(db, user.who, row.id, ip)
    db.commit()
    return _done(row, "totp")


@router.post("/admin/users/{user_id}/sessions/revoke")
def revoke_sessions(request: Request, user_id: int, db: SessionDep, user: Admin) -> Response:
    row = _other_user(request, db, user_id, user.id)
    if not isinstance(row, m.User):
        return row
    end_user_sessions(db, user.who, row.id, client_ip(request))
    db.commit()
    return _done(row, "sessions")
