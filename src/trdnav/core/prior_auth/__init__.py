"""Prior authorisation: a payer's criteria (knowledge/data/payers) evaluated against the record."""
