"""The queues & workers page and the system health page."""

from __future__ import annotations

import reflex as rx

from app.components.layout import page_frame, section
from app.state.auth import AuthState
from app.state.system import HealthState, QueuesState

LEVEL_COLORS = {"green": "green", "amber": "amber", "red": "red"}


def queue_card(q) -> rx.Component:  # noqa: ANN001
    def figure(label: str, key: str) -> rx.Component:
        return rx.vstack(
            rx.text(label, size="1", color_scheme="gray"),
            rx.text(q[key], size="4", weight="bold", class_name=f"queue-{key}"),
            spacing="0",
        )

    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.heading(q["priority"], size="4"),
                rx.cond(
                    q["paused"] == "true",
                    rx.badge("paused", color_scheme="amber", class_name="queue-paused"),
                    rx.badge("active", color_scheme="green"),
                ),
                rx.spacer(),
                rx.cond(  # pausing is an admin's (as the API's admin scope)
                    AuthState.is_admin,
                    pause_button(q),
                ),
                align="center",
                width="100%",
            ),
            rx.text(q["name"], size="1", color_scheme="gray"),
            rx.grid(
                figure("Queued", "queued"),
                figure("Running", "running"),
                figure("Failed", "failed"),
                figure("Scheduled", "scheduled"),
                columns="4",
                spacing="2",
                width="100%",
            ),
            rx.text("Oldest waiting: ", q["wait"], size="1", color_scheme="gray"),
            spacing="2",
            width="100%",
        ),
        class_name="queue-card",
        data_queue=q["priority"],
        width="100%",
    )


def pause_button(q) -> rx.Component:  # noqa: ANN001
    """Resume a paused queue, pause an active one."""
    return rx.cond(
        q["paused"] == "true",
        rx.button(
            rx.icon("play", size=14),
            "Resume",
            size="1",
            variant="soft",
            on_click=QueuesState.resume(q["priority"]),
            class_name="queue-resume",
        ),
        rx.button(
            rx.icon("pause", size=14),
            "Pause",
            size="1",
            variant="soft",
            color_scheme="amber",
            on_click=QueuesState.pause(q["priority"]),
            class_name="queue-pause",
        ),
    )


def worker_card(w) -> rx.Component:  # noqa: ANN001
    return rx.card(
        rx.vstack(
            rx.hstack(
                rx.text(
                    w["name"],
                    weight="medium",
                    size="2",
                    style={"overflow_wrap": "anywhere"},
                    flex="1",
                    min_width="0",
                ),
                rx.badge(w["state"], color_scheme=w["tone"]),
                align="center",
                width="100%",
            ),
            rx.hstack(
                rx.text(
                    "task ",
                    rx.cond(w["task"] != "", rx.link(w["task"], href=w["href"]), rx.text.span("-")),
                    size="1",
                ),
                rx.text("heartbeat ", w["heartbeat"], " ago", size="1", color_scheme="gray"),
                rx.text(w["memory"], size="1", color_scheme="gray"),
                rx.text(w["done"], size="1", color_scheme="gray"),
                spacing="3",
                wrap="wrap",
            ),
            spacing="1",
            width="100%",
        ),
        class_name="worker-card",
        width="100%",
    )


def queues_page() -> rx.Component:
    return page_frame(
        rx.heading("Queues & workers", size="6"),
        rx.cond(
            QueuesState.message != "",
            rx.callout(
                QueuesState.message, icon="info", size="1", id="queue-message", width="100%"
            ),
        ),
        rx.grid(
            rx.foreach(QueuesState.queues, queue_card),
            columns=rx.breakpoints(initial="1", md="3"),
            spacing="3",
            width="100%",
            id="queues",
        ),
        section(
            "Workers",
            rx.cond(
                QueuesState.workers.length() > 0,
                rx.grid(
                    rx.foreach(QueuesState.workers, worker_card),
                    columns=rx.breakpoints(initial="1", md="2"),
                    spacing="2",
                    width="100%",
                ),
                rx.text(
                    "No worker is alive: start `python -m worker`.", color_scheme="red", size="2"
                ),
            ),
            id="workers",
        ),
    )


def health_row(check) -> rx.Component:  # noqa: ANN001
    return rx.card(
        rx.hstack(
            rx.box(
                class_name="health-dot", background=f"var(--{check['level']}-9)", margin_top="4px"
            ),
            rx.vstack(
                rx.hstack(
                    rx.text(check["name"], weight="bold", size="3"),
                    rx.badge(check["level"], color_scheme=check["level"]),
                    align="center",
                    wrap="wrap",
                ),
                rx.text(check["reason"], size="2"),
                rx.text(
                    check["detail"],
                    size="1",
                    color_scheme="gray",
                    style={"overflow_wrap": "anywhere"},
                ),
                spacing="1",
                min_width="0",
            ),
            align="start",
            spacing="3",
        ),
        class_name="health-check",
        data_level=check["level"],
        data_check=check["name"],
        width="100%",
    )


def health_page() -> rx.Component:
    return page_frame(
        rx.hstack(
            rx.heading("System health", size="6"),
            rx.badge(
                HealthState.overall, color_scheme=HealthState.overall, size="2", id="health-overall"
            ),
            align="center",
        ),
        rx.grid(
            rx.foreach(HealthState.checks, health_row),
            columns=rx.breakpoints(initial="1", md="2"),
            spacing="3",
            width="100%",
            id="health-checks",
        ),
    )
