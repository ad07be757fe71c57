"""A task's page: status and numbers, progress, the live conversation, the diff, attempts, and
the cancel / retry / follow-up actions."""

from __future__ import annotations

import reflex as rx

from app.components.diff_view import diff_view
from app.components.layout import page_frame, writers_only
from app.components.log_view import log_view
from app.components.status_badge import status_badge
from app.state.task_detail import TaskDetailState as S
from app.state.task_detail import TaskLiveState as L
from app.state.task_detail import log_parts


def stat(label: str, value, id_: str) -> rx.Component:  # noqa: ANN001
    return rx.vstack(
        rx.text(label, size="1", color_scheme="gray"),
        rx.text(value, size="3", weight="medium", id=id_),
        spacing="0",
        min_width="0",
    )


def actions() -> rx.Component:
    """Cancel / retry for members and admins; viewers see the read-only badge of the navbar."""
    t = S.task
    return writers_only(_actions(t), hint=False)


def _actions(t) -> rx.Component:  # noqa: ANN001
    return rx.hstack(
        rx.cond(
            (t["status"] == "queued") | (t["status"] == "running"),
            rx.button(
                rx.icon("square", size=14),
                "Cancel",
                color_scheme="red",
                variant="soft",
                on_click=S.cancel,
                id="cancel-task",
            ),
        ),
        rx.cond(
            (t["status"] == "failed") | (t["status"] == "cancelled"),
            rx.button(
                rx.icon("rotate-ccw", size=14),
                "Retry",
                variant="soft",
                on_click=S.retry,
                id="retry-task",
            ),
        ),
        spacing="2",
    )


def header() -> rx.Component:
    t = S.task
    return rx.vstack(
        rx.hstack(
            rx.heading(
                "#",
                t["id"],
                " ",
                t["title"],
                size="5",
                flex="1",
                min_width="0",
                style={"overflow_wrap": "anywhere"},
            ),
            rx.box(status_badge(t["status"], t["tone"]), id="task-status", data_status=t["status"]),
            actions(),
            align="center",
            width="100%",
            wrap="wrap",
        ),
        rx.cond(
            t["reason"] != "", rx.text(t["reason"], color_scheme="gray", size="2", id="task-reason")
        ),
        rx.cond(
            L.max_turns > 0,
            rx.hstack(
                rx.text(
                    "Turn ",
                    L.turn,
                    " of ",
                    L.max_turns,
                    size="2",
                    id="task-progress",
                    white_space="nowrap",
                ),
                rx.progress(
                    value=L.progress_pct,
                    width="100%",
                    color_scheme=rx.cond(t["status"] == "running", "blue", "gray"),
                ),
                align="center",
                width="100%",
            ),
        ),
        rx.grid(
            stat("Turns", t["turns"], "stat-turns"),
            stat(
                "Cost", rx.cond(L.usage.contains("cost"), L.usage["cost"], t["cost"]), "stat-cost"
            ),
            stat(
                "Tokens in / out",
                rx.cond(
                    L.usage.contains("tokens"),
                    L.usage["tokens_in"] + " / " + L.usage["tokens_out"],
                    t["input_tokens"] + " / " + t["output_tokens"],
                ),
                "stat-tokens",
            ),
            stat(
                "Duration",
                rx.cond(  # a running task's clock ticks in the browser (assets/taskdeck.js)
                    t["elapsed_s"] != "",
                    rx.el.span(class_name="elapsed-clock", data_elapsed=t["elapsed_s"]),
                    t["duration"],
                ),
                "stat-duration",
            ),
            stat("Attempts", t["attempts"], "stat-attempts"),
            stat("Model", t["model"], "stat-model"),
            columns=rx.breakpoints(initial="2", sm="3", md="6"),
            spacing="3",
            width="100%",
        ),
        rx.text(
            "Working in ",
            rx.code(t["where"]),
            " · priority ",
            t["priority"],
            " · created ",
            t["created"],
            size="1",
            color_scheme="gray",
            style={"overflow_wrap": "anywhere"},
        ),
        rx.cond(
            S.action_error != "",
            rx.callout(
                S.action_error,
                color_scheme="red",
                size="1",
                icon="triangle-alert",
                id="action-error",
            ),
        ),
        width="100%",
        spacing="2",
    )


def prompt_card() -> rx.Component:
    return rx.el.details(
        rx.el.summary(rx.text.span("Prompt", weight="medium")),
        rx.text(
            S.task["prompt"], white_space="pre-wrap", size="2", style={"overflow_wrap": "anywhere"}
        ),
        class_name="tool-call",
        open=True,
        width="100%",
    )


def follow_up() -> rx.Component:
    return rx.cond(
        (S.task["status"] == "succeeded")
        | (S.task["status"] == "failed")
        | (S.task["status"] == "cancelled"),
        writers_only(_follow_up_form()),
    )


def _follow_up_form() -> rx.Component:
    return rx.form(
        rx.hstack(
            rx.input(
                placeholder="Follow up in the same session...",
                value=S.follow_up_text,
                on_change=S.set_follow_up_text,
                width="100%",
                id="follow-up",
                name="follow_up",
            ),
            rx.button("Send", type="submit", id="send-follow-up"),
            width="100%",
        ),
        on_submit=S.send_follow_up_form,
        width="100%",
    )


def attempts() -> rx.Component:
    return rx.cond(
        S.attempts.length() > 0,
        rx.vstack(
            rx.heading("Attempts", size="3"),
            rx.box(
                rx.table.root(
                    rx.table.header(
                        rx.table.row(
                            *[
                                rx.table.column_header_cell(h)
                                for h in (
                                    "#",
                                    "Kind",
                                    "Status",
                                    "Turns",
                                    "Cost",
                                    "Worker",
                                    "Reason",
                                )
                            ]
                        )
                    ),
                    rx.table.body(
                        rx.foreach(
                            S.attempts,
                            lambda a: rx.table.row(
                                rx.table.cell(a["number"]),
                                rx.table.cell(a["kind"]),
                                rx.table.cell(rx.badge(a["status"])),
                                rx.table.cell(a["turns"]),
                                rx.table.cell(a["cost"]),
                                rx.table.cell(a["worker"]),
                                rx.table.cell(a["reason"]),
                                class_name="attempt-row",
                            ),
                        )
                    ),
                    size="1",
                    width="100%",
                ),
                class_name="table-scroll",
            ),
            width="100%",
            spacing="2",
            id="attempts",
        ),
    )


def task_page() -> rx.Component:
    return page_frame(
        rx.cond(
            S.not_found,
            rx.callout(
                "No task with that id.",
                icon="triangle-alert",
                color_scheme="red",
                id="task-not-found",
            ),
            rx.vstack(
                header(),
                prompt_card(),
                rx.heading("Conversation", size="3"),
                log_view(
                    S.entries,
                    log_parts(),
                    L.typing_html,
                    live=S.task["status"] == "running",
                ),
                follow_up(),
                rx.cond(S.diff.length() > 0, diff_view(S.diff, S.task["diffstat"])),
                attempts(),
                width="100%",
                spacing="3",
            ),
        ),
    )
