"""The task page in a real headless Chromium against the whole stack (demo mode): tokens, cost
and the clock tick during a slow turn (usage events) on the task page and the task cards, and the
diff shows unified or side by side (remembered per browser), fitting a phone, in light and dark."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import expect

from app.presenters import duration
from tests.conftest import queue_held, sign_in, wait_for_status
from tests.ui_fixtures import open_page, seed_tasks, stack_env  # noqa: F401  (fixture)

PATCH = """diff --git a/src/app.py b/src/app.py
index 1111111..2222222 100644
--- a/src/app.py
+++ b/src/app.py
@@ -1,4 +1,5 @@
 import os
--- a comment that starts with dashes
-GREETING = "hello"
+GREETING = "hello, world"
+FAREWELL = "goodbye and thanks for all the fish, a rather long line that has to wrap somewhere"
 print(os.getcwd())
diff --git a/notes.md b/notes.md
new file mode 100644
index 0000000..3333333
--- /dev/null
+++ b/notes.md
@@ -0,0 +1,2 @@
+# Notes
+written by the task
"""


def tokens_out(page) -> int:  # noqa: ANN001
    """The output tokens the task page's header shows ("in / out")."""
    text = page.locator("#stat-tokens").inner_text()
    return int(text.split("/")[1].strip())


def test_tokens_and_cost_tick_during_a_slow_turn(web_stack, web_user, browser, stack_env):  # noqa: F811
    from app import service
    from app.schemas import TaskCreate

    with open_page(browser, "desktop") as watched:
        page = watched.page
        sign_in(page, web_stack.url, web_user)
        with queue_held():  # the run starts once the page shows the task waiting
            task = service.create_task(
                TaskCreate(
                    prompt="Count slowly [scenario:slow] [delay:0.6]", model="claude-sonnet-4-5"
                )
            )
            page.goto(f"{web_stack.url}/tasks/{task.id}")
            status = page.locator("#task-status")
            expect(status).to_have_attribute("data-status", "queued", timeout=60_000)
        expect(status).to_have_attribute("data-status", "running", timeout=60_000)
        expect(page.locator("#event-log .typing")).to_be_visible(timeout=60_000)
        expect(page.locator("#stat-cost")).to_have_text(re.compile(r"^~\$0\.\d{4}$"))
        clock = page.locator("#stat-duration")  # the time it has run so far, ticking
        expect(clock).to_have_text(re.compile(r"^\d+ s$"))
        expect(clock).not_to_have_text(clock.inner_text(), timeout=5_000)
        counts = [tokens_out(page)]
        deadline = time.monotonic() + 60
        while status.get_attribute("data-status") == "running" and time.monotonic() < deadline:
            page.wait_for_timeout(200)
            if status.get_attribute("data-status") == "running":
                counts.append(tokens_out(page))
                if len(set(counts)) == 2:
                    watched.screenshot("task-usage-ticking")  # mid-turn
        assert counts == sorted(counts), counts
        assert len(set(counts)) >= 3, f"tokens did not tick during the turn: {counts}"

        final = wait_for_status(task.id, ("succeeded",), timeout=90)
        expect(status).to_have_attribute("data-status", "succeeded", timeout=30_000)
        expect(page.locator("#stat-tokens")).to_have_text(
            f"{final.input_tokens} / {final.output_tokens}", timeout=10_000
        )
        expect(page.locator("#stat-cost")).to_have_text(f"${final.cost_usd:.4f}")
        expect(clock).to_have_text(duration(final.duration_ms))  # the run's own, once it ended
        assert not watched.errors, watched.errors


def test_a_run_cancelled_while_typing_ends_its_text_and_keeps_its_spend(
    web_stack,
    web_user,
    browser,
    stack_env,  # noqa: F811
):
    from app import service
    from app.schemas import TaskCreate

    with open_page(browser, "desktop") as watched:
        page = watched.page
        sign_in(page, web_stack.url, web_user)
        task = service.create_task(TaskCreate(prompt="Type [scenario:slow] [delay:0.5]"))
        page.goto(f"{web_stack.url}/tasks/{task.id}")
        expect(page.locator("#event-log .typing")).to_be_visible(timeout=60_000)
        expect(page.locator("#stat-tokens")).not_to_have_text(re.compile(r"/ 0$"))

        service.cancel_task(task.id)

        status = page.locator("#task-status")
        expect(status).to_have_attribute("data-status", "cancelled", timeout=30_000)
        expect(page.locator("#event-log .typing")).to_have_count(0)
        done = service.get_task(task.id)
        assert done.output_tokens > 0 and done.cost_usd > 0
        expect(page.locator("#stat-tokens")).to_have_text(
            f"{done.input_tokens} / {done.output_tokens}"
        )
        expect(page.locator("#stat-cost")).to_have_text(f"${done.cost_usd:.4f}")
        # No result, so no duration of Claude Code's: the time from the start to the cancel.
        expect(page.locator("#stat-duration")).to_have_text(re.compile(r"^\d+(\.\d)? s$"))
        assert not watched.errors, watched.errors


def test_a_log_that_fits_its_box_starts_at_the_top_when_the_task_starts(
    web_stack,
    web_user,
    browser,
    stack_env,  # noqa: F811
):
    """A live part laid out before the browser decided it is in sight counts its placeholder
    size (600 px); placed by it, the log started above the top of its box (assets/taskdeck.js)."""
    from app import service
    from app.schemas import TaskCreate

    with open_page(browser, "desktop") as watched:
        page = watched.page
        sign_in(page, web_stack.url, web_user)
        with queue_held():
            task = service.create_task(TaskCreate(prompt="Type [scenario:slow] [delay:0.5]"))
            page.goto(f"{web_stack.url}/tasks/{task.id}")
            status = page.locator("#task-status")
            expect(status).to_have_attribute("data-status", "queued", timeout=60_000)
        expect(page.locator("#event-log .typing")).to_be_visible(timeout=60_000)
        page.wait_for_timeout(300)  # the frames in which the parts take their size
        box = page.evaluate(
            "() => { const s = document.getElementById('log-scroll');"
            " const end = document.getElementById('log-end');"
            " return [s.scrollTop, end.offsetTop, s.clientHeight]; }"
        )
        top, content, view = box
        assert content < view, box  # everything fits in the box ...
        assert top == 0, box  # ... so nothing of it is above the top
        assert not watched.errors, watched.errors


def test_task_card_shows_tokens_of_a_running_task(web_stack, web_user, browser, stack_env):  # noqa: F811
    from app import service
    from app.schemas import TaskCreate

    with open_page(browser, "phone") as watched:
        page = watched.page
        sign_in(page, web_stack.url, web_user)
        with queue_held():  # the run starts once the list shows the task waiting
            task = service.create_task(TaskCreate(prompt="Card count [scenario:slow] [delay:0.6]"))
            page.goto(f"{web_stack.url}/tasks")
            card = page.locator(f".task-card[data-task-id='{task.id}']")
            expect(card).to_have_attribute("data-status", "queued", timeout=60_000)
        expect(card).to_have_attribute("data-status", "running", timeout=60_000)
        tokens = card.locator(".task-tokens")
        expect(tokens).not_to_have_text("0 tokens", timeout=15_000)  # while it still runs
        assert card.get_attribute("data-status") == "running"
        expect(card.locator(".task-cost")).to_have_text(re.compile(r"^~\$"))
        watched.screenshot("task-card-usage")
        wait_for_status(task.id, ("succeeded",), timeout=90)
        assert not watched.errors, watched.errors


def _diff_task() -> int:
    (task_id,) = seed_tasks(
        1,
        "diffmark",
        repo="/srv/example",
        files_changed=2,
        lines_added=4,
        lines_removed=2,
        diff=PATCH,
    )
    return task_id


def _background(page, selector: str) -> tuple[int, ...]:  # noqa: ANN001
    css = page.locator(selector).first.evaluate("e => getComputedStyle(e).backgroundColor")
    return tuple(int(float(v)) for v in re.findall(r"[\d.]+", css)[:3])


def test_diff_unified_and_side_by_side_on_desktop_and_phone(
    web_stack,
    web_user,
    browser,
    stack_env,  # noqa: F811
):
    task_id = _diff_task()
    url = f"{web_stack.url}/tasks/{task_id}"
    for viewport, scheme in (("desktop", "light"), ("phone", "dark")):
        with open_page(browser, viewport, color_scheme=scheme) as watched:
            page = watched.page
            sign_in(page, web_stack.url, web_user)
            page.goto(url)
            view = page.locator("#diff-view")
            expect(view).to_have_attribute("data-mode", "unified", timeout=30_000)
            first = page.locator(".diff-file").first
            expect(first.locator("summary")).to_contain_text("src/app.py")
            rows = first.locator(".diff-unified .diff-row")
            expect(rows).to_have_count(7)  # hunk, context, 2 removed, 2 added, context
            removed = first.locator(".diff-row[data-kind='del']")
            expect(removed.first).to_contain_text("--- a comment")
            expect(removed.first.locator(".diff-no").first).to_have_text("2")
            added = first.locator(".diff-row[data-kind='add']")
            expect(added.first.locator(".diff-no").nth(1)).to_have_text("2")
            red, green = (
                _background(page, ".diff-row[data-kind='del']"),
                _background(page, ".diff-row[data-kind='add']"),
            )
            assert red[0] > red[1] and green[1] > green[0], (scheme, red, green)
            assert watched.horizontal_overflow() <= 0, f"unified scrolls sideways on {viewport}"
            watched.screenshot(f"diff-unified-{scheme}")

            page.get_by_role("radio", name="Side by side").click()
            expect(view).to_have_attribute("data-mode", "split")
            pairs = first.locator(".diff-split > .diff-row")
            expect(pairs).to_have_count(5)  # hunk, context, 2 pairs, context
            pair = pairs.nth(2)
            expect(pair.locator(".diff-no").first).to_have_text("2")
            expect(pair.locator(".diff-tx").first).to_contain_text("--- a comment")
            expect(pair.locator(".diff-no").nth(1)).to_have_text("2")
            expect(pair.locator(".diff-tx").nth(1)).to_contain_text('+GREETING = "hello, world"')
            page.wait_for_timeout(300)
            assert watched.horizontal_overflow() <= 0, f"side by side scrolls the {viewport} page"
            box = first.locator(".diff-box")
            scrolls = box.evaluate("e => e.scrollWidth > e.clientWidth")
            assert scrolls == (viewport == "phone"), (
                "side by side scrolls in its own box on a phone"
            )
            watched.screenshot(f"diff-split-{scheme}")

            page.reload()  # remembered by this browser
            expect(view).to_have_attribute("data-mode", "split", timeout=30_000)
            expect(first.locator(".diff-split")).to_be_visible()
            page.get_by_role("radio", name="Unified").click()
            expect(view).to_have_attribute("data-mode", "unified")
            assert not watched.errors, watched.errors


def test_model_text_is_markdown_without_raw_html_or_tex(web_stack, web_user, browser, stack_env):  # noqa: F811
    from app import service
    from app.events import TextEvent

    (task_id,) = seed_tasks(1, "markdown task")
    text = "Done: **bold**, `code`.\n\n<b>not html</b> and it costs $5 or $10 a month."
    plain = "All 12 tests pass.\nNothing else to change."
    service.record_events(
        task_id,
        [("1-1", TextEvent(attempt=1, text=text)), ("1-2", TextEvent(attempt=1, text=plain))],
    )
    with open_page(browser, "desktop") as watched:
        page = watched.page
        sign_in(page, web_stack.url, web_user)
        page.goto(f"{web_stack.url}/tasks/{task_id}")
        entry = page.locator("#event-log .assistant-text").first
        expect(entry.locator("strong")).to_have_text("bold")  # markdown is rendered
        expect(entry.locator("code")).to_have_text("code")
        expect(entry).to_contain_text("<b>not html</b>")  # raw HTML stays text
        expect(entry).to_contain_text("costs $5 or $10 a month")  # not a formula
        assert entry.locator("b, .katex, math").count() == 0
        # Text with no markdown in it is shown as it is, line breaks kept, without a markdown
        # render (the cheap path for the busiest part of the page).
        second = page.locator("#event-log .assistant-text").nth(1)
        expect(second).to_have_class(re.compile(r"\bplain-text\b"))
        assert second.inner_text() == plain
        assert second.locator("p").count() == 0
        assert not watched.errors, watched.errors


def open_live_task(page, web_stack, user, task_id: int) -> None:  # noqa: ANN001
    """Sign in, open the task's page and wait until it follows the task's live stream."""
    sign_in(page, web_stack.url, user)
    page.goto(f"{web_stack.url}/tasks/{task_id}")
    expect(page.locator("#log-scroll")).to_have_attribute("data-following", "true", timeout=30_000)
    page.wait_for_timeout(1500)  # the page's follower is reading the stream


NEWEST_IN_SIGHT = """e => {
    const view = e.getBoundingClientRect(), entries = e.querySelectorAll('.log-entry');
    const last = entries[entries.length - 1].getBoundingClientRect();
    return last.top >= view.top - 1 && last.bottom <= view.bottom + 1;
}"""


def test_log_follows_new_entries_until_the_reader_scrolls_up(
    web_stack,
    web_user,
    browser,
    stack_env,  # noqa: F811
):
    from app import live
    from app.events import TextEvent

    (task_id,) = seed_tasks(1, "scrolling task", status="running", finished_at=None)

    def publish(first: int, count: int) -> None:
        for n in range(first, first + count):
            live.publish(task_id, TextEvent(attempt=1, text=f"line {n}\nsecond line\nthird line"))

    def gap(page) -> float:  # noqa: ANN001
        """Pixels between the log's visible bottom and its end."""
        return page.locator("#log-scroll").evaluate(
            "e => e.scrollHeight - e.scrollTop - e.clientHeight"
        )

    with open_page(browser, "desktop") as watched:
        page = watched.page
        open_live_task(page, web_stack, web_user, task_id)
        scroller = page.locator("#log-scroll")
        publish(0, 40)
        expect(page.locator("#event-log")).to_contain_text("line 39", timeout=30_000)
        page.wait_for_timeout(300)
        assert scroller.evaluate("e => e.scrollHeight > 2 * e.clientHeight")
        assert gap(page) < 48, "the log did not follow its newest entry"
        assert scroller.evaluate(NEWEST_IN_SIGHT), "the newest entry is out of sight"
        expect(page.locator("#jump-latest")).to_be_hidden()

        scroller.evaluate("e => { e.scrollTop = 0; }")  # the reader scrolls up
        expect(scroller).to_have_attribute("data-following", "false", timeout=10_000)
        expect(page.locator("#jump-latest")).to_be_visible()
        publish(40, 10)
        expect(page.locator("#event-log")).to_contain_text("line 49", timeout=30_000)
        page.wait_for_timeout(300)
        assert scroller.evaluate("e => e.scrollTop") == 0, "new entries moved the reader"

        page.locator("#jump-latest").click()
        expect(scroller).to_have_attribute("data-following", "true", timeout=10_000)
        publish(50, 10)
        expect(page.locator("#event-log")).to_contain_text("line 59", timeout=30_000)
        page.wait_for_timeout(300)
        assert gap(page) < 48, "the log stopped following after 'jump to latest'"
        assert scroller.evaluate(NEWEST_IN_SIGHT), "the newest entry is out of sight"
        assert not watched.errors, watched.errors


def test_log_keeps_following_a_long_live_run(web_stack, web_user, browser, stack_env):  # noqa: F811
    """Nobody scrolls: 300 entries at 20 a second, as a busy task sends them. The log must still
    be at its end afterwards (it once stopped by itself: the browser moving the scroll position
    while parts of the log took their size was taken for the reader scrolling up)."""
    from app import live
    from app.events import TextEvent

    (task_id,) = seed_tasks(1, "busy task", status="running", finished_at=None)
    with open_page(browser, "desktop") as watched:
        page = watched.page
        open_live_task(page, web_stack, web_user, task_id)
        scroller = page.locator("#log-scroll")
        for n in range(300):
            live.publish(task_id, TextEvent(attempt=1, text=f"line {n}"))
            time.sleep(0.05)
        expect(page.locator("#event-log")).to_contain_text("line 299", timeout=30_000)
        page.wait_for_timeout(300)
        assert scroller.get_attribute("data-following") == "true"
        assert scroller.evaluate("e => e.scrollHeight - e.scrollTop - e.clientHeight") < 48
        assert scroller.evaluate(NEWEST_IN_SIGHT), "the newest entry is out of sight"
        assert not watched.errors, watched.errors


def test_a_running_log_turns_pages_instead_of_moving_with_each_entry(
    web_stack,
    web_user,
    browser,
    stack_env,  # noqa: F811
):
    """While the task runs, new entries fill the view from where the last one ended and the log
    stays still; when they reach its bottom it moves up by most of a view at once, keeping the
    last lines read in sight at its top (assets/taskdeck.js). On a desktop and a phone, the
    newest entry is always in sight."""
    from app import live
    from app.events import TextEvent

    for viewport in ("desktop", "phone"):
        (task_id,) = seed_tasks(1, f"paging task {viewport}", status="running", finished_at=None)
        with open_page(browser, viewport) as watched:
            page = watched.page
            open_live_task(page, web_stack, web_user, task_id)
            scroller = page.locator("#log-scroll")
            log = page.locator("#event-log")
            view = scroller.evaluate("e => e.clientHeight")
            tops, turns = [], 0
            for n in range(40):
                live.publish(task_id, TextEvent(attempt=1, text=f"{viewport} entry {n}\nmore"))
                expect(log).to_contain_text(f"{viewport} entry {n}\n", timeout=30_000)
                page.wait_for_timeout(50)
                assert scroller.evaluate(NEWEST_IN_SIGHT), f"entry {n} is out of sight"
                top = scroller.evaluate("e => e.scrollTop")
                if tops and top != tops[-1]:
                    turns += 1
                    assert top - tops[-1] > 0.5 * view, (n, tops[-1], top, view)
                tops.append(top)
            assert scroller.evaluate("e => e.scrollHeight > 2 * e.clientHeight")
            assert 1 <= turns <= 40 // 4, (turns, tops)
            assert scroller.get_attribute("data-following") == "true"
            assert not watched.errors, watched.errors


def test_opening_a_tool_call_does_not_move_the_log(web_stack, web_user, browser, stack_env):  # noqa: F811
    """The reader opens a long tool call at the end of a running log: it stays where it was and
    the following stops there (new entries do not take the reader away); folding it again and
    "jump to latest" bring the newest entry back in sight, following."""
    from app import live
    from app.events import TextEvent, ToolResultEvent, ToolUseEvent

    (task_id,) = seed_tasks(1, "tool task", status="running", finished_at=None)
    lines = "\n".join(f"line {n}" for n in range(60))
    with open_page(browser, "desktop") as watched:
        page = watched.page
        open_live_task(page, web_stack, web_user, task_id)
        scroller = page.locator("#log-scroll")
        for n in range(12):
            live.publish(task_id, TextEvent(attempt=1, text=f"before {n}"))
        live.publish(task_id, ToolUseEvent(attempt=1, id="c1", name="Bash", input={"c": lines}))
        live.publish(task_id, ToolResultEvent(attempt=1, tool_use_id="c1", output=lines))
        call = page.locator("details.tool-call").last
        expect(call).to_have_attribute("data-state", "ok", timeout=30_000)
        page.wait_for_timeout(300)
        assert scroller.evaluate(NEWEST_IN_SIGHT)
        summary = call.locator("summary")
        at = summary.bounding_box()["y"]

        summary.click()
        page.wait_for_timeout(300)
        assert abs(summary.bounding_box()["y"] - at) <= 1, "opening the call moved the log"
        expect(scroller).to_have_attribute("data-following", "false")
        live.publish(task_id, TextEvent(attempt=1, text="while reading"))
        expect(page.locator("#event-log")).to_contain_text("while reading", timeout=30_000)
        page.wait_for_timeout(300)
        assert abs(summary.bounding_box()["y"] - at) <= 1, "a new entry took the reader away"

        summary.click()  # folded again
        page.wait_for_timeout(300)
        page.locator("#jump-latest").click()
        expect(scroller).to_have_attribute("data-following", "true")
        live.publish(task_id, TextEvent(attempt=1, text="after reading"))
        expect(page.locator("#event-log")).to_contain_text("after reading", timeout=30_000)
        page.wait_for_timeout(300)
        assert scroller.evaluate(NEWEST_IN_SIGHT), "the newest entry is out of sight"
        assert not watched.errors, watched.errors


def test_a_tool_call_opened_while_it_runs_stays_open_when_its_result_comes(
    web_stack,
    web_user,
    browser,
    stack_env,  # noqa: F811
):
    """The server sends a call's entry anew when its result comes (app/log_html.py): the reader
    who opened it to read its input keeps it open, and now sees the result too."""
    from app import live
    from app.events import TextEvent, ToolResultEvent, ToolUseEvent

    (task_id,) = seed_tasks(1, "slow tool", status="running", finished_at=None)
    with open_page(browser, "desktop") as watched:
        page = watched.page
        open_live_task(page, web_stack, web_user, task_id)
        live.publish(task_id, ToolUseEvent(attempt=1, id="c1", name="Bash", input={"c": "make"}))
        live.publish(task_id, ToolUseEvent(attempt=1, id="c2", name="Read", input={"p": "x"}))
        first, second = (
            page.locator("#event-log details.tool-call").nth(0),
            page.locator("#event-log details.tool-call").nth(1),
        )
        expect(second).to_have_attribute("data-state", "pending", timeout=30_000)
        first.locator("summary").click()
        expect(first.locator(".tool-input")).to_be_visible()
        live.publish(task_id, ToolResultEvent(attempt=1, tool_use_id="c1", output="built"))
        live.publish(task_id, ToolResultEvent(attempt=1, tool_use_id="c2", output="read"))
        live.publish(task_id, TextEvent(attempt=1, text="both back"))
        expect(second).to_have_attribute("data-state", "ok", timeout=30_000)
        expect(first).to_have_attribute("data-state", "ok")
        expect(first.locator(".tool-result")).to_be_visible()  # still open, with its result
        expect(first.locator(".tool-result")).to_have_text("built")
        assert second.evaluate("d => d.open") is False  # the other stays folded
        first.locator("summary").click()  # folded by the reader: it stays folded
        live.publish(task_id, TextEvent(attempt=1, text="later"))
        expect(page.locator("#event-log")).to_contain_text("later", timeout=30_000)
        assert first.evaluate("d => d.open") is False
        assert not watched.errors, watched.errors


def test_a_running_tasks_log_does_not_push_the_page_down(
    web_stack,
    web_user,
    browser,
    stack_env,  # noqa: F811
):
    """While the task runs its log has its full height at once: new entries fill it, and the
    box does not grow (what comes below it, the attempts, stays where it was). A finished task's
    short conversation keeps a short box, on a phone as on a desktop."""
    from app import live
    from app.events import TextEvent

    (running,) = seed_tasks(1, "growing task", status="running", finished_at=None)
    (finished,) = seed_tasks(1, "finished task")
    for viewport in ("desktop", "phone"):
        with open_page(browser, viewport) as watched:
            page = watched.page
            open_live_task(page, web_stack, web_user, running)
            height = page.viewport_size["height"]
            box = page.locator("#log-scroll").bounding_box()
            assert box["height"] >= 0.69 * height, box
            for n in range(5):
                live.publish(running, TextEvent(attempt=1, text=f"{viewport} line {n}"))
            expect(page.locator("#event-log")).to_contain_text(f"{viewport} line 4")
            assert page.locator("#log-scroll").bounding_box() == box
            assert not watched.errors, watched.errors

            page.goto(f"{web_stack.url}/tasks/{finished}")
            expect(page.locator("#log-scroll")).to_have_attribute("data-live", "false")
            assert page.locator("#log-scroll").bounding_box()["height"] < 0.3 * height
            assert not watched.errors, watched.errors


def test_live_entries_keep_their_order_across_parts_and_when_the_parts_fill(
    web_stack,
    web_user,
    browser,
    stack_env,  # noqa: F811
):
    """New entries go into parts of PART_SIZE (app/state/task_detail.py), each a state of its
    own; a tool result finds its call in an earlier part; when the parts hold 1,000 entries they
    join the stored conversation."""
    from app import live
    from app.events import TextEvent, ToolResultEvent, ToolUseEvent
    from app.state.task_detail import LIVE_PARTS, PART_SIZE

    (task_id,) = seed_tasks(1, "long task", status="running", finished_at=None)
    call = PART_SIZE - 1  # the tool call closes the first part
    later = call + 1 + PART_SIZE // 2  # text entries before the result: the second part
    total = PART_SIZE * LIVE_PARTS + 14  # past what the parts hold

    def say(numbers) -> None:  # noqa: ANN001
        for n in numbers:
            live.publish(task_id, TextEvent(attempt=1, text=f"line {n}"))

    with open_page(browser, "desktop") as watched:
        page = watched.page
        open_live_task(page, web_stack, web_user, task_id)
        say(range(call))
        live.publish(task_id, ToolUseEvent(attempt=1, id="call-1", name="Bash", input={}))
        say(range(call, later - 1))  # these start the second part
        live.publish(task_id, ToolResultEvent(attempt=1, tool_use_id="call-1", output="done"))
        log = page.locator("#event-log")
        entries = log.locator(":scope > .log-part > .log-entry")
        expect(log.locator(".tool-call")).to_have_attribute("data-state", "ok", timeout=30_000)
        expect(entries).to_have_count(later, timeout=30_000)

        say(range(later - 1, total))
        expect(log).to_contain_text(f"line {total - 1}", timeout=60_000)
        expect(entries).to_have_count(total + 1, timeout=30_000)
        texts = log.locator(".assistant-text").all_inner_texts()
        assert texts == [f"line {n}" for n in range(total)]
        expect(log.locator(".tool-call")).to_have_attribute("data-state", "ok", timeout=30_000)
        assert entries.nth(call).get_attribute("data-kind") == "tool_use"
        assert not watched.errors, watched.errors


def test_an_unreadable_stream_entry_does_not_stop_the_live_page(
    web_stack,
    web_user,
    browser,
    stack_env,  # noqa: F811
):
    """An entry of the task's stream that is no event this version reads (a newer worker's new
    kind, during a rolling upgrade) is skipped: the entries after it still come, live."""
    from app import live
    from app.events import TextEvent
    from app.queue import get_redis

    (task_id,) = seed_tasks(1, "upgrade in progress", status="running", finished_at=None)
    with open_page(browser, "desktop") as watched:
        page = watched.page
        open_live_task(page, web_stack, web_user, task_id)
        live.publish(task_id, TextEvent(attempt=1, text="before the unknown entry"))
        get_redis().xadd(live.task_stream(task_id), {"e": '{"type": "hologram"}'})
        live.publish(task_id, TextEvent(attempt=1, text="after the unknown entry"))
        log = page.locator("#event-log")
        expect(log).to_contain_text("after the unknown entry", timeout=30_000)
        assert log.locator(".assistant-text").all_inner_texts() == [
            "before the unknown entry",
            "after the unknown entry",
        ]
        assert not watched.errors, watched.errors


@contextmanager
def task_table_away() -> Iterator[None]:
    """Every read of the stack's task table fails (it is renamed) for the `with` block."""
    from sqlalchemy import text

    from app.db import get_engine

    with get_engine().begin() as conn:
        conn.execute(text("ALTER TABLE task RENAME TO task_away"))
    try:
        yield
    finally:
        with get_engine().begin() as conn:
            conn.execute(text("ALTER TABLE task_away RENAME TO task"))


def finish(task_id: int) -> None:
    """Mark a seeded running task succeeded, as its worker stores it before it publishes."""
    from app.db import session_scope
    from app.models import Task, utcnow

    with session_scope() as session:
        task = session.get(Task, task_id)
        task.status, task.finished_at = "succeeded", utcnow()
        session.add(task)


def test_the_live_page_rides_out_a_database_that_does_not_answer(
    web_stack,
    web_user,
    browser,
    stack_env,  # noqa: F811
):
    """A status event makes the page read the task row again; if the database fails then,
    the page keeps following (logged) and reads the row once the database answers again, rather
    than show that moment's status for good."""
    from app import live
    from app.events import StatusEvent

    (task_id,) = seed_tasks(1, "database away", status="running", finished_at=None)
    with open_page(browser, "desktop") as watched:
        page = watched.page
        open_live_task(page, web_stack, web_user, task_id)
        status = page.locator("#task-status")
        expect(status).to_have_attribute("data-status", "running")
        with task_table_away():
            live.publish(task_id, StatusEvent(attempt=1, status="succeeded", reason=None))
            time.sleep(2.5)  # the page's read failed by now
        finish(task_id)
        expect(status).to_have_attribute("data-status", "succeeded", timeout=15_000)
        assert f"task {task_id}'s page: a live read failed" in web_stack.log_path.read_text()
        assert not watched.errors, watched.errors


def test_the_dashboard_rides_out_a_database_that_does_not_answer(
    web_stack,
    web_user,
    browser,
    stack_env,  # noqa: F811
):
    """The dashboard reads its counts again at each status change; a read that fails is logged
    and tried again at the next tick, and the counts are right once the database answers."""
    from app import live
    from app.events import StatusEvent

    (task_id,) = seed_tasks(1, "dashboard database away", status="running", finished_at=None)
    with open_page(browser, "desktop") as watched:
        page = watched.page
        sign_in(page, web_stack.url, web_user)
        page.goto(web_stack.url + "/")
        running = page.locator(f".running-task[data-task-id='{task_id}']")
        expect(running).to_have_count(1, timeout=30_000)
        page.wait_for_timeout(1500)  # the dashboard's follower is reading the status stream
        with task_table_away():
            live.publish(task_id, StatusEvent(attempt=1, status="succeeded", reason=None))
            time.sleep(2.5)  # the dashboard's read failed by now
        finish(task_id)
        expect(running).to_have_count(0, timeout=15_000)
        assert "the dashboard: a live read failed" in web_stack.log_path.read_text()
        assert not watched.errors, watched.errors
