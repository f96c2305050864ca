"""Routes by area; the app factory includes every router of ``ROUTERS``."""

from __future__ import annotations

from fastapi import APIRouter

from trdnav.web.routes import admin, api, auth, documents, patients, records, selfreport

# records before patients: its fixed paths (``/patients/new``) must win over ``/patients/{id}``
ROUTERS: tuple[APIRouter, ...] = (
    auth.router,
    records.router,
    patients.router,
    selfreport.router,
    documents.router,
    admin.router,
    api.router,
)
