"""Helpers for the browser tests of the pages (tests/test_ui_pages.py): point this process at the
running web stack's database and Redis, open a page with its console watched, take screenshots.

The stack itself (`web_stack`, `python -m app.stack` in demo mode) and the `browser` come from
tests/conftest.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.conftest import ARTIFACTS, VIEWPORTS


@pytest.fixture
def stack_env(web_stack, monkeypatch) -> Iterator[dict[str, str]]:
    """This test process uses the stack's database and Redis (to seed tasks, read results)."""
    from app.settings import get_settings

    for key in ("TASKDECK_DATABASE_URL", "TASKDECK_REDIS_URL", "TASKDECK_WORKSPACE_ROOT"):
        monkeypatch.setenv(key, web_stack.env[key])
    get_settings.cache_clear()
    yield web_stack.env
    get_settings.cache_clear()


# Error events on the window that are not uncaught exceptions ("ResizeObserver loop completed with
# undelivered notifications" is one) reach neither the console nor Playwright's pageerror, but
# Reflex reports each to the backend, which logs it: make them console errors.
WINDOW_ERRORS_JS = """
window.addEventListener("error", (event) => {
  if (!event.error) console.error("window error event: " + event.message);
});
"""


class WatchedPage:
    """A Playwright page that records console errors, failed requests, uncaught exceptions and
    the window's other error events."""

    def __init__(self, page, viewport: str) -> None:  # noqa: ANN001
        page.add_init_script(WINDOW_ERRORS_JS)
        self.page = page
        self.viewport = viewport
        self.errors: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        page.on(
            "response",
            lambda r: r.status >= 400 and self.errors.append(f"HTTP {r.status} {r.url}"),
        )

    def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"ui-{name}-{self.viewport}.png"), full_page=True)

    def horizontal_overflow(self) -> int:
        """How many pixels the page is wider than the viewport (0 when nothing scrolls sideways)."""
        return self.page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )


@contextmanager
def open_page(browser, viewport: str, color_scheme: str = "light") -> Iterator[WatchedPage]:  # noqa: ANN001
    """A fresh browser context of that viewport ("phone" or "desktop")."""
    context = browser.new_context(viewport=VIEWPORTS[viewport], color_scheme=color_scheme)
    try:
        yield WatchedPage(context.new_page(), viewport)
    finally:
        context.close()


def seed_tasks(count: int, title: str, **fields) -> list[int]:  # noqa: ANN003
    """Insert finished tasks straight into the database (rows only, no jobs); their ids.

    A task seeded as running also gets its lease (app.queue.TaskLock), as a worker's run would
    hold it: without one the reconciler takes it for a run whose worker was lost and puts it
    back on its queue, and the stack's worker runs it to its end in the middle of the test."""
    from app.db import session_scope
    from app.models import Task, utcnow

    rows = []
    for n in range(count):
        values = {
            "title": f"{title} {n}",
            "prompt": f"{title} {n}",
            "model": "claude-sonnet-4-5",
            "max_turns": 5,
            "status": "succeeded",
            "finished_at": utcnow(),
            "duration_ms": 1000 + n,
            "cost_usd": 0.01,
            **fields,
        }
        rows.append(Task(**values))
    with session_scope() as session:
        session.add_all(rows)
    ids = [row.id for row in rows]
    if fields.get("status") == "running":
        from app.queue import TaskLock

        for task_id in ids:
            TaskLock(task_id, ttl_s=3600).acquire()
    return ids
