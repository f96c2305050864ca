"""The web app's settings: one typed object, read from ``TRDNAV_*`` environment variables.

Outside development mode a placeholder or short secret key is refused, so a clinic cannot run
with the demo secret by mistake.

Second factor: ``require_totp_for_admins`` defaults to on outside development mode and off in it
(``TRDNAV_DEV=1``: the demo and the tests sign admins in with a password alone);
``require_totp_for_clinicians`` (every role but admin) defaults to off. Both can be set either
way with ``TRDNAV_REQUIRE_TOTP_FOR_ADMINS`` / ``TRDNAV_REQUIRE_TOTP_FOR_CLINICIANS`` (1 or 0).
"""

from __future__ import annotations

import os
import secrets
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from trdnav.storage.settings import database_url

DEV_SECRET = "dev-only-secret-do-not-use-in-a-clinic"  # noqa: S105 - refused outside dev


class WebSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    database_url: str = Field(default_factory=database_url)
    secret_key: str = DEV_SECRET
    dev_mode: bool = False
    idle_timeout_minutes: int = Field(default=15, ge=1, le=24 * 60)
    session_max_hours: int = Field(default=12, ge=1, le=24 * 7)
    signin_max_failures: int = Field(default=5, ge=1)
    signin_window_minutes: int = Field(default=15, ge=1)
    selfreport_link_hours: int = Field(default=72, ge=1, le=24 * 30)
    locale: str | None = None
    clinic_name: str = "TRD Navigator"
    today: date | None = None  # fixed "today" for demos and tests; None = the calendar date
    public_base_url: str | None = None  # for self-report links; default: the request's own
    require_totp_for_admins: bool = True  # default: on, off in dev mode (see the docstring)
    require_totp_for_clinicians: bool = False

    @model_validator(mode="before")
    @classmethod
    def _totp_default_follows_dev_mode(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("require_totp_for_admins") is None:
            dev = data.get("dev_mode", False)
            dev = dev.strip().lower() in ("1", "true", "yes") if isinstance(dev, str) else bool(dev)
            data = {**data, "require_totp_for_admins": not dev}
        return data

    @model_validator(mode="after")
    def _refuse_unsafe_secret(self) -> WebSettings:
        if not self.dev_mode and (self.secret_key == DEV_SECRET or len(self.secret_key) < 32):
            raise ValueError(
                "TRDNAV_SECRET_KEY must be set to a random value of at least 32 characters "
                "outside development mode (TRDNAV_DEV=1)"
            )
        return self

    @classmethod
    def from_env(cls, **overrides: object) -> WebSettings:
        env = os.environ
        values: dict[str, object] = {}
        mapping = {
            "TRDNAV_DATABASE_URL": "database_url",
            "TRDNAV_SECRET_KEY": "secret_key",
            "TRDNAV_IDLE_TIMEOUT_MINUTES": "idle_timeout_minutes",
            "TRDNAV_SELFREPORT_LINK_HOURS": "selfreport_link_hours",
            "TRDNAV_LOCALE": "locale",
            "TRDNAV_CLINIC_NAME": "clinic_name",
            "TRDNAV_TODAY": "today",
            "TRDNAV_PUBLIC_BASE_URL": "public_base_url",
            "TRDNAV_REQUIRE_TOTP_FOR_ADMINS": "require_totp_for_admins",
            "TRDNAV_REQUIRE_TOTP_FOR_CLINICIANS": "require_totp_for_clinicians",
        }
        for var, name in mapping.items():
            if env.get(var):
                values[name] = env[var]
        if env.get("TRDNAV_DEV") == "1":
            values["dev_mode"] = True
        values.update(overrides)
        return cls.model_validate(values)


def random_secret() -> str:
    return secrets.token_urlsafe(48)
