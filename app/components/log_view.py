"""A task's event log: one entry per event, text as markdown, tool calls collapsible."""

from __future__ import annotations

import reflex as rx


def log_entry(item) -> rx.Component:  # noqa: ANN001
    body = rx.match(
        item["kind"],
        ("text", rx.markdown(item["body"])),
        ("tool_use", rx.code_block(item["body"], language="json", wrap_long_lines=True,
                                   custom_style={"fontSize": "12px"})),
        ("tool_result", rx.el.pre(item["body"], class_name="log-pre")),
        ("stderr", rx.el.pre(item["body"], class_name="log-pre")),
        ("raw", rx.el.pre(item["body"], class_name="log-pre")),
        rx.cond(item["body"] != "", rx.text(item["body"], size="2", white_space="pre-wrap")),
    )
    return rx.box(
        rx.hstack(
            rx.badge(item["label"], color_scheme=item["tone"], variant="soft"),
            rx.spacer(),
            rx.text(item["time"], size="1", color_scheme="gray"),
            align="center",
            width="100%",
        ),
        body,
        class_name="log-entry",
        data_kind=item["kind"],
        padding_y="2",
        border_bottom="1px solid var(--gray-a4)",
        width="100%",
    )


def log_view(events, typing) -> rx.Component:  # noqa: ANN001
    return rx.vstack(
        rx.foreach(events, log_entry),
        rx.cond(typing != "", rx.box(rx.markdown(typing), class_name="typing", opacity="0.8")),
        id="event-log",
        spacing="0",
        width="100%",
    )
