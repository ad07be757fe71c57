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
                ("ok", rx.el.span("  ✓", class_name="result-mark", data_state="ok")),
                ("error", rx.el.span("  ✗ error", class_name="result-mark", data_state="error")),
                rx.el.span("  …", class_name="result-mark"),
            ),
        ),
        rx.el.div("Input", class_name="entry-sub"),
        rx.el.pre(item["body"], class_name="log-pre tool-input"),
        rx.cond(
            item["result_state"] != "pending",
            rx.fragment(
                rx.el.div("Result", class_name="entry-sub"),
                rx.el.pre(item["result"], class_name="log-pre tool-result"),
            ),
        ),
        class_name="tool-call",
        data_state=item["result_state"],
    )


FIELDS = (
    "kind",
    "label",
    "body",
    "tone",
    "time",
    "error",
    "summary",
    "result",
    "result_state",
    "markdown",
)


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
    markdown: rx.Var[str],
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
        "markdown": markdown,
    }
    return log_entry_view(item)


def log_entry(item) -> rx.Component:  # noqa: ANN001
    """One event of the conversation (in a foreach)."""
    return log_entry_memo(**{name: item[name] for name in FIELDS})


@rx.memo
def log_entries_memo(entries: rx.Var[list[dict[str, str]]]) -> rx.Component:
    """A list of entries (the stored conversation, or one live part) as a memoized component:
    it renders again only when its own list changes, not when another var of its state does
    (the stored conversation shares TaskDetailState with the task row, refreshed on every
    status change)."""
    return rx.foreach(entries, log_entry)


def log_part(entries) -> rx.Component:  # noqa: ANN001
    """One list of entries in a block of its own (class log-part): once it has scrolled out of
    sight the browser skips its layout and paint (content-visibility in assets/taskdeck.css)."""
    return rx.el.div(log_entries_memo(entries=entries), class_name="log-part")


def model_text(item, class_name: str) -> rx.Component:  # noqa: ANN001
    """The model's text: markdown when it has markdown in it, else plain text (a markdown render
    is the costliest part of a new entry, and most short messages have none)."""
    return rx.cond(
        item["markdown"] == "true",
        rx.box(model_markdown(item["body"]), class_name=class_name),
        rx.el.div(item["body"], class_name=f"{class_name} plain-text"),
    )


def log_entry_view(item) -> rx.Component:  # noqa: ANN001
    """One entry in plain elements (a head line: label and time; then the body): the log is the
    page's busiest part, and a plain element renders several times faster than a themed one."""
    body = rx.match(
        item["kind"],
        ("text", model_text(item, "assistant-text")),
        ("result", model_text(item, "result-text")),
        ("tool_use", tool_call(item)),
        ("tool_result", rx.el.pre(item["body"], class_name="log-pre")),
        ("thinking", rx.el.div(item["body"], class_name="plain-text thinking")),
        ("stderr", rx.el.pre(item["body"], class_name="log-pre")),
        (
            "raw",
            rx.el.details(
                rx.el.summary("details"),
                rx.el.pre(item["body"], class_name="log-pre"),
                class_name="tool-call",
            ),
        ),
        rx.cond(item["body"] != "", rx.el.div(item["body"], class_name="plain-text")),
    )
    return rx.el.div(
        rx.el.div(
            rx.el.span(item["label"], class_name="entry-label", data_accent_color=item["tone"]),
            rx.el.span(item["time"], class_name="entry-time"),
            class_name="entry-head",
        ),
        body,
        class_name="log-entry",
        data_kind=item["kind"],
        data_error=item["error"],
    )


def log_view(events, parts, typing, typing_markdown, live) -> rx.Component:  # noqa: ANN001
    """The scrolling conversation (`events`, then each list of `parts`) plus the text being
    typed (rendered as markdown once it has markdown in it), and a "jump to latest" button.
    While `live` (the task runs) the log has its full height from the start, so the page below
    it does not move down with each new entry (assets/taskdeck.css)."""
    return rx.fragment(
        rx.box(
            rx.box(  # a plain block, not a flex column: appending stays cheap with 1,000s
                log_part(events),
                *[log_part(part) for part in parts],
                rx.cond(
                    typing != "",
                    rx.box(
                        rx.cond(
                            typing_markdown,
                            model_markdown(typing),
                            rx.el.div(typing, class_name="plain-text"),
                        ),
                        class_name="typing",
                        opacity="0.8",
                    ),
                ),
                rx.el.div(id="log-end"),  # where the log's content ends (assets/taskdeck.js)
                id="event-log",
                width="100%",
            ),
            id="log-scroll",
            data_live=rx.cond(live, "true", "false"),
        ),
        rx.button(
            rx.icon("arrow-down", size=14),
            "Jump to latest",
            id="jump-latest",
            size="1",
            variant="soft",
        ),
    )
