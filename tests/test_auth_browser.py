"""Accounts in a real browser (the whole stack as `make run` starts it): signed-out pages go to
/login, a wrong password is refused without saying why, a viewer cannot submit, sign-out ends it."""

from __future__ import annotations

import re
import threading
import time
import urllib.request

from playwright.sync_api import expect

from tests.conftest import VIEWPORTS, create_account, sign_in
from tests.ui_fixtures import stack_env  # noqa: F401  (fixture)

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


SLOW = ("slow-hash-member", "slow-hash-password")


def test_a_sign_in_does_not_stop_the_live_pages(web_stack, browser, stack_env):  # noqa: F811
    """The password check (argon2, slow on purpose) runs off the event loop that every open
    tab's live updates share. The account's hash is made ~1 s to check (argon2 keeps its cost
    in the hash); /ping, answered by that same loop, must keep answering during the sign-in."""
    from argon2 import PasswordHasher
    from sqlmodel import select

    from app.db import session_scope
    from app.models import User

    create_account(web_stack, SLOW, "member")
    slow_hash = PasswordHasher(time_cost=40).hash(SLOW[1])
    started = time.perf_counter()
    PasswordHasher().verify(slow_hash, SLOW[1])
    check_s = time.perf_counter() - started
    with session_scope() as session:
        user = session.exec(select(User).where(User.username == SLOW[0])).one()
        user.password_hash = slow_hash
        session.add(user)

    context = browser.new_context(viewport=VIEWPORTS["desktop"])
    page = context.new_page()
    page.goto(web_stack.url + "/login")
    expect(page.locator("#login-submit")).to_be_enabled(timeout=60_000)
    waits: list[float] = []
    stop = threading.Event()

    def ping() -> None:
        while not stop.is_set():
            sent = time.perf_counter()
            with urllib.request.urlopen(web_stack.url + "/ping", timeout=30):
                waits.append(time.perf_counter() - sent)
            time.sleep(0.01)

    pinger = threading.Thread(target=ping, daemon=True)
    pinger.start()
    sign_in(page, web_stack.url, SLOW)
    stop.set()
    pinger.join(30)
    assert "/login" not in page.url
    context.close()
    assert len(waits) > 10
    assert max(waits) < check_s / 2, (max(waits), check_s)


def test_the_first_admin_password_is_in_a_private_file_and_never_in_the_output(web_stack):
    """`make run` on an empty database makes the admin `admin`: its random password goes to a
    file only its owner reads, and the stack's output (what ends up in logs) names the file only."""
    import json
    import stat

    path = web_stack.directory / "admin-password"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    password = path.read_text().strip()
    assert len(password) >= 16
    output = web_stack.log_path.read_text()
    assert str(path) in output and password not in output
    login = urllib.request.Request(
        web_stack.url + "/api/v1/auth/login",
        data=json.dumps({"username": "admin", "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(login, timeout=10) as answer:
        assert json.load(answer)["user"]["role"] == "admin"
