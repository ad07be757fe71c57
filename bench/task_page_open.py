"""Opening a long conversation: a finished task's page with `--events` stored events, from the
click to the whole log in the page's DOM, and what the page then holds (JavaScript heap, DOM
nodes).

Starts the whole stack as bench/live_latency.py does, stores one task's events as a run of
Claude Code would leave them (each turn: the model's text in markdown with a code block, a tool
call and its result, a short plain message), then opens the task's page `--opens` times, each in
a fresh tab, after a first open, and prints the median and the slowest of: until the last entry
is in the DOM, the JavaScript heap used after a garbage collection, and the DOM's node count.
The first open is printed on its own: the server keeps the HTML of the model's markdown
(app/log_html.py), so the opens after it are a page opened again, as a task page is, by many
tabs.

    .venv/bin/python bench/task_page_open.py                  # 3,000 events, 5 opens

A benchmark, not a test: it prints figures and never fails on them.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import live_latency  # noqa: E402  (the stack, the user, Chromium and signing in)

TEXT = (
    "Turn {n}: I read `src/app.py` and **changed** two functions:\n\n"
    "- `load()` now checks the file\n- `save()` writes atomically\n\n"
    "```python\ndef save(path, data):\n    tmp = path.with_suffix('.tmp')\n"
    "    tmp.write_text(data)\n    tmp.replace(path)\n```"
)


def seed_task(events: int) -> tuple[int, int]:
    """A finished task with `events` stored events; returns (its id, the entries its log shows)."""
    from app import service
    from app.db import session_scope
    from app.events import TextEvent, ToolResultEvent, ToolUseEvent
    from app.models import Task, utcnow

    with session_scope() as session:
        task = Task(
            title="a long conversation",
            prompt="bench",
            model="bench",
            max_turns=5000,
            status="succeeded",
            started_at=utcnow(),
            finished_at=utcnow(),
        )
        session.add(task)
    stored = []
    for n in range(events // 4):
        call = f"call-{n}"
        turn = [
            TextEvent(attempt=1, text=TEXT.format(n=n)),
            ToolUseEvent(attempt=1, id=call, name="Bash", input={"command": f"pytest -k t{n}"}),
            ToolResultEvent(attempt=1, tool_use_id=call, output=f"{n} passed\n" * 5),
            TextEvent(attempt=1, text=f"All tests of turn {n} pass."),
        ]
        stored += [(f"{n + 1}-{k}", event) for k, event in enumerate(turn)]
    service.record_events(task.id, stored)
    return task.id, len(stored) // 4 * 3  # each result folds into its call


def open_once(context, stack, task_id: int, entries: int) -> tuple[float, float, int]:  # noqa: ANN001
    """Open the page in a new tab: (seconds until every entry is in the DOM, heap MB, nodes)."""
    tab = context.new_page()
    started = time.perf_counter()
    tab.goto(f"{stack.url}/tasks/{task_id}", wait_until="commit")
    tab.wait_for_function(
        f"document.querySelectorAll('#event-log .log-entry').length >= {entries}",
        timeout=120_000,
        polling=20,
    )
    seconds = time.perf_counter() - started
    tab.wait_for_timeout(1000)
    cdp = context.new_cdp_session(tab)
    cdp.send("HeapProfiler.collectGarbage")
    heap = cdp.send("Runtime.getHeapUsage")["usedSize"] / 1e6
    nodes = tab.evaluate("document.getElementsByTagName('*').length")
    tab.close()
    return seconds, heap, nodes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000, help="stored events of the task")
    parser.add_argument("--opens", type=int, default=5, help="times the page is opened")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    workdir, stack, user = live_latency.start_stack("taskdeck-bench-open-")
    try:
        task_id, entries = seed_task(args.events)
        with sync_playwright() as playwright:
            browser = live_latency.launch_chromium(playwright)
            context = browser.new_context(viewport={"width": 1440, "height": 900})
            live_latency.sign_in(context, stack, user)
            first = open_once(context, stack, task_id, entries)  # the server's caches empty
            runs = [open_once(context, stack, task_id, entries) for _ in range(args.opens)]
            browser.close()
    finally:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"\nopening a task page with {args.events} stored events ({entries} log entries)")
    print(f"  the first open, until the whole log is in the DOM: {first[0] * 1000:.1f} ms")
    print(f"  the {args.opens} opens after it:")
    for name, values, unit in (
        ("until the whole log is in the DOM", [r[0] * 1000 for r in runs], "ms"),
        ("JavaScript heap after a collection", [r[1] for r in runs], "MB"),
        ("DOM nodes", [float(r[2]) for r in runs], ""),
    ):
        print(
            f"  {name:<36} median {statistics.median(values):8.1f} {unit:<3}"
            f" slowest {max(values):8.1f} {unit}"
        )


if __name__ == "__main__":
    main()
