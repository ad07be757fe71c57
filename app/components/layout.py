"""The frame every page shares: top bar with navigation, demo-mode banner, responsive body."""

from __future__ import annotations

import reflex as rx

from app.state.base import AppState

NAV = [("Dashboard", "/"), ("New task", "/#new-task")]


def demo_banner() -> rx.Component:
    return rx.cond(
        AppState.demo_mode,
        rx.callout(
            "Demo mode: tasks run against Taskdeck's scripted demo model, not Claude. "
            "Set ANTHROPIC_API_KEY and restart to use the real Claude API.",
            icon="flask-conical",
            color_scheme="amber",
            size="1",
            id="demo-banner",
            width="100%",
        ),
    )


def navbar() -> rx.Component:
    return rx.hstack(
        rx.link(
            rx.hstack(rx.icon("square-terminal"), rx.heading("Taskdeck", size="5"), align="center"),
            href="/",
            underline="none",
            color="inherit",
        ),
        rx.cond(AppState.demo_mode, rx.badge("demo model", color_scheme="amber", id="demo-badge")),
        rx.spacer(),
        *[rx.link(label, href=href, size="2") for label, href in NAV],
        rx.color_mode.button(size="1", variant="ghost"),
        align="center",
        spacing="4",
        padding_x=rx.breakpoints(initial="3", md="6"),
        padding_y="3",
        border_bottom="1px solid var(--gray-a5)",
        width="100%",
        wrap="wrap",
    )


def page_frame(*children: rx.Component) -> rx.Component:
    """Wrap a page's content in the shared frame."""
    return rx.box(
        navbar(),
        rx.vstack(
            demo_banner(),
            *children,
            spacing="4",
            padding=rx.breakpoints(initial="3", md="6"),
            width="100%",
            max_width="1200px",
            margin_x="auto",
        ),
        width="100%",
        min_height="100vh",
    )
