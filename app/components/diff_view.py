"""The changes a task made in its git workspace: files changed, then each file's diff, unified
or side by side (a toggle remembered per browser, see app/state/diff_view.py).

Rows come from app/diff_display.py. Colours are Radix alpha colours, so they follow light and
dark mode. Unified lines wrap (a phone never scrolls sideways); the side-by-side view keeps a
minimum width and scrolls inside its own box when the screen is narrower.
"""

from __future__ import annotations

import reflex as rx

from app.state.diff_view import DiffViewState


def unified_line(line) -> rx.Component:  # noqa: ANN001
    return rx.el.div(
        rx.el.span(line.old, class_name="diff-no"),
        rx.el.span(line.new, class_name="diff-no"),
        rx.el.span(line.text, class_name="diff-tx"),
        class_name="diff-row",
        data_kind=line.kind,
    )


def split_pair(pair) -> rx.Component:  # noqa: ANN001
    across = (pair.left_kind == "hunk") | (pair.left_kind == "meta")
    return rx.cond(
        across,
        rx.el.div(
            rx.el.span(pair.left_text, class_name="diff-tx"),
            class_name="diff-row diff-across",
            data_kind=pair.left_kind,
        ),
        rx.el.div(
            rx.el.span(pair.left_no, class_name="diff-no", data_kind=pair.left_kind),
            rx.el.span(pair.left_text, class_name="diff-tx", data_kind=pair.left_kind),
            rx.el.span(pair.right_no, class_name="diff-no", data_kind=pair.right_kind),
            rx.el.span(pair.right_text, class_name="diff-tx", data_kind=pair.right_kind),
            class_name="diff-row",
        ),
    )


def diff_file(file) -> rx.Component:  # noqa: ANN001
    return rx.el.details(
        rx.el.summary(
            rx.text.span(file.name),
            "  ",
            rx.text.span(file.added, color="var(--green-11)"),
            " ",
            rx.text.span(file.removed, color="var(--red-11)"),
        ),
        rx.cond(
            DiffViewState.mode == "split",
            rx.el.div(
                rx.el.div(rx.foreach(file.pairs, split_pair), class_name="diff-split"),
                class_name="diff-box",
            ),
            rx.el.div(
                rx.el.div(rx.foreach(file.lines, unified_line), class_name="diff-unified"),
                class_name="diff-box",
            ),
        ),
        rx.cond(file.hidden != "", rx.text(file.hidden, size="1", color_scheme="gray")),
        class_name="diff-file",
        open=True,
    )


def diff_view(files, stat) -> rx.Component:  # noqa: ANN001
    """Files changed with +/- counts, each expandable to its diff; the view toggle."""
    return rx.vstack(
        rx.hstack(
            rx.heading("Changes", size="3"),
            rx.text(stat, size="2", color_scheme="gray"),
            rx.spacer(),
            rx.segmented_control.root(
                rx.segmented_control.item("Unified", value="unified"),
                rx.segmented_control.item("Side by side", value="split"),
                value=DiffViewState.mode,
                on_change=DiffViewState.set_mode,
                size="1",
                id="diff-mode",
            ),
            align="center",
            wrap="wrap",
            width="100%",
        ),
        rx.foreach(files, diff_file),
        id="diff-view",
        data_mode=DiffViewState.mode,
        width="100%",
        spacing="2",
    )
