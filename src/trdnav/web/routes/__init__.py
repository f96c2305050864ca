"""Routes by area; the app factory includes every router of ``ROUTERS``."""

from __future__ import annotations

from fastapi import APIRouter

from trdnav.web.routes import (
    account,
    admin,
    api,
    api_courses,
    auth,
    cdshooks,
    courses,
    documents,
    fhir_export,
    fhir_import,
    patients,
    prior_auth,
    records,
    selfreport,
)

# records before patients: its fixed paths (``/patients/new``) must win over ``/patients/{id}``
ROUTERS: tuple[APIRouter, ...] = (
    auth.router,
    account.router,
    records.router,
    courses.router,
    patients.router,
    selfreport.router,
    documents.router,
    prior_auth.router,
    admin.router,
    api.router,
    api_courses.router,
    prior_auth.api_router,
    fhir_import.router,
    fhir_export.router,
    cdshooks.router,
)
