"""The task list: filter by status / queue / repository / text, sort, pages, bulk actions."""

from __future__ import annotations

import reflex as rx

from app.components.layout import page_frame, writers_only
from app.components.task_list import task_card
from app.queue import PRIORITIES
from app.state.tasks import PAGE_SIZES
from app.state.tasks import TaskListState as S

STATUSES = ["queued", "running", "succeeded", "failed", "cancelled"]


def filter_select(items, value, on_change, id_: str, label: str) -> rx.Component:  # noqa: ANN001
    return rx.vstack(
        rx.text(label, size="1", color_scheme="gray"),
        rx.select(items, value=value, on_change=on_change, id=id_, width="100%"),
        spacing="1",
        min_width="0",
        width="100%",
    )


def filters() -> rx.Component:
    return rx.grid(
        filter_select(
            ["all", *STATUSES], S.status_filter, S.set_status_filter, "filter-status", "Status"
        ),
        filter_select(
            ["all", *PRIORITIES], S.queue_filter, S.set_queue_filter, "filter-queue", "Queue"
        ),
        rx.vstack(
            rx.text("Repository", size="1", color_scheme="gray"),
            rx.select.root(
                rx.select.trigger(id="filter-repo", width="100%"),
                rx.select.content(
                    rx.select.item("all", value="all"),
                    rx.foreach(S.repos, lambda r: rx.select.item(r, value=r)),
                ),
                value=S.repo_filter,
                on_change=S.set_repo_filter,
            ),
            spacing="1",
            min_width="0",
            width="100%",
        ),
        filter_select(["newest", "oldest", "cost", "duration"], S.sort, S.set_sort, "sort", "Sort"),
        rx.vstack(
            rx.text("Search", size="1", color_scheme="gray"),
            rx.input(
                placeholder="Text in title or prompt",
                default_value=S.search,
                on_change=S.set_search.debounce(400),
                id="filter-text",
                width="100%",
            ),
            spacing="1",
            min_width="0",
            width="100%",
            grid_column=rx.breakpoints(initial="span 2", md="span 1"),
        ),
        columns=rx.breakpoints(initial="2", md="5"),
        spacing="3",
        width="100%",
        id="task-filters",
    )


def bulk_bar() -> rx.Component:
    return rx.hstack(
        rx.checkbox(
            "Select page",
            checked=S.all_selected,
            on_change=S.toggle_all,
            id="select-page",
            size="2",
        ),
        rx.text(
            S.selected.length(), " selected", size="2", color_scheme="gray", id="selected-count"
        ),
        rx.spacer(),
        rx.button(
            "Cancel selected",
            color_scheme="red",
            variant="soft",
            size="2",
            on_click=S.bulk_cancel,
            disabled=S.selected.length() == 0,
            id="bulk-cancel",
        ),
        rx.button(
            "Retry selected",
            variant="soft",
            size="2",
            on_click=S.bulk_retry,
            disabled=S.selected.length() == 0,
            id="bulk-retry",
        ),
        align="center",
        width="100%",
        wrap="wrap",
        spacing="2",
    )


def pager() -> rx.Component:
    return rx.hstack(
        rx.button(
            rx.icon("chevrons-left", size=14),
            variant="soft",
            size="2",
            on_click=S.first_page,
            disabled=S.page <= 1,
            aria_label="First page",
            id="page-first",
        ),
        rx.button(
            rx.icon("chevron-left", size=14),
            "Prev",
            variant="soft",
            size="2",
            on_click=S.prev_page,
            disabled=S.page <= 1,
            id="page-prev",
        ),
        rx.text("Page ", S.page, " of ", S.pages, size="2", id="page-number", white_space="nowrap"),
        rx.button(
            "Next",
            rx.icon("chevron-right", size=14),
            variant="soft",
            size="2",
            on_click=S.next_page,
            disabled=S.next_cursor == "",
            id="page-next",
        ),
        rx.spacer(),
        rx.select(
            PAGE_SIZES, value=S.page_size, on_change=S.set_page_size, size="2", id="page-size"
        ),
        align="center",
        width="100%",
        wrap="wrap",
        spacing="2",
    )


def tasks_page() -> rx.Component:
    return page_frame(
        rx.hstack(
            rx.heading("Tasks", size="6"),
            rx.text(S.total, " matching", size="2", color_scheme="gray", id="total-count"),
            rx.spacer(),
            writers_only(
                rx.link(
                    rx.button(rx.icon("plus", size=14), "New task", size="2", id="new-task-link"),
                    href="/new",
                ),
                hint=False,
            ),
            align="center",
            width="100%",
        ),
        filters(),
        writers_only(bulk_bar()),
        rx.cond(
            S.bulk_message != "",
            rx.callout(S.bulk_message, icon="info", size="1", id="bulk-message", width="100%"),
        ),
        rx.cond(
            S.tasks.length() > 0,
            rx.vstack(
                rx.foreach(
                    S.tasks,
                    lambda t: task_card(
                        t,
                        selectable=True,
                        selected=S.selected.contains(t["id"]),
                        on_toggle=lambda checked: S.toggle(t["id"], checked),
                    ),
                ),
                spacing="2",
                width="100%",
                id="task-list",
            ),
            rx.text("No task matches these filters.", color_scheme="gray", id="no-tasks"),
        ),
        pager(),
    )
