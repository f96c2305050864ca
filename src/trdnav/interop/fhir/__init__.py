"""FHIR R4 import and export, parsed and validated with the ``fhir.resources`` R4B models.

Import (docs/fhir.md): :func:`import_fhir` maps decoded FHIR JSON to a validated history, a
patient identity and a report; :func:`read_fhir_file` / :func:`decode_fhir` read a file or text
(JSON or NDJSON), refusing input above :data:`MAX_BYTES` before reading it whole.
"""
