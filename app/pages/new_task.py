"""The new-task page: the full form (prompt, place, model, limits, priority)."""

from __future__ import annotations

import reflex as rx

from app.components.layout import page_frame
from app.components.task_form import task_form


def new_task_page() -> rx.Component:
    return page_frame(
        rx.heading("New task", size="6"),
        rx.card(task_form(full=True), width="100%"),
    )
