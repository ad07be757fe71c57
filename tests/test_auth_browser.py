"""Accounts in a real browser (the whole stack as `make run` starts it): signed-out pages go to
/login, a wrong password is refused without saying why, a viewer cannot submit, sign-out ends it."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.conftest import VIEWPORTS, create_account, sign_in

VIEWER = ("browser-viewer", "viewer-password")


def test_signed_out_pages_go_to_login_and_come_back_after_it(web_stack, web_user, browser):
    context = browser.new_context(viewport=VIEWPORTS["desktop"])
    page = context.new_page()
    page.goto(web_stack.url + "/tasks")
    expect(page).to_have_url(re.compile(r"/login\?next=/tasks$"), timeout=30_000)
    expect(page.locator("#task-form")).to_have_count(0)

    page.fill("#username", web_user[0])
    page.fill("#password", "not the password")
    page.click("#login-submit")
    expect(page.locator("#login-error")).to_have_text("invalid username or password")
    page.fill("#username", "nobody-at-all")
    page.click("#login-submit")
    expect(page.locator("#login-error")).to_have_text("invalid username or password")

    page.fill("#username", web_user[0])
    page.fill("#password", web_user[1])
    page.click("#login-submit")
    expect(page).to_have_url(re.compile(r"/tasks/?$"), timeout=30_000)
    expect(page.locator("#user-menu")).to_have_attribute("data-role", "member")
    cookie = next(c for c in context.cookies() if c["name"] == "taskdeck_session")
    assert cookie["sameSite"] == "Strict" and cookie["value"].startswith("tds_")
    # The same session opens the REST API from this browser.
    me = page.request.get(web_stack.url + "/api/v1/auth/me")
    assert me.ok and me.json()["user"]["username"] == web_user[0]

    page.click("#user-menu")
    page.click("#logout")
    # (a page event still in flight may add ?next=/tasks to the same redirect)
    expect(page).to_have_url(re.compile(r"/login(\?next=/tasks)?$"), timeout=30_000)
    page.goto(web_stack.url + "/")
    expect(page).to_have_url(re.compile(r"/login$"), timeout=30_000)
    assert page.request.get(web_stack.url + "/api/v1/auth/me").status == 401
    context.close()


def test_a_viewer_sees_pages_but_cannot_submit(web_stack, browser):
    """No form to submit (the guard refusing a viewer's events is tests/test_auth_guard.py)."""
    create_account(web_stack, VIEWER, "viewer")
    context = browser.new_context(viewport=VIEWPORTS["phone"])
    page = context.new_page()
    sign_in(page, web_stack.url, VIEWER)
    page.goto(web_stack.url + "/new")
    expect(page.locator("#user-menu")).to_have_attribute("data-role", "viewer", timeout=30_000)
    expect(page.locator(".read-only-hint")).to_contain_text("Read-only")
    expect(page.locator("#task-form")).to_have_count(0)
    expect(page.locator("#submit-task")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"/new/?$"))
    context.close()


def test_tokens_page_creates_a_token_once_and_revokes_it(web_stack, web_user, browser):
    context = browser.new_context(viewport=VIEWPORTS["desktop"])
    page = context.new_page()
    sign_in(page, web_stack.url, web_user)
    page.goto(web_stack.url + "/tokens")
    page.fill("#token-name", "from the browser")
    page.click("#scope-read")
    page.click("#create-token")
    shown = page.locator("#new-token")
    expect(shown).to_have_text(re.compile(r"^tdk_"), timeout=30_000)
    token = shown.inner_text()
    row = page.locator(".token-row", has_text="from the browser")
    expect(row).to_have_attribute("data-status", "active")
    expect(row).to_contain_text(token[:12])

    api = context.request
    bearer = {"Authorization": f"Bearer {token}"}
    me = api.get(web_stack.url + "/api/v1/auth/me", headers=bearer)
    assert me.ok and me.json()["scopes"] == ["read"] and me.json()["via"] == "token"

    page.reload()
    expect(page.locator(".token-row", has_text="from the browser")).to_have_count(1)
    expect(page.locator("#new-token")).to_have_count(0)  # shown once
    assert token not in page.content()

    page.locator(".revoke-token[data-token='from the browser']").click()
    expect(row).to_have_attribute("data-status", "revoked")
    assert api.get(web_stack.url + "/api/v1/auth/me", headers=bearer).status == 401
    context.close()
