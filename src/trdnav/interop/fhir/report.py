"""The result of a FHIR import and its report: every resource mapped or not, and why.

Nothing is dropped silently: each resource read ends in ``mapped`` (with where it went in the
history) or in ``not_mapped`` (with a stable code and a sentence); a mapping that needed an
assumption (a dose read from free text, an adherence estimated from dispenses, a stop date taken
from the last prescription) is also listed in ``assumptions``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from trdnav.core.history import History
from trdnav.identity import PatientIdentity


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Mapped(_Model):
    resource: str = Field(description="ResourceType/id")
    to: str = Field(description="where it went, e.g. treatments[2] or patient identity")


class NotMapped(_Model):
    resource: str = Field(description="ResourceType/id (or entry[n] when it has no id)")
    code: str = Field(description="a stable reason code, e.g. unknown_drug, entered_in_error")
    reason: str


class Assumption(_Model):
    resource: str
    to: str | None = None
    assumption: str


class ImportReport(_Model):
    resources: int = Field(description="resources read from the input")
    mapped: tuple[Mapped, ...] = ()
    not_mapped: tuple[NotMapped, ...] = ()
    assumptions: tuple[Assumption, ...] = ()

    @property
    def complete(self) -> bool:
        """Every resource was mapped without an assumption."""
        return not self.not_mapped and not self.assumptions


class FhirImport(_Model):
    history: History
    identity: PatientIdentity
    report: ImportReport
