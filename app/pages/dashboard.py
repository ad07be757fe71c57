"""The dashboard: counts by status, the new-task form and the live task list."""

from __future__ import annotations

import reflex as rx

from app.components.layout import page_frame
from app.components.task_list import task_list
from app.state.tasks import TaskListState

STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"]


def field_error(name: str) -> rx.Component:
    return rx.cond(
        TaskListState.errors.contains(name),
        rx.text(TaskListState.errors[name], color_scheme="red", size="1", class_name="field-error",
                data_field=name),
    )


def labelled(label: str, control: rx.Component, name: str) -> rx.Component:
    return rx.vstack(rx.text(label, size="2", weight="medium"), control, field_error(name),
                     spacing="1", width="100%")


def new_task_form() -> rx.Component:
    return rx.card(
        rx.form(
            rx.vstack(
                rx.heading("New task", size="4", id="new-task"),
                labelled(
                    "Prompt",
                    rx.text_area(name="prompt", placeholder="What should Claude Code do?",
                                 rows="4", width="100%", id="prompt",
                                 enter_key_submit=True),
                    "prompt",
                ),
                rx.flex(
                    labelled("Working directory",
                             rx.input(name="cwd", placeholder="/path/to/project (empty: a fresh one)",
                                      width="100%", id="cwd"), "cwd"),
                    labelled("Git repository",
                             rx.input(name="repo", placeholder="/path/to/repo (optional)",
                                      width="100%", id="repo"), "repo"),
                    direction=rx.breakpoints(initial="column", md="row"),
                    spacing="3",
                    width="100%",
                ),
                rx.flex(
                    labelled("Model", rx.input(name="model", placeholder="default", width="100%",
                                               id="model"), "model"),
                    labelled("Max turns", rx.input(name="max_turns", placeholder="20",
                                                   width="100%", id="max_turns",
                                                   input_mode="numeric"), "max_turns"),
                    labelled("Priority", rx.select(["high", "default", "low"], name="priority",
                                                   default_value="default", width="100%"),
                             "priority"),
                    direction=rx.breakpoints(initial="column", sm="row"),
                    spacing="3",
                    width="100%",
                ),
                field_error("form"),
                rx.cond(TaskListState.form_error != "",
                        rx.text(TaskListState.form_error, color_scheme="red", size="2")),
                rx.hstack(
                    rx.button("Submit task", type="submit", id="submit-task"),
                    rx.text("Ctrl+Enter submits", size="1", color_scheme="gray"),
                    align="center",
                ),
                spacing="3",
                width="100%",
            ),
            on_submit=TaskListState.submit,
            reset_on_submit=False,
            width="100%",
        ),
        width="100%",
    )


def counts() -> rx.Component:
    return rx.grid(
        *[
            rx.card(
                rx.vstack(
                    rx.text(status, size="1", color_scheme="gray"),
                    rx.heading(TaskListState.counts[status].to_string(), size="6",
                               id=f"count-{status}"),
                    spacing="0",
                ),
            )
            for status in STATUSES
        ],
        columns=rx.breakpoints(initial="2", sm="3", md="5"),
        spacing="3",
        width="100%",
    )


def filters() -> rx.Component:
    return rx.flex(
        rx.select(["all", *STATUSES], value=TaskListState.status_filter,
                  on_change=TaskListState.set_status_filter),
        rx.input(placeholder="Search prompts", value=TaskListState.search,
                 on_change=TaskListState.set_search.debounce(300), width="100%"),
        spacing="2",
        width="100%",
    )


def dashboard() -> rx.Component:
    return page_frame(
        counts(),
        new_task_form(),
        rx.heading("Tasks", size="4"),
        filters(),
        rx.cond(
            TaskListState.tasks.length() > 0,
            task_list(TaskListState.tasks),
            rx.text("No tasks yet: submit one above.", color_scheme="gray"),
        ),
    )
