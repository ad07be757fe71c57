"""The 10-tab tail and the renderers' garbage collection: how much of the slowest ticks is GC.

Runs bench/live_latency.py's 10-tab case (10 tabs following 10 of 20 streams, `--events` at
20/s after `--warmup` unmeasured ones) once for the bare pipe and once for the task page, with
Chromium tracing the renderers (devtools.timeline and v8 categories). Prints, for each path:
  - the V8 collections on the renderers' main threads (MajorGC, MinorGC): how many, their time
    per event shown, the longest pauses;
  - latency p50/p95/p99 (event made -> in the DOM) of the ticks during which some renderer's
    main thread was in a collection for `--pause` ms or more, and of the other ticks;
and, with `--alloc`, the JavaScript each path allocates per event in one tab (Chromium's sampling
heap profiler, garbage included), by function.
Chromium's trace clock on Linux is CLOCK_MONOTONIC, Python's time.monotonic(): the two line up.
Tracing costs, so the latencies are higher than live_latency's; compare the rows of one run.
A benchmark, not a test: it prints figures and never fails on them.

    .venv/bin/python bench/live_gc.py
    .venv/bin/python bench/live_gc.py --alloc
"""

from __future__ import annotations

import argparse
import collections
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import live_latency as bench  # noqa: E402  (the same stack, sign-in, tabs and publisher)

CATEGORIES = ["devtools.timeline", "v8", "disabled-by-default-devtools.timeline"]
TICK_MS = 50.0  # 20 events/s


def renderer_collections(trace_path: Path) -> list[tuple[str, float, float]]:
    """(kind, start in monotonic s, duration ms) of every V8 collection on a renderer's main
    thread in the trace."""
    data = json.loads(trace_path.read_text())
    events = data["traceEvents"] if isinstance(data, dict) else data
    main_threads = {
        (e["pid"], e["tid"])
        for e in events
        if e.get("ph") == "M"
        and e.get("name") == "thread_name"
        and e["args"].get("name") == "CrRendererMain"
    }
    return [
        (e["name"], e["ts"] / 1e6, e["dur"] / 1000)
        for e in events
        if e.get("ph") == "X"
        and e.get("name") in ("MajorGC", "MinorGC")
        and (e.get("pid"), e.get("tid")) in main_threads
    ]


def run_path(browser, stack, user, bare: bool, args, workdir: Path) -> None:  # noqa: ANN001
    """Trace the 10-tab case of one path; print its collections and its split latencies."""
    targets = list(range(20)) if bare else bench.running_tasks(20)
    context, tabs = bench.open_watched_tabs(browser, stack, user, targets, 10, bare)
    trace_path = workdir / f"trace-{'bare' if bare else 'taskdeck'}.json"
    wall_minus_monotonic = time.time() - time.monotonic()
    browser.start_tracing(path=str(trace_path), categories=CATEGORIES)
    publisher = bench.Publisher(targets, args.events, 20.0, bare, args.warmup)
    publisher.start()
    publisher.join()
    time.sleep(0.5)
    browser.stop_tracing()
    by_tick: dict[int, list[float]] = collections.defaultdict(list)
    for target, tab in zip(targets, tabs, strict=False):
        for seq, latency in bench.first_latencies(tab, publisher.stamps[target]).items():
            by_tick[seq].append(latency)
    context.close()

    collections_seen = renderer_collections(trace_path)
    trace_path.unlink()
    shown = args.events * len(tabs)
    name = "bare pipe" if bare else "task page"
    print(f"\n{name}: V8 collections on the renderers' main threads during the run")
    for kind in ("MajorGC", "MinorGC"):
        pauses = sorted((ms for k, _, ms in collections_seen if k == kind), reverse=True)
        print(
            f"  {kind}: {len(pauses)}, {sum(pauses) / shown:.3f} ms per event shown; "
            "longest " + ", ".join(f"{ms:.1f}" for ms in pauses[:8]) + " ms"
        )
    stamps = publisher.stamps[targets[0]]
    paused: set[int] = set()
    for _, start, ms in collections_seen:
        if ms < args.pause:
            continue
        for seq, made_ms in stamps.items():
            tick_start = made_ms / 1000 - wall_minus_monotonic
            if start < tick_start + TICK_MS / 1000 and start + ms / 1000 > tick_start:
                paused.add(seq)
    groups = {"ticks with a pause": [], "other ticks": [], "all": []}
    for seq, values in by_tick.items():
        groups["ticks with a pause" if seq in paused else "other ticks"] += values
        groups["all"] += values
    for label, values in groups.items():
        p50, p95, p99 = bench.percentiles(values)
        ticks = len(values) // len(tabs)
        print(f"  {label:20} {ticks:4d} ticks  p50 {p50:6.1f}  p95 {p95:6.1f}  p99 {p99:6.1f} ms")


def allocation_profile(browser, stack, user, bare: bool, args) -> None:  # noqa: ANN001
    """One tab of a path: the JavaScript allocated per event (garbage included), by function."""
    target = 900 if bare else bench.running_tasks(1)[0]
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = bench.sign_in(context, stack, user)
    bench.open_target(page, stack, target, bare)
    warmup = bench.Publisher([target], 0, 20.0, bare, args.warmup)
    warmup.start()
    warmup.join()
    cdp = context.new_cdp_session(page)
    cdp.send("HeapProfiler.enable")
    cdp.send(
        "HeapProfiler.startSampling",
        {
            "samplingInterval": 1024,
            "includeObjectsCollectedByMajorGC": True,
            "includeObjectsCollectedByMinorGC": True,
        },
    )
    publisher = bench.Publisher([target], args.events, 20.0, bare, 0)
    publisher.start()
    while publisher.is_alive():
        page.wait_for_timeout(200)  # the sync API answers CDP only while it is called
    page.wait_for_timeout(500)
    profile = cdp.send("HeapProfiler.stopSampling")["profile"]
    context.close()
    by_function: collections.Counter = collections.Counter()
    nodes = [profile["head"]]
    while nodes:
        node = nodes.pop()
        frame = node["callFrame"]
        where = frame["url"].rsplit("/", 1)[-1] or "(native)"
        by_function[f"{frame['functionName'] or '(anonymous)'}  {where}"] += node["selfSize"]
        nodes += node.get("children", [])
    total = sum(by_function.values()) / args.events
    name = "bare pipe" if bare else "task page"
    print(f"\n{name}: {total / 1000:.1f} KB of JavaScript allocated per event")
    for function, size in by_function.most_common(10):
        print(f"  {size / args.events:8.0f} B  {function}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500, help="events per stream")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured events first")
    parser.add_argument("--pause", type=float, default=5.0, help="a GC pause this long (ms)")
    parser.add_argument("--alloc", action="store_true", help="also profile allocations")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    workdir, stack, user = bench.start_stack("taskdeck-gc-")
    try:
        with sync_playwright() as playwright:
            browser = bench.launch_chromium(playwright)
            for bare in (True, False):
                print(f"  tracing {'the bare pipe' if bare else 'the task page'} ...", flush=True)
                run_path(browser, stack, user, bare, args, workdir)
            if args.alloc:
                for bare in (True, False):
                    allocation_profile(browser, stack, user, bare, args)
            browser.close()
    finally:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
