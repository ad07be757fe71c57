"""Roles on the pages, in a real headless Chromium against the whole stack: a viewer sees no write
control (submit, bulk actions, cancel / retry / follow-up, queue pause, write token scopes) and a
read-only hint, a member sees them; the users page (admins only) creates an account with inline
errors and a password shown once, changes its role, disables it (its token stops working) and
enables it again, on a phone and a desktop without console errors."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import create_account, sign_in
from tests.ui_fixtures import open_page, seed_tasks, stack_env  # noqa: F401  (fixture)

VIEWER = ("roles-viewer", "roles-viewer-pw")
ADMIN = ("roles-admin", "roles-admin-pw")

# Write controls by page, as `(path, selectors)`; "{task}" is a failed task's id.
WRITE_CONTROLS = [
    ("/", ["#submit-task"]),
    ("/new", ["#task-form", "#submit-task"]),
    ("/tasks", ["#bulk-cancel", "#bulk-retry", ".task-select", "#new-task-link"]),
    ("/tasks/{task}", ["#retry-task", "#follow-up", "#send-follow-up"]),
    ("/tokens", ["#scope-write"]),
]
READY = {  # what shows once a page has its data (so "absent" is not just "not loaded yet")
    "/": "#counts",
    "/new": "#task-form, .read-only-hint",
    "/tasks": ".task-card",
    "/tasks/{task}": "#task-status",
    "/tokens": "#create-token",
}


@pytest.fixture
def failed_task(stack_env) -> int:  # noqa: F811
    """A failed task (it offers retry and follow-up to members)."""
    return seed_tasks(1, "roles failed task", status="failed")[0]


def _visit(page, base: str, path: str, task: int) -> None:  # noqa: ANN001
    page.goto(base + path.format(task=task))
    expect(page.locator(READY[path]).first).to_be_visible(timeout=30_000)


def test_a_viewer_sees_no_write_buttons_and_a_member_does(
    web_stack, web_user, browser, failed_task
):
    create_account(web_stack, VIEWER, "viewer")
    with open_page(browser, "desktop") as watched:
        page = watched.page
        sign_in(page, web_stack.url, VIEWER)
        for path, selectors in WRITE_CONTROLS:
            _visit(page, web_stack.url, path, failed_task)
            expect(page.locator("#read-only-badge")).to_be_visible()
            for selector in selectors:
                expect(page.locator(selector), f"{selector} on {path}").to_have_count(0)
            if path in ("/", "/new", "/tasks", "/tasks/{task}"):
                expect(page.locator(".read-only-hint").first).to_contain_text("Read-only")
        expect(page.locator("#token-read-only")).to_be_visible()
        expect(page.locator("#scope-read")).to_be_visible()  # read-only tokens stay possible
        page.goto(web_stack.url + "/queues")
        expect(page.locator(".queue-card").first).to_be_visible(timeout=30_000)
        expect(page.locator(".queue-pause, .queue-resume")).to_have_count(0)
        assert watched.errors == []

    with open_page(browser, "desktop") as watched:
        page = watched.page
        sign_in(page, web_stack.url, web_user)
        for path, selectors in WRITE_CONTROLS:
            _visit(page, web_stack.url, path, failed_task)
            for selector in selectors:
                expect(page.locator(selector).first, f"{selector} on {path}").to_be_visible()
            expect(page.locator(".read-only-hint")).to_have_count(0)
            expect(page.locator("#read-only-badge")).to_have_count(0)
        expect(page.locator("#scope-admin")).to_have_count(0)  # beyond a member's role
        page.goto(web_stack.url + "/users")
        expect(page.locator("#users-forbidden")).to_be_visible(timeout=30_000)
        expect(page.locator("#user-form")).to_have_count(0)
        expect(page.get_by_text("only admins can do that")).to_be_visible()


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
def test_users_page_creates_changes_disables_and_enables_an_account(
    web_stack,
    browser,
    stack_env,  # noqa: F811
    viewport,
):
    from app import auth

    create_account(web_stack, ADMIN, "admin")
    newbie = f"newbie-{viewport}"
    with open_page(browser, viewport) as watched:
        page = watched.page
        sign_in(page, web_stack.url, ADMIN)
        page.goto(web_stack.url + "/users")
        me = page.locator(f".user-row[data-user='{ADMIN[0]}']")
        expect(me).to_have_attribute("data-role", "admin", timeout=30_000)
        expect(me.locator(".user-disable")).to_have_count(0)  # no locking yourself out

        # Refused input: the error sits under the field it names, nothing is stored.
        page.fill("#user-username", newbie)
        page.fill("#user-password", "short")
        page.click("#create-user")
        error = page.locator(".field-error[data-field='password']")
        expect(error).to_contain_text("at least 8 characters")
        expect(page.locator(f".user-row[data-user='{newbie}']")).to_have_count(0)
        page.fill("#user-username", ".bad name")
        page.click("#create-user")
        expect(page.locator(".field-error[data-field='username']")).to_be_visible()

        # An empty password: one is made up and shown once.
        page.fill("#user-username", newbie)
        page.click("#create-user")
        shown = page.locator("#new-password")
        expect(shown).to_have_text(re.compile(r"^\S{16}$"), timeout=30_000)
        password = shown.inner_text()
        row = page.locator(f".user-row[data-user='{newbie}']")
        expect(row).to_have_attribute("data-role", "member")
        expect(row).to_have_attribute("data-state", "active")
        assert auth.authenticate(newbie, password) is not None
        watched.screenshot("users")
        assert watched.horizontal_overflow() == 0

        row.locator(".user-role").click()
        page.get_by_role("option", name="viewer").click()
        expect(row).to_have_attribute("data-role", "viewer")

        user_id = next(u.id for u in auth.list_users() if u.username == newbie)
        token, _ = auth.create_token(auth.get_user(user_id), "from the test")
        bearer = {"Authorization": f"Bearer {token}"}
        api = page.context.request
        assert api.get(web_stack.url + "/api/v1/auth/me", headers=bearer).ok

        row.locator(".user-disable").click()
        expect(row).to_have_attribute("data-state", "disabled")
        assert api.get(web_stack.url + "/api/v1/auth/me", headers=bearer).status == 401
        assert auth.authenticate(newbie, password) is None

        row.locator(".user-enable").click()
        expect(row).to_have_attribute("data-state", "active")
        assert api.get(web_stack.url + "/api/v1/auth/me", headers=bearer).ok

        page.reload()
        expect(row).to_have_attribute("data-role", "viewer", timeout=30_000)
        expect(page.locator("#new-password")).to_have_count(0)  # shown once
        assert password not in page.content()
        assert watched.errors == []
