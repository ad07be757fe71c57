"""TaskCard (one task: title, status, where, turns, tokens, cost -- so far, for a running task)
and the list of them."""

from __future__ import annotations

import reflex as rx

from app.components.status_badge import status_indicator
from app.state.auth import AuthState

ELLIPSIS = {"overflow": "hidden", "text_overflow": "ellipsis", "white_space": "nowrap"}


def task_card(task, selectable: bool = False, selected=None, on_toggle=None) -> rx.Component:  # noqa: ANN001
    """One task as a card linking to its page; with a checkbox when `selectable` (for members
    and admins: the selection feeds the bulk actions, which viewers do not get)."""
    body = rx.link(
        rx.vstack(
            rx.hstack(
                rx.text("#", task["id"], color_scheme="gray", size="2"),
                rx.text(
                    task["title"],
                    weight="medium",
                    size="3",
                    style=ELLIPSIS,
                    flex="1",
                    min_width="0",
                ),
                status_indicator(task["status"], task["tone"]),
                align="center",
                width="100%",
            ),
            rx.hstack(
                rx.text(task["created"], size="1", color_scheme="gray"),
                rx.badge(task["priority"], variant="outline", size="1", color_scheme="gray"),
                rx.text(task["model"], size="1", color_scheme="gray"),
                rx.text("turns ", task["turns"], size="1", color_scheme="gray"),
                rx.text(
                    task["tokens"],
                    " tokens",
                    size="1",
                    color_scheme="gray",
                    class_name="task-tokens",
                ),
                rx.text(task["cost"], size="1", color_scheme="gray", class_name="task-cost"),
                rx.text(task["duration"], size="1", color_scheme="gray"),
                spacing="3",
                wrap="wrap",
                align="center",
            ),
            rx.cond(
                task["reason"] != "",
                rx.text(
                    task["reason"], size="1", color_scheme="gray", style=ELLIPSIS, width="100%"
                ),
            ),
            spacing="1",
            width="100%",
            min_width="0",
        ),
        href=task["href"],
        underline="none",
        color="inherit",
        flex="1",
        min_width="0",
    )
    content = body
    if selectable:
        content = rx.hstack(
            rx.cond(
                AuthState.can_write,
                rx.checkbox(
                    checked=selected,
                    on_change=on_toggle,
                    class_name="task-select",
                    aria_label="select task",
                    size="2",
                    margin_top="4px",
                ),
            ),
            body,
            align="start",
            spacing="3",
            width="100%",
        )
    return rx.card(
        content,
        width="100%",
        class_name="task-card",
        data_status=task["status"],
        data_task_id=task["id"],
    )


def task_list(tasks) -> rx.Component:  # noqa: ANN001
    """A column of task cards."""
    return rx.vstack(
        rx.foreach(tasks, lambda task: task_card(task)),
        spacing="2",
        width="100%",
        id="task-list",
    )
