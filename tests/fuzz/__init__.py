"""Fuzzing: the history reader, FHIR import and the API (issue 16, part 5)."""
