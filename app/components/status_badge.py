"""The coloured badge of a task status."""

from __future__ import annotations

import reflex as rx


def status_badge(status, tone) -> rx.Component:  # noqa: ANN001
    return rx.badge(status, color_scheme=tone, variant="soft", size="2", class_name="status-badge")
