"""FHIR R4 import and export, parsed and validated with the ``fhir.resources`` R4B models."""
