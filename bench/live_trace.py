"""Where a live event's renderer time goes: Chromium's trace of one tab, per event, by stage.

Starts the stack as bench/live_latency.py does, opens one tab (the bare pipe's page, a task
page, and the task page once per variant given), publishes `--events` events at 20/s after
`--warmup` unmeasured ones, traces them (Playwright's `browser.start_tracing`: the
devtools.timeline, blink and cc categories) and prints, for the renderer's main thread, the
self time of each kind of trace event per event shown (ms), side by side. Tracing itself costs,
so the figures are larger than live_latency's CPU figures; compare the columns of one run (the
machine's speed drifts by up to 2x within an hour).

A variant changes the task page in the browser only, without a rebuild:
  --css "RULES"        a style sheet added to every page (`!important` to override ours)
  --js FILE            served instead of assets/taskdeck.js

    .venv/bin/python bench/live_trace.py
    .venv/bin/python bench/live_trace.py --css ".log-entry{contain:none!important}"

A benchmark, not a test: it prints figures and never fails on them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import live_latency as bench  # noqa: E402  (the same stack, sign-in, tabs and publisher)

CATEGORIES = ["devtools.timeline", "blink", "cc", "disabled-by-default-devtools.timeline"]
SHOWN_MS = 0.03  # rows below this in every column are left out


def main_thread_self_times(trace_path: Path) -> dict[str, float]:
    """Self time (µs) of each event name on the busiest renderer main thread of the trace."""
    data = json.loads(trace_path.read_text())
    events = data["traceEvents"] if isinstance(data, dict) else data
    thread_names = {
        (e["pid"], e["tid"]): e["args"]["name"]
        for e in events
        if e.get("ph") == "M" and e.get("name") == "thread_name"
    }
    by_thread: dict[tuple[int, int], list[dict]] = defaultdict(list)
    for e in events:
        where = (e.get("pid"), e.get("tid"))
        if e.get("ph") == "X" and "dur" in e and thread_names.get(where) == "CrRendererMain":
            by_thread[where].append(e)
    if not by_thread:
        return {}
    busiest = max(by_thread.values(), key=lambda xs: sum(e["dur"] for e in xs))
    self_time: dict[str, float] = defaultdict(float)
    open_events: list[tuple[str, float]] = []  # (name, end) of the enclosing events
    for e in sorted(busiest, key=lambda e: (e["ts"], -e["dur"])):
        while open_events and open_events[-1][1] <= e["ts"]:
            open_events.pop()
        if open_events:
            self_time[open_events[-1][0]] -= e["dur"]
        self_time[e["name"]] += e["dur"]
        open_events.append((e["name"], e["ts"] + e["dur"]))
    return self_time


def trace_case(browser, stack, user, variant: dict, args, workdir: Path) -> dict[str, float]:  # noqa: ANN001
    """Trace one tab of `variant` while the events come; its self times per event (ms)."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    if variant.get("js"):
        script = Path(variant["js"]).read_text()
        context.route(
            "**/taskdeck.js",
            lambda route: route.fulfill(body=script, content_type="application/javascript"),
        )
    if variant.get("css"):
        context.add_init_script(
            "document.addEventListener('DOMContentLoaded', () => {"
            " const style = document.createElement('style');"
            f" style.textContent = {json.dumps(variant['css'])};"
            " document.head.appendChild(style); });"
        )
    page = bench.sign_in(context, stack, user)
    bare = variant["bare"]
    target = variant["pipe"] if bare else bench.running_tasks(1)[0]
    bench.open_target(page, stack, target, bare)
    publisher = bench.Publisher([target], args.events, 20.0, bare, args.warmup)
    publisher.start()
    publisher.measuring.wait()
    trace_path = workdir / f"trace-{variant['name']}.json"
    browser.start_tracing(page=page, path=str(trace_path), categories=CATEGORIES)
    publisher.join()
    time.sleep(0.3)
    browser.stop_tracing()
    context.close()
    return {
        name: us / 1000 / args.events for name, us in main_thread_self_times(trace_path).items()
    }


def trace_each(names: list[str], trace_one) -> dict[str, dict[str, float]]:  # noqa: ANN001
    """In one headless Chromium, `trace_one(browser, name)` for each name: their columns."""
    from playwright.sync_api import sync_playwright

    columns: dict[str, dict[str, float]] = {}
    with sync_playwright() as playwright:
        browser = bench.launch_chromium(playwright)
        for name in names:
            print(f"  tracing {name} ...", flush=True)
            columns[name] = trace_one(browser, name)
        browser.close()
    return columns


def print_columns(columns: dict[str, dict[str, float]], title: str, against: str = "") -> None:
    """The self times side by side, busiest stage first, each column's total, and with
    `against` (a column's name) each total in times that column's."""
    names = {name for column in columns.values() for name, ms in column.items() if ms >= SHOWN_MS}
    width = max(12, *(len(name) + 2 for name in columns))
    print(f"\n{title}")
    print(f"{'trace event':48}" + "".join(f"{name:>{width}}" for name in columns))
    for name in sorted(names, key=lambda n: -max(c.get(n, 0.0) for c in columns.values())):
        print(
            f"{name[:48]:48}" + "".join(f"{c.get(name, 0.0):{width}.3f}" for c in columns.values())
        )
    totals = {name: sum(column.values()) for name, column in columns.items()}
    print(f"{'all':48}" + "".join(f"{total:{width}.3f}" for total in totals.values()))
    if against:
        ratios = (f"{total / totals[against]:.2f}x" for total in totals.values())
        print(f"{'against ' + against:48}" + "".join(f"{ratio:>{width}}" for ratio in ratios))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200, help="traced events")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured events first")
    parser.add_argument("--css", action="append", default=[], help="a variant: CSS rules")
    parser.add_argument("--js", action="append", default=[], help="a variant: taskdeck.js")
    args = parser.parse_args()
    variants = [{"name": "bare pipe", "bare": True, "pipe": 900}, {"name": "task page"}]
    variants += [{"name": f"css {n}", "css": css} for n, css in enumerate(args.css, 1)]
    variants += [{"name": f"js {n}", "js": js} for n, js in enumerate(args.js, 1)]
    for variant in variants:
        variant.setdefault("bare", False)
    workdir, stack, user = bench.start_stack("taskdeck-trace-")
    by_name = {variant["name"]: variant for variant in variants}
    try:
        columns = trace_each(
            list(by_name),
            lambda browser, name: trace_case(browser, stack, user, by_name[name], args, workdir),
        )
    finally:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    for n, css in enumerate(args.css, 1):
        print(f"css {n}: {css}")
    for n, js in enumerate(args.js, 1):
        print(f"js {n}: {js}")
    print_columns(
        columns, f"renderer main thread, self time per event (ms), {args.events} events at 20/s"
    )


if __name__ == "__main__":
    main()
