"""Reusable Reflex components."""
