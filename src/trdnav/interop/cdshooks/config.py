"""The CDS Hooks service's settings: trusted issuers, its own URL, limits and links.

One typed object, read from a YAML or JSON file (``trdnav cds serve --config FILE``, or
``TRDNAV_CDS_CONFIG`` for the service mounted in the clinic app). A wrong field is an
:class:`~trdnav.errors.InputError` naming the field and what was expected.

Example::

    base_url: https://cds.clinic.example          # aud = {base_url}/cds-services/{id}
    issuers:
      - iss: https://ehr.example.org
        jwks_url: https://ehr.example.org/.well-known/jwks.json
        jku: [https://ehr.example.org/.well-known/jwks.json]
    patient_link: https://trd.clinic.example/patients/{patient_id}
"""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from trdnav.errors import InputError, Problem

ENV_VAR = "TRDNAV_CDS_CONFIG"
REPLAY_ENV_VAR = "TRDNAV_CDS_REPLAY_STORE"  # the shared jti store of the workers
DEFAULT_ALGORITHMS = ("ES384", "RS384")
_ASYMMETRIC = frozenset(
    {"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"}
)


class TrustedIssuer(BaseModel):
    """An EHR allowed to call the service, and where its public keys are."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    iss: str = Field(min_length=1, description="the JWT's iss, exactly")
    jwks_url: str | None = Field(default=None, description="the issuer's JWK Set URL")
    jwks: dict[str, Any] | None = Field(default=None, description="the JWK Set itself (inline)")
    jku: tuple[str, ...] = Field(
        default=(), description="jku header values allowed besides jwks_url (allow-list)"
    )

    @model_validator(mode="after")
    def _keys_somewhere(self) -> TrustedIssuer:
        if self.jwks_url is None and self.jwks is None:
            raise ValueError(f"issuer {self.iss!r}: give jwks_url or jwks")
        return self

    @property
    def allowed_jku(self) -> frozenset[str]:
        return frozenset(self.jku) | ({self.jwks_url} if self.jwks_url else set())


class CdsSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str | None = Field(
        default=None,
        description="the service's public base URL; aud must be {base_url}/cds-services/{id} "
        "(default: the URL the request arrived on)",
    )
    issuers: tuple[TrustedIssuer, ...] = ()
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    leeway_seconds: int = Field(default=30, ge=0, le=300)
    jwks_cache_seconds: int = Field(default=300, ge=0)
    jwks_timeout_seconds: float = Field(default=3.0, gt=0, le=30)
    fhir_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    max_body_bytes: int = Field(default=10_000_000, ge=10_000)
    max_resources: int = Field(default=20_000, ge=1)
    patient_link: str | None = Field(
        default=None, description="the clinic app's patient page; {patient_id} is filled in"
    )
    smart_launch_url: str | None = Field(
        default=None, description="a SMART launch URL of the clinic app (link type smart)"
    )
    today: date | None = None  # fixed "today" for demos and tests
    assessment_cache: int = Field(default=256, ge=0, description="assessments kept (0 = off)")
    replay_store: str | None = Field(
        default=None,
        description="a SQLite file for the spent jtis, shared by the service's worker processes "
        "(default: in memory, per process); env TRDNAV_CDS_REPLAY_STORE overrides",
    )

    @field_validator("algorithms")
    @classmethod
    def _asymmetric_only(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        wrong = [a for a in value if a not in _ASYMMETRIC]
        if wrong or not value:
            raise ValueError(
                f"{', '.join(wrong) or 'nothing'} not allowed (the specification forbids none "
                f"and symmetric algorithms); expected some of {', '.join(sorted(_ASYMMETRIC))}"
            )
        return value

    @field_validator("base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return None if value is None else value.rstrip("/")

    def issuer(self, iss: str) -> TrustedIssuer | None:
        return next((i for i in self.issuers if i.iss == iss), None)


def load_cds_settings(path: Path) -> CdsSettings:
    """Read the settings file (YAML or JSON); every problem is named with its field."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(
            [Problem("", "file_unreadable", f"cannot read file: {exc.strerror}", name)]
        ) from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InputError([Problem("", "syntax", f"not valid YAML/JSON: {exc}", name)]) from None
    return settings_from_data(data or {}, name)


def settings_from_data(data: Any, file: str | None = None) -> CdsSettings:
    try:
        return CdsSettings.model_validate(data)
    except ValidationError as exc:
        raise InputError(
            [
                Problem(".".join(str(x) for x in e["loc"]), e["type"], e["msg"], file)
                for e in exc.errors()
            ]
        ) from None


def settings_from_env() -> CdsSettings:
    """``TRDNAV_CDS_CONFIG`` names the file; without it, no issuer is trusted (every hook
    call is refused with 401 until one is configured)."""
    path = os.environ.get(ENV_VAR)
    settings = load_cds_settings(Path(path)) if path else CdsSettings()
    store = os.environ.get(REPLAY_ENV_VAR)
    return settings.model_copy(update={"replay_store": store}) if store else settings
