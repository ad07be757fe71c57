"""A task's conversation: assistant text as markdown, tool calls folded with input and result,
errors highlighted; scrolls itself while the reader is at the bottom (assets/taskdeck.js)."""

from __future__ import annotations

import reflex as rx


def model_markdown(text) -> rx.Component:  # noqa: ANN001
    """What the model writes, as GitHub-flavoured markdown. Raw HTML stays text (it is the
    model's output, not ours), and no TeX math: `$` in shell snippets and prices must not turn
    into formulas. Both plugins are also the costly part of rendering an entry."""
    return rx.markdown(text, use_raw=False, use_math=False, use_katex=False)


def tool_call(item) -> rx.Component:  # noqa: ANN001
    """A tool call, collapsed: its one-line summary; open: its input and its result."""
    return rx.el.details(
        rx.el.summary(
            item["summary"],
            rx.match(
                item["result_state"],
                ("ok", rx.text.span("  ✓", color="var(--green-11)")),
                ("error", rx.text.span("  ✗ error", color="var(--red-11)")),
                rx.text.span("  …", color="var(--gray-11)"),
            ),
        ),
        rx.text("Input", size="1", color_scheme="gray"),
        rx.el.pre(item["body"], class_name="log-pre tool-input"),
        rx.cond(
            item["result_state"] != "pending",
            rx.fragment(
                rx.text("Result", size="1", color_scheme="gray"),
                rx.el.pre(item["result"], class_name="log-pre tool-result"),
            ),
        ),
        class_name="tool-call",
        data_state=item["result_state"],
    )


FIELDS = ("kind", "label", "body", "tone", "time", "error", "summary", "result", "result_state")


@rx.memo
def log_entry_memo(
    kind: rx.Var[str],
    label: rx.Var[str],
    body: rx.Var[str],
    tone: rx.Var[str],
    time: rx.Var[str],
    error: rx.Var[str],
    summary: rx.Var[str],
    result: rx.Var[str],
    result_state: rx.Var[str],
) -> rx.Component:
    """One entry as a memoized React component: its props are plain strings, so an entry whose
    text did not change is not rendered again when the list around it grows."""
    item = {
        "kind": kind,
        "label": label,
        "body": body,
        "tone": tone,
        "time": time,
        "error": error,
        "summary": summary,
        "result": result,
        "result_state": result_state,
    }
    return log_entry_view(item)


def log_entry(item) -> rx.Component:  # noqa: ANN001
    """One event of the conversation (in a foreach)."""
    return log_entry_memo(**{name: item[name] for name in FIELDS})


def log_entry_view(item) -> rx.Component:  # noqa: ANN001
    body = rx.match(
        item["kind"],
        ("text", rx.box(model_markdown(item["body"]), class_name="assistant-text")),
        ("tool_use", tool_call(item)),
        ("tool_result", rx.el.pre(item["body"], class_name="log-pre")),
        (
            "thinking",
            rx.text(
                item["body"],
                size="2",
                color_scheme="gray",
                white_space="pre-wrap",
                font_style="italic",
            ),
        ),
        ("stderr", rx.el.pre(item["body"], class_name="log-pre")),
        (
            "raw",
            rx.el.details(
                rx.el.summary("details"),
                rx.el.pre(item["body"], class_name="log-pre"),
                class_name="tool-call",
            ),
        ),
        (
            "prompt",
            rx.text(
                item["body"], size="2", white_space="pre-wrap", style={"overflow_wrap": "anywhere"}
            ),
        ),
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
        data_error=item["error"],
        padding_y="2",
        border_bottom="1px solid var(--gray-a4)",
        width="100%",
    )


def log_view(events, typing, tail=None) -> rx.Component:  # noqa: ANN001
    """The scrolling conversation plus the text being typed, and a "jump to latest" button."""
    return rx.fragment(
        rx.box(
            rx.box(  # a plain block, not a flex column: appending stays cheap with 1,000s
                rx.foreach(events, log_entry),
                rx.foreach(tail, log_entry) if tail is not None else rx.fragment(),
                rx.cond(
                    typing != "", rx.box(model_markdown(typing), class_name="typing", opacity="0.8")
                ),
                id="event-log",
                width="100%",
            ),
            id="log-scroll",
        ),
        rx.button(
            rx.icon("arrow-down", size=14),
            "Jump to latest",
            id="jump-latest",
            size="1",
            variant="soft",
        ),
    )
