"""Taskdeck: the product package (domain core, REST API and Reflex UI)."""
