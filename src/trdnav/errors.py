"""Errors of TRD Navigator.

    TrdnavError
    ├── InputError        user input is invalid; carries every Problem found (never a traceback)
    └── KnowledgeError    a knowledge-base file is invalid (a defect of the release, not the user)

A ``Problem`` is a value: where (``file``, ``loc`` as a field path such as
``treatments[2].doses[0].mg_per_day``), a stable ``code`` and a human ``message``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    loc: str
    code: str
    message: str
    file: str | None = None

    def render(self) -> str:
        where = f"{self.file}: " if self.file else ""
        field = f"{self.loc}: " if self.loc else ""
        return f"{where}{field}{self.message}"

    def as_dict(self) -> dict[str, str | None]:
        return {"file": self.file, "loc": self.loc, "code": self.code, "message": self.message}


class TrdnavError(Exception):
    """Base of every error this package raises on purpose."""


class InputError(TrdnavError):
    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(p.render() for p in self.problems))


class KnowledgeError(TrdnavError):
    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(p.render() for p in self.problems))
