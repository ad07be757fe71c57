"""A task's page: status, numbers, the live conversation log, attempts and actions."""

from __future__ import annotations

import reflex as rx

from app.components.layout import page_frame
from app.components.log_view import log_view
from app.components.status_badge import status_badge
from app.state.task_detail import TaskDetailState as S


def stat(label: str, value, id_: str) -> rx.Component:  # noqa: ANN001
    return rx.vstack(rx.text(label, size="1", color_scheme="gray"),
                     rx.text(value, size="3", weight="medium", id=id_), spacing="0")


def header() -> rx.Component:
    t = S.task
    return rx.vstack(
        rx.hstack(
            rx.heading("#", t["id"], " ", t["title"], size="5", flex="1", min_width="0"),
            rx.box(status_badge(t["status"], t["tone"]), id="task-status", data_status=t["status"]),
            align="center",
            width="100%",
            wrap="wrap",
        ),
        rx.cond(t["reason"] != "", rx.text(t["reason"], color_scheme="gray", size="2",
                                           id="task-reason")),
        rx.grid(
            stat("Turns", t["turns"], "stat-turns"),
            stat("Cost", t["cost"], "stat-cost"),
            stat("Tokens in / out", t["input_tokens"] + " / " + t["output_tokens"], "stat-tokens"),
            stat("Duration", t["duration"], "stat-duration"),
            stat("Attempts", t["attempts"], "stat-attempts"),
            stat("Model", t["model"], "stat-model"),
            columns=rx.breakpoints(initial="2", sm="3", md="6"),
            spacing="3",
            width="100%",
        ),
        rx.text("Working in ", rx.code(t["where"]), size="1", color_scheme="gray"),
        rx.hstack(
            rx.cond((t["status"] == "queued") | (t["status"] == "running"),
                    rx.button("Cancel", color_scheme="red", variant="soft", on_click=S.cancel,
                              id="cancel-task")),
            rx.cond((t["status"] == "failed") | (t["status"] == "cancelled"),
                    rx.button("Retry", variant="soft", on_click=S.retry, id="retry-task")),
            spacing="2",
        ),
        rx.cond(S.action_error != "", rx.text(S.action_error, color_scheme="red", size="2")),
        width="100%",
        spacing="2",
    )


def prompt_card() -> rx.Component:
    return rx.card(rx.text("Prompt", size="1", color_scheme="gray"),
                   rx.text(S.task["prompt"], white_space="pre-wrap"), width="100%")


def follow_up() -> rx.Component:
    return rx.cond(
        (S.task["status"] == "succeeded") | (S.task["status"] == "failed"),
        rx.hstack(
            rx.input(placeholder="Follow up in the same session...", value=S.follow_up_text,
                     on_change=S.set_follow_up_text, width="100%", id="follow-up"),
            rx.button("Send", on_click=S.send_follow_up, id="send-follow-up"),
            width="100%",
        ),
    )


def attempts() -> rx.Component:
    return rx.cond(
        S.attempts.length() > 0,
        rx.vstack(
            rx.heading("Attempts", size="3"),
            rx.foreach(
                S.attempts,
                lambda a: rx.hstack(
                    rx.text("#", a["number"], " ", a["kind"], size="2"),
                    rx.badge(a["status"]),
                    rx.text(a["reason"], size="1", color_scheme="gray"),
                    rx.text(a["worker"], size="1", color_scheme="gray"),
                    wrap="wrap",
                    spacing="2",
                ),
            ),
            width="100%",
            spacing="1",
        ),
    )


def task_page() -> rx.Component:
    return page_frame(
        rx.cond(
            S.not_found,
            rx.callout("No task with that id.", icon="triangle-alert", color_scheme="red"),
            rx.vstack(
                header(),
                prompt_card(),
                rx.heading("Log", size="3"),
                log_view(S.events, S.typing),
                follow_up(),
                attempts(),
                width="100%",
                spacing="3",
            ),
        ),
    )
