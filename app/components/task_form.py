"""The new-task form: the full one (/new) and the dashboard's quick one share fields and state.

Errors appear under the field they name; Ctrl+Enter (Cmd+Enter) submits (assets/taskdeck.js).
"""

from __future__ import annotations

import reflex as rx

from app.components.layout import writers_only
from app.schemas import time_zones
from app.state.new_task import NewTaskState as S

TIME_ZONES = sorted(time_zones())  # suggestions for the time zone field


def field_error(name: str) -> rx.Component:
    return rx.cond(
        S.errors.contains(name),
        rx.text(
            S.errors[name], color_scheme="red", size="1", class_name="field-error", data_field=name
        ),
    )


def labelled(label: str, control: rx.Component, name: str, hint: str = "") -> rx.Component:
    return rx.vstack(
        rx.text(label, size="2", weight="medium", as_="label", html_for=name),
        control,
        rx.cond(
            S.errors.contains(name),
            field_error(name),
            rx.text(hint, size="1", color_scheme="gray") if hint else rx.fragment(),
        ),
        spacing="1",
        width="100%",
        min_width="0",
    )


def text_field(name: str, placeholder: str, datalist: str | None = None, **props) -> rx.Component:  # noqa: ANN003
    attrs = {"list": datalist} if datalist else {}
    return rx.input(
        name=name, id=name, placeholder=placeholder, width="100%", custom_attrs=attrs, **props
    )


def datalists() -> rx.Component:
    return rx.fragment(
        rx.el.datalist(
            rx.foreach(S.recent_places, lambda p: rx.el.option(value=p)), id="recent-places"
        ),
        rx.el.datalist(rx.foreach(S.models, lambda m: rx.el.option(value=m)), id="model-names"),
        rx.el.datalist(*[rx.el.option(value=zone) for zone in TIME_ZONES], id="time-zones"),
    )


def row(*children: rx.Component) -> rx.Component:
    return rx.flex(
        *children, direction=rx.breakpoints(initial="column", sm="row"), spacing="3", width="100%"
    )


def task_form(full: bool = True) -> rx.Component:
    """The form; `full=False` keeps the prompt, the place and the submit button. Viewers get
    the read-only hint instead."""
    fields = [
        labelled(
            "Prompt",
            rx.text_area(
                name="prompt",
                id="prompt",
                placeholder="What should Claude Code do?",
                rows="6" if full else "3",
                width="100%",
                resize="vertical",
            ),
            "prompt",
        ),
        row(
            labelled(
                "Working directory",
                text_field("cwd", "/path/to/project", "recent-places"),
                "cwd",
                "empty: a fresh directory",
            ),
            labelled(
                "Git repository",
                text_field("repo", "/path/to/repo", "recent-places"),
                "repo",
                "runs in its own worktree" if full else "",
            ),
        ),
    ]
    if full:
        fields += [
            row(
                labelled(
                    "Base ref",
                    text_field("base_ref", "main"),
                    "base_ref",
                    "branch or commit (repository only)",
                ),
                labelled("Model", text_field("model", "default", "model-names"), "model"),
            ),
            row(
                labelled(
                    "Max turns", text_field("max_turns", "20", input_mode="numeric"), "max_turns"
                ),
                labelled(
                    "Priority",
                    rx.select(
                        ["high", "default", "low"],
                        name="priority",
                        default_value="default",
                        width="100%",
                    ),
                    "priority",
                ),
                labelled(
                    "Permission mode",
                    rx.select(
                        ["acceptEdits", "default", "plan", "bypassPermissions"],
                        name="permission_mode",
                        default_value="acceptEdits",
                        width="100%",
                    ),
                    "permission_mode",
                ),
            ),
            row(
                labelled(
                    "Run at",
                    rx.input(name="run_at", id="run_at", type="datetime-local", width="100%"),
                    "run_at",
                    "empty: now",
                ),
                labelled(
                    "Repeat (cron)",
                    text_field("cron", "0 3 * * 1-5"),
                    "cron",
                    "5 fields: minute hour day month weekday",
                ),
                labelled(
                    "Time zone",
                    text_field("timezone", "UTC", "time-zones"),
                    "timezone",
                    "of the time or the cron (IANA name)",
                ),
            ),
            row(
                labelled(
                    "Time limit (s)",
                    text_field("timeout_s", "3600", input_mode="numeric"),
                    "timeout_s",
                    "wall clock of one attempt",
                ),
                labelled(
                    "Max attempts",
                    text_field("max_attempts", "3", input_mode="numeric"),
                    "max_attempts",
                    "retries of retryable failures",
                ),
            ),
        ]
    return writers_only(_form(fields, full))


def _form(fields: list[rx.Component], full: bool) -> rx.Component:
    return rx.form(
        rx.vstack(
            datalists(),
            *fields,
            field_error("form"),
            rx.cond(
                S.scheduled != "",
                rx.callout(
                    S.scheduled,
                    color_scheme="green",
                    size="1",
                    icon="calendar-clock",
                    id="scheduled",
                ),
            ),
            rx.cond(
                S.form_error != "",
                rx.callout(
                    S.form_error,
                    color_scheme="red",
                    size="1",
                    icon="triangle-alert",
                    id="form-error",
                ),
            ),
            rx.hstack(
                rx.button(rx.icon("play", size=14), "Submit task", type="submit", id="submit-task"),
                rx.text(
                    rx.el.kbd("Ctrl"),
                    "+",
                    rx.el.kbd("Enter"),
                    " submits",
                    size="1",
                    color_scheme="gray",
                ),
                rx.spacer(),
                rx.fragment() if full else rx.link("More options", href="/new", size="2"),
                align="center",
                width="100%",
                wrap="wrap",
            ),
            spacing="3",
            width="100%",
        ),
        on_submit=S.submit,
        reset_on_submit=False,
        width="100%",
        id="task-form",
        custom_attrs={"data-keyboard-submit": "true"},
    )
