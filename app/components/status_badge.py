"""Status display: the coloured badge and the StatusIndicator (a dot that pulses while running)."""

from __future__ import annotations

import reflex as rx


def status_badge(status, tone) -> rx.Component:  # noqa: ANN001
    """The status as a coloured badge."""
    return rx.badge(status, color_scheme=tone, variant="soft", size="2", class_name="status-badge")


def status_indicator(status, tone) -> rx.Component:  # noqa: ANN001
    """A coloured dot and the status word; the dot pulses while the task runs."""
    return rx.hstack(
        rx.box(
            class_name="status-dot",
            data_status=status,
            background=f"var(--{tone}-9)",
        ),
        rx.text(status, size="1", color_scheme=tone, weight="medium"),
        align="center",
        spacing="1",
        class_name="status-indicator",
        data_status=status,
    )
