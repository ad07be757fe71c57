"""Reflex state classes, one module per page or concern; they call app.service, never SQL/RQ."""
