"""Who the patient is: name, date of birth, medical record number and other identifiers.

Kept apart from the treatment history (the clinical input of every assessment): identity is shown
on every clinic page and searchable, but left out of a history-file export unless asked for, and
every read of it is audited by the clinic app. FHIR ``Patient`` maps to it (interop.fhir).
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field


class Identifier(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    system: str | None = Field(default=None, description="e.g. the hospital's MRN namespace URI")
    value: str = Field(min_length=1, max_length=200)
    type: str | None = Field(default=None, description="e.g. MR (medical record number)")


class PatientIdentity(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    given: tuple[str, ...] = Field(default=(), description="given names, in order")
    family: str | None = Field(default=None, max_length=200)
    birth_date: date | None = None
    mrn: str | None = Field(default=None, max_length=200, description="medical record number")
    identifiers: tuple[Identifier, ...] = ()

    @property
    def display_name(self) -> str:
        """``FAMILY, Given Names`` (or whichever part is known; empty when neither is)."""
        given = " ".join(self.given)
        if self.family and given:
            return f"{self.family.upper()}, {given}"
        return (self.family or given or "").strip()
