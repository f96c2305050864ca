"""Rendering a page: every template gets the user, the CSRF token, the clinic and today."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from trdnav.web.deps import CurrentUser


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    status_code: int = 200,
    user: CurrentUser | None = None,
    today: date | None = None,
) -> HTMLResponse:
    tpl: Jinja2Templates = request.app.state.templates
    session = getattr(request.state, "session", None)
    ctx: dict[str, Any] = {
        "user": user or getattr(request.state, "user", None),
        "csrf_token": session.csrf if session is not None else "",
        "clinic_name": request.app.state.settings.clinic_name,
        "today": today,
        "idle_minutes": request.app.state.settings.idle_timeout_minutes,
    }
    ctx.update(context or {})
    return tpl.TemplateResponse(request, template, ctx, status_code=status_code)
