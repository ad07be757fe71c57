"""The task list: one card per task (title, status, where, cost), linking to its page."""

from __future__ import annotations

import reflex as rx

from app.components.status_badge import status_badge


def task_card(task) -> rx.Component:  # noqa: ANN001
    return rx.link(
        rx.card(
            rx.vstack(
                rx.hstack(
                    rx.text("#", task["id"], color_scheme="gray", size="2"),
                    rx.text(task["title"], weight="medium", size="3", trim="both",
                            style={"overflow": "hidden", "text_overflow": "ellipsis",
                                   "white_space": "nowrap"}, flex="1", min_width="0"),
                    status_badge(task["status"], task["tone"]),
                    align="center",
                    width="100%",
                ),
                rx.hstack(
                    rx.text(task["created"], size="1", color_scheme="gray"),
                    rx.text(task["model"], size="1", color_scheme="gray"),
                    rx.text("turns ", task["turns"], size="1", color_scheme="gray"),
                    rx.text(task["cost"], size="1", color_scheme="gray"),
                    rx.text(task["reason"], size="1", color_scheme="gray", trim="both"),
                    spacing="3",
                    wrap="wrap",
                ),
                spacing="1",
                width="100%",
            ),
            width="100%",
        ),
        href=task["href"],
        underline="none",
        color="inherit",
        width="100%",
        class_name="task-card",
        data_status=task["status"],
    )


def task_list(tasks) -> rx.Component:  # noqa: ANN001
    return rx.vstack(
        rx.foreach(tasks, task_card),
        spacing="2",
        width="100%",
        id="task-list",
    )
