"""Population case-finding on OMOP CDM: the TRD phenotype (Ibis), backends, synthetic data."""
