"""Database failures while the phenotype runs, named by the step that was running.

The phenotype's queries run on the OMOP data's own database (DuckDB, PostgreSQL, Spark). When one
of them fails (the connection is lost, the server ends the session, a value cannot be converted,
a table disappears), :func:`step` turns the driver's exception into a :class:`StepFailedError`
that names the step and says what happened in one line, so that ``trdnav cohort`` can report it
without a traceback.

Only the exception classes of drivers already imported are caught (a run on DuckDB never imports
psycopg or PySpark).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from trdnav.errors import TrdnavError

_DRIVER_ERRORS = (
    ("duckdb", "Error"),
    ("psycopg", "Error"),
    ("psycopg2", "Error"),
    ("pyspark.errors", "PySparkException"),
    ("py4j.protocol", "Py4JError"),
    ("sqlalchemy.exc", "SQLAlchemyError"),
)
_CONNECTION_LOST = (
    "server closed the connection",
    "terminating connection",
    "connection is closed",
    "consuming input failed",
    "connection refused",
    "connection reset",
    "connection to server",
    "broken pipe",
)


class StepFailedError(TrdnavError):
    """The database failed during ``step``; ``reason`` says how, in one line."""

    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"step {step!r}: {reason}")
        self.step = step
        self.reason = reason


def database_errors() -> tuple[type[BaseException], ...]:
    """The exception classes of the database drivers loaded in this process."""
    found: list[type[BaseException]] = []
    for module_name, class_name in _DRIVER_ERRORS:
        module = sys.modules.get(module_name)
        cls = getattr(module, class_name, None) if module is not None else None
        if isinstance(cls, type) and issubclass(cls, BaseException):
            found.append(cls)
    return tuple(found)


def describe(exc: BaseException) -> str:
    """One line about a driver's exception: lost connections said plainly, else its first line."""
    text = str(exc).strip()
    first = text.splitlines()[0].strip() if text else ""
    lowered = text.lower()
    name = type(exc).__name__
    if any(marker in lowered for marker in _CONNECTION_LOST):
        return f"the database connection was lost ({name}: {first})"
    return f"the database reported an error ({name}: {first or 'no message'})"


@contextmanager
def step(name: str) -> Iterator[None]:
    """Run a block as phenotype step ``name``: a database failure becomes a StepFailedError."""
    try:
        yield
    except StepFailedError:
        raise
    except database_errors() as exc:
        raise StepFailedError(name, describe(exc)) from exc
