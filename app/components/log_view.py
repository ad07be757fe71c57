"""A task's conversation: each entry's HTML from the server (app/log_html.py: assistant text as
markdown, tool calls folded with input and result, errors highlighted) in memoized elements;
scrolls itself while the reader is at the bottom (assets/taskdeck.js)."""

from __future__ import annotations

import reflex as rx

from app.log_html import code_css


@rx.memo
def log_entry_memo(kind: rx.Var[str], error: rx.Var[str], html: rx.Var[str]) -> rx.Component:
    """One entry: its HTML, made on the server (app/log_html.py), in an element of its own. A
    memoized component with string props, so an entry that did not change is not rendered again
    when the list around it grows."""
    return rx.html(html, class_name="log-entry", data_kind=kind, data_error=error)


def log_entry(row) -> rx.Component:  # noqa: ANN001
    """One row of a list (in a foreach): [kind, error, HTML]."""
    return log_entry_memo(kind=row[0], error=row[1], html=row[2])


@rx.memo
def log_entries_memo(entries: rx.Var[list[list[str]]]) -> rx.Component:
    """A list of entries (the stored conversation, or one live part) as a memoized component:
    it renders again only when its own list changes, not when another var of its state does
    (the stored conversation shares TaskDetailState with the task row, refreshed on every
    status change)."""
    return rx.foreach(entries, log_entry)


def log_part(entries) -> rx.Component:  # noqa: ANN001
    """One list of entries in a block of its own (class log-part): once it has scrolled out of
    sight the browser skips its layout and paint (content-visibility in assets/taskdeck.css)."""
    return rx.el.div(log_entries_memo(entries=entries), class_name="log-part")


def log_view(entries, parts, typing_html, live) -> rx.Component:  # noqa: ANN001
    """The scrolling conversation (`entries`, then each list of `parts`) plus the text being
    typed (its HTML, as markdown once it has markdown in it), and a "jump to latest" button.
    While `live` (the task runs) the log has its full height from the start, so the page below
    it does not move down with each new entry (assets/taskdeck.css)."""
    return rx.fragment(
        rx.el.style(code_css()),  # the colours of code blocks' tokens, light and dark
        rx.box(
            rx.box(  # a plain block, not a flex column: appending stays cheap with 1,000s
                log_part(entries),
                *[log_part(part) for part in parts],
                rx.cond(typing_html != "", rx.html(typing_html, class_name="typing")),
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
