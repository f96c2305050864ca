"""Population case-finding on OMOP CDM: the TRD phenotype (Ibis), its backends and synthetic data."""
