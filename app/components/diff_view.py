"""The changes a task made in its git workspace: files changed, then each file's unified diff."""

from __future__ import annotations

import reflex as rx


def diff_file(file) -> rx.Component:  # noqa: ANN001
    return rx.el.details(
        rx.el.summary(
            rx.text.span(file["name"]),
            "  ",
            rx.text.span(file["added"], color="var(--green-11)"),
            " ",
            rx.text.span(file["removed"], color="var(--red-11)"),
        ),
        rx.code_block(
            file["text"],
            language="diff",
            wrap_long_lines=True,
            custom_style={"fontSize": "12px", "margin": "4px 0"},
            width="100%",
        ),
        class_name="diff-file",
        open=True,
    )


def diff_view(files, stat) -> rx.Component:  # noqa: ANN001
    """Files changed with +/- counts, each expandable to its unified diff."""
    return rx.vstack(
        rx.hstack(
            rx.heading("Changes", size="3"),
            rx.text(stat, size="2", color_scheme="gray"),
            align="center",
            wrap="wrap",
        ),
        rx.foreach(files, diff_file),
        id="diff-view",
        width="100%",
        spacing="2",
    )
