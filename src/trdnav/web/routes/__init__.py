"""Routes by area; the app factory includes every router of ``ROUTERS``."""

from __future__ import annotations

from fastapi import APIRouter

from trdnav.web.routes import admin, api, auth, documents, patients, records, selfreport

ROUTERS: tuple[APIRouter, ...] = (
    auth.router,
    patients.router,
    records.router,
    selfreport.router,
    documents.router,
    admin.router,
    api.router,
)
