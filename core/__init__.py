"""Carematix domain: models, scheduling rules, booking services, outbox and audit."""
