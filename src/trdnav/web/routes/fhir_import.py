"""Routes: fhir_import (issue 14)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
