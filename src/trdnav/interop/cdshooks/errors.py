"""Errors of the CDS Hooks service, each an HTTP status, a stable code and a sentence.

    CdsError                 answered as {"error": {"code", "message", "problems"}}
    ├── CdsAuthError         401: the caller's JWT is missing, malformed, expired, replayed,
    │                        wrongly signed, for another audience or from an untrusted issuer
    └── (plain CdsError)     400 bad request, 404 unknown service, 413 too large,
                             412 FHIR data unavailable, 422 unusable content

The body has the clinic app's one JSON error shape (``trdnav.web.app.error_body``).
"""

from __future__ import annotations

from typing import Any


class CdsError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        problems: list[dict[str, Any]] | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.problems = problems or []
        super().__init__(f"{code}: {message}")

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "problems": self.problems}}


class CdsAuthError(CdsError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(401, code, message)
