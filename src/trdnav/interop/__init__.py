"""Interoperability: FHIR R4 in and out (``interop.fhir``) and a CDS Hooks 2.0 service
(``interop.cdshooks``). A thin room around the core: it maps to and from the history format and
calls the core; it never re-implements a clinical rule."""
