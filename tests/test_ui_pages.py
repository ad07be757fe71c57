"""The pages in a real headless Chromium against the whole stack (`python -m app.stack`, demo
mode): every page renders without console errors on a phone and a desktop, without sideways
scrolling; a live task's conversation grows on screen; the task list filters, pages and acts in
bulk; alerts show as a banner; the colour mode toggles. Screenshots go to test-artifacts/."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import sign_in, wait_for_status
from tests.ui_fixtures import open_page, seed_tasks, stack_env  # noqa: F401  (fixture)

PAGES = [
    ("dashboard", "/", "#counts"),
    ("tasks", "/tasks", "#task-filters"),
    ("new", "/new", "#task-form"),
    ("queues", "/queues", ".queue-card"),
    ("health", "/health", ".health-check"),
]


@pytest.fixture
def finished_task(stack_env) -> int:  # noqa: F811
    """A task the stack ran to the end (tool calls, result), for the task page."""
    from app import service
    from app.schemas import TaskCreate

    task = service.create_task(TaskCreate(prompt="Write a file [scenario:write]", max_turns=5))
    wait_for_status(task.id, ("succeeded", "failed"), timeout=120)
    return task.id


@pytest.mark.parametrize("viewport", ["phone", "desktop"])
def test_every_page_renders_without_console_errors(
    web_stack, web_user, browser, finished_task, viewport
):
    with open_page(browser, viewport) as watched:
        page = watched.page
        sign_in(page, web_stack.url, web_user)
        for name, path, marker in [*PAGES, ("task", f"/tasks/{finished_task}", "#event-log")]:
            page.goto(web_stack.url + path)
            expect(page.locator(marker).first).to_be_visible(timeout=30_000)
            if name == "dashboard":
                expect(page.locator("#chart-finished .js-plotly-plot")).to_be_visible(
                    timeout=30_000
                )
                expect(page.locator("#count-succeeded")).not_to_have_text("0")
            if name == "task":
                expect(page.locator("#task-status")).to_have_attribute("data-status", "succeeded")
                tool = page.locator("details.tool-call[data-state='ok']").first
                expect(tool).to_contain_text("Write")
                tool.locator("summary").click()  # folded tool call opens to its input and result
                expect(tool.locator(".tool-result")).to_be_visible()
            if name == "queues":
                expect(page.locator(".worker-card").first).to_be_visible(timeout=30_000)
            if name == "health":
                expect(page.locator(".health-check[data-check='Redis']")).to_have_attribute(
                    "data-level", "green"
                )
            page.wait_for_timeout(500)  # let late renders (charts, fonts) settle
            assert watched.horizontal_overflow() <= 0, f"{path} scrolls sideways on {viewport}"
            watched.screenshot(name)
        assert not watched.errors, watched.errors


def test_a_live_task_log_grows_on_screen(web_stack, web_user, browser):
    with open_page(browser, "desktop") as watched:
        page = watched.page
        sign_in(page, web_stack.url, web_user)
        page.goto(web_stack.url + "/new")
        page.fill("#prompt", "Tell a slow story [scenario:slow] [delay:0.4]")
        page.press("#prompt", "Control+Enter")  # keyboard submit
        expect(page).to_have_url(re.compile(r"/tasks/\d+$"), timeout=30_000)
        typing = page.locator("#event-log .typing")
        expect(typing).to_be_visible(timeout=60_000)
        first = len(typing.inner_text())
        page.wait_for_timeout(2_000)
        later = len(typing.inner_text()) if typing.is_visible() else 10**6
        assert later > first, "the text being typed did not grow"
        entries = page.locator("#event-log .log-entry")
        before = entries.count()
        expect(page.locator("#task-status")).to_have_attribute(
            "data-status", "succeeded", timeout=90_000
        )
        expect(page.locator("#event-log .log-entry[data-kind='result']")).to_have_count(1)
        assert entries.count() > before
        expect(page.locator("#task-progress")).to_contain_text("Turn 1 of")
        watched.screenshot("task-live")
        assert not watched.errors, watched.errors


def test_a_schedule_form_takes_a_time_zone_and_shows_the_next_run_in_it(
    web_stack, web_user, browser
):
    with open_page(browser, "desktop") as watched:
        page = watched.page
        sign_in(page, web_stack.url, web_user)
        page.goto(web_stack.url + "/new")
        page.fill("#prompt", "Morning report [scenario:text]")
        page.fill("#cron", "0 9 * * *")
        page.fill("#timezone", "Mars/Olympus")
        page.click("#task-form button[type='submit']")
        expect(page.locator(".field-error[data-field='timezone']")).to_contain_text(
            "not an IANA time zone", timeout=15_000
        )
        page.fill("#timezone", "Asia/Tokyo")
        page.click("#task-form button[type='submit']")
        expect(page.locator("#scheduled")).to_contain_text("09:00 Asia/Tokyo", timeout=15_000)
        assert not watched.errors, watched.errors


def test_task_list_filters_pages_and_retries_in_bulk(web_stack, web_user, browser, stack_env):  # noqa: F811
    seed_tasks(30, "pagemark ok")
    failed = seed_tasks(
        6, "pagemark bad", status="failed", priority="high", status_reason="seeded failure"
    )
    with open_page(browser, "desktop") as watched:
        page = watched.page
        sign_in(page, web_stack.url, web_user)
        page.goto(web_stack.url + "/tasks")
        expect(page.locator("#task-filters")).to_be_visible(timeout=30_000)
        page.fill("#filter-text", "pagemark")
        expect(page.locator("#total-count")).to_have_text("36 matching", timeout=15_000)
        cards = page.locator("#task-list .task-card")
        expect(cards).to_have_count(25)
        expect(page.locator("#page-number")).to_have_text("Page 1 of 2")
        first_page = set(cards.evaluate_all("els => els.map(e => e.dataset.taskId)"))

        page.click("#page-next")
        expect(page.locator("#page-number")).to_have_text("Page 2 of 2")
        expect(cards).to_have_count(11)
        second_page = set(cards.evaluate_all("els => els.map(e => e.dataset.taskId)"))
        assert not first_page & second_page
        page.click("#page-prev")
        expect(page.locator("#page-number")).to_have_text("Page 1 of 2")

        page.click("#filter-queue")
        page.get_by_role("option", name="high").click()
        expect(page.locator("#total-count")).to_have_text("6 matching")
        expect(cards).to_have_count(6)
        expect(page.locator("#task-list .task-card[data-status='failed']")).to_have_count(6)
        watched.screenshot("tasks-filtered")

        page.click("#select-page")
        expect(page.locator("#selected-count")).to_have_text("6 selected")
        page.click("#bulk-retry")
        expect(page.locator("#bulk-message")).to_contain_text("retried 6 task(s)")
        expect(page.locator("#task-list .task-card[data-status='failed']")).to_have_count(
            0, timeout=30_000
        )
        assert not watched.errors, watched.errors
    for task_id in failed:  # the retried rows really went back to the queue and ran
        wait_for_status(task_id, ("succeeded", "failed"), timeout=120)


def test_alert_banner_shows_a_high_failure_rate(web_stack, web_user, browser, stack_env):  # noqa: F811
    from app import alerts

    _, finished = alerts.failure_rate()
    seed_tasks(finished + 6, "alertmark", status="failed")  # over half of the last hour failed
    try:
        with open_page(browser, "phone") as watched:
            page = watched.page
            sign_in(page, web_stack.url, web_user)
            page.goto(web_stack.url + "/")
            banner = page.locator(".alert-banner[data-alert='failure_rate']")
            expect(banner).to_be_visible(timeout=60_000)  # sampler turn + banner poll
            expect(banner).to_contain_text("failed")
            watched.screenshot("alert-banner")
            assert not watched.errors, watched.errors
    finally:
        seed_tasks(3 * finished + 20, "alertmark recovery")  # the rate back down for the others


ROOT_SCHEME_SELECTORS = """() => {
  const out = [];
  const walk = (rules) => { for (const r of rules) {
    if (r.cssRules) walk(r.cssRules);
    if (r.selectorText && r.selectorText.includes(":root") && r.style
        && r.style.getPropertyValue("color-scheme")) out.push(r.selectorText);
  } };
  for (const sheet of document.styleSheets) { try { walk(sheet.cssRules); } catch (e) {} }
  return out;
}"""


def test_color_mode_toggles_to_dark(web_stack, web_user, browser):
    with open_page(browser, "desktop") as watched:
        page = watched.page
        sign_in(page, web_stack.url, web_user)
        page.goto(web_stack.url + "/")
        expect(page.locator("#color-mode")).to_be_visible(timeout=30_000)
        dark = "document.documentElement.classList.contains('dark')"
        was_dark = page.evaluate(dark)
        page.click("#color-mode")
        page.wait_for_function(f"{dark} !== {str(was_dark).lower()}")
        if not was_dark:
            expect(page.locator("#chart-finished .js-plotly-plot")).to_be_visible(timeout=30_000)
            watched.screenshot("dashboard-dark")
        # Radix's root colour-scheme rule is keyed on <html>'s theme class, not on a :has()
        # (which made every DOM insertion re-check the root's style; app/radix_css.py)
        selectors = page.evaluate(ROOT_SCHEME_SELECTORS)
        assert selectors and not any(":has(.radix-themes" in s for s in selectors), selectors
        assert any(":root:where(.dark" in s for s in selectors), selectors
        assert not watched.errors, watched.errors
