"""A CDS Hooks 2.0 service: discovery, patient-view, order-select and order-sign."""
