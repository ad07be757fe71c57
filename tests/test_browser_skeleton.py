"""The skeleton in a real browser: submit through the form, watch the task succeed live."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import ARTIFACTS, VIEWPORTS, sign_in


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_submit_a_task_and_watch_it_succeed_with_its_log(web_stack, web_user, browser, viewport):
    context = browser.new_context(viewport=VIEWPORTS[viewport])
    page = context.new_page()
    console_errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and console_errors.append(m.text))
    page.on("response", lambda r: r.status >= 400 and console_errors.append(f"{r.status} {r.url}"))
    sign_in(page, web_stack.url, web_user)  # every page needs an account
    page.goto(web_stack.url + "/")
    expect(page.locator("#demo-badge")).to_be_visible(timeout=30_000)  # demo mode is labelled

    # Bad input first: an inline message, nothing submitted.
    page.fill("#prompt", "   ")
    page.click("#submit-task")
    expect(page.locator(".field-error[data-field='prompt']")).to_contain_text("empty")
    page.fill("#prompt", "hello")
    page.fill("#cwd", "/no/such/directory")
    page.click("#submit-task")
    expect(page.locator(".field-error[data-field='cwd']")).to_contain_text("does not exist")
    expect(page).to_have_url(re.compile(r"/$"))

    page.fill("#cwd", "")
    page.fill("#prompt", f"Create hello_{viewport}.py that prints hi")
    page.click("#submit-task")
    expect(page).to_have_url(re.compile(r"/tasks/\d+$"), timeout=15_000)
    status = page.locator("#task-status")
    try:
        expect(status).to_have_attribute("data-status", "succeeded", timeout=90_000)
    except AssertionError as shown:  # say whether the task or only its page was stuck
        task_id = page.url.rstrip("/").rsplit("/", 1)[-1]
        served = page.request.get(f"{web_stack.url}/api/v1/tasks/{task_id}").json()
        kinds = page.locator("#event-log .log-entry").evaluate_all(
            "entries => entries.map(e => e.dataset.kind)"
        )
        raise AssertionError(
            f"{shown}\nthe API's task {task_id}: {served}\nthe page's log entries: {kinds}"
        ) from shown
    log = page.locator("#event-log")
    expect(log.locator(".log-entry[data-kind='tool_use']")).to_have_count(1)
    expect(log).to_contain_text("Write")
    expect(log.locator(".log-entry[data-kind='result']")).to_have_count(1)
    expect(page.locator("#stat-cost")).not_to_have_text("$0.0000")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"skeleton-task-{viewport}.png"), full_page=True)

    page.goto(web_stack.url + "/")
    expect(page.locator(".task-card[data-status='succeeded']").first).to_be_visible()
    assert not console_errors, console_errors
    context.close()
