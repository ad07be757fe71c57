"""The dashboard: counts by status, a quick new-task form, running tasks with their progress,
live charts, and the latest tasks."""

from __future__ import annotations

import reflex as rx

from app.components.charts import chart_card
from app.components.layout import page_frame, section
from app.components.status_badge import status_indicator
from app.components.task_form import task_form
from app.components.task_list import task_list
from app.state.dashboard import DashboardState as S

STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"]
TONES = {
    "queued": "gray",
    "running": "blue",
    "succeeded": "green",
    "failed": "red",
    "cancelled": "orange",
}


def counts() -> rx.Component:
    return rx.grid(
        *[
            rx.link(
                rx.card(
                    rx.vstack(
                        rx.hstack(
                            rx.box(
                                class_name="status-dot",
                                data_status=status,
                                background=f"var(--{TONES[status]}-9)",
                            ),
                            rx.text(status, size="1", color_scheme="gray"),
                            align="center",
                            spacing="1",
                        ),
                        rx.heading(S.counts[status].to_string(), size="6", id=f"count-{status}"),
                        spacing="1",
                    ),
                    width="100%",
                ),
                href=f"/tasks?status={status}",
                underline="none",
                color="inherit",
            )
            for status in STATUSES
        ],
        columns=rx.breakpoints(initial="2", sm="3", md="5"),
        spacing="3",
        width="100%",
        id="counts",
    )


def running_item(task) -> rx.Component:  # noqa: ANN001
    return rx.link(
        rx.vstack(
            rx.hstack(
                status_indicator(task["status"], task["tone"]),
                rx.text(
                    "#",
                    task["id"],
                    " ",
                    task["title"],
                    size="2",
                    weight="medium",
                    style={
                        "overflow": "hidden",
                        "text_overflow": "ellipsis",
                        "white_space": "nowrap",
                    },
                    flex="1",
                    min_width="0",
                ),
                rx.text(task["elapsed"], size="1", color_scheme="gray", white_space="nowrap"),
                align="center",
                width="100%",
            ),
            rx.hstack(
                rx.box(
                    rx.box(
                        width=task["pct"] + "%",
                        height="100%",
                        background="var(--accent-9)",
                        border_radius="4px",
                        transition="width 0.4s",
                    ),
                    height="6px",
                    width="100%",
                    background="var(--gray-a4)",
                    border_radius="4px",
                    class_name="turn-bar",
                ),
                rx.text(
                    "turn ",
                    task["turn"],
                    "/",
                    task["max_turns"],
                    size="1",
                    color_scheme="gray",
                    white_space="nowrap",
                ),
                rx.text(
                    task["tokens"],
                    " tok · ",
                    task["cost"],
                    size="1",
                    color_scheme="gray",
                    white_space="nowrap",
                    class_name="running-usage",
                ),
                align="center",
                width="100%",
            ),
            spacing="1",
            width="100%",
        ),
        href=task["href"],
        underline="none",
        color="inherit",
        width="100%",
        class_name="running-task",
        data_task_id=task["id"],
    )


def running() -> rx.Component:
    return section(
        "Running now",
        rx.cond(
            S.running.length() > 0,
            rx.vstack(rx.foreach(S.running, running_item), spacing="3", width="100%"),
            rx.text("Nothing is running.", size="2", color_scheme="gray"),
        ),
        id="running-tasks",
    )


def chart_grid() -> rx.Component:
    return rx.grid(
        chart_card("Finished per hour (last 24 h)", S.finished_fig, "chart-finished"),
        chart_card("Queue depth", S.depth_fig, "chart-depth"),
        chart_card("Duration of finished tasks (7 days)", S.duration_fig, "chart-duration"),
        chart_card("Cost and tokens per day", S.cost_fig, "chart-cost"),
        columns=rx.breakpoints(initial="1", md="2"),
        spacing="3",
        width="100%",
    )


def dashboard() -> rx.Component:
    return page_frame(
        counts(),
        rx.grid(
            section("New task", task_form(full=False), id="new-task"),
            running(),
            columns=rx.breakpoints(initial="1", md="2"),
            spacing="3",
            width="100%",
        ),
        chart_grid(),
        rx.hstack(
            rx.heading("Latest tasks", size="4"),
            rx.spacer(),
            rx.link("All tasks", href="/tasks", size="2"),
            width="100%",
            align="center",
        ),
        rx.cond(
            S.recent.length() > 0,
            task_list(S.recent),
            rx.text("No tasks yet: submit one above.", color_scheme="gray"),
        ),
    )
