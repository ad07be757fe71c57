"""What Chromium alone costs to show a new log entry, against changing one text: the floor
under bench/live_latency.py's ratio, measured on static pages with no server, React or Reflex.

Each page is plain HTML with Taskdeck's own style sheet and log helper (assets/taskdeck.css,
assets/taskdeck.js: the parts with content-visibility, the pager) and a timer that makes one
change every 50 ms (20/s, as live_latency publishes), in one tab at 1440x900:

  text         one element's text changes (what the bare pipe's page does)
  log          an entry, in the task page's markup, is added to the log (100 parts of 10)
  log, flat    the same with an entry of one element and its text
  log, last 10 the entry is added and the oldest removed: the log holds 10 entries, no parts

After `--warmup` seconds it traces `--seconds` seconds (the same categories as
bench/live_trace.py) and prints the renderer main thread's self time per change (ms), by
stage, and in all against `text`. Tracing itself costs, so compare the columns of one run.

    .venv/bin/python bench/live_floor.py

A benchmark, not a test: it prints figures and never fails on them.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import live_trace  # noqa: E402  (the browser, the trace categories and the self-time sums)

from app.state.task_detail import LIVE_PARTS, PART_SIZE  # noqa: E402  (the task page's parts)

ASSETS = Path(__file__).resolve().parent.parent / "assets"
ENTRY_HTML = (
    '<div class="entry-head"><span class="entry-label" data-accent-color="blue">assistant</span>'
    '<span class="entry-time">12:00:00</span></div>'
    '<div class="assistant-text plain-text">event {n}: a few words of the model, as the bench'
    " sends them</div>"
)
# One change per tick; `n` counts them (read before and after the trace).
CHANGES = {
    "text": "document.getElementById('bare').textContent = 'event ' + n;",
    "log": "parts[Math.floor(n / PART_SIZE)].appendChild(entry(n));",
    "log, flat": (
        "var e = document.createElement('div'); e.className = 'log-entry';"
        " e.textContent = 'assistant 12:00:00 event ' + n + ': a few words of the model';"
        " parts[Math.floor(n / PART_SIZE)].appendChild(e);"
    ),
    "log, last 10": (
        "parts[0].appendChild(entry(n));"
        " if (parts[0].children.length > 10) parts[0].removeChild(parts[0].firstElementChild);"
    ),
}


def page_html(change: str) -> str:
    """A static page: Taskdeck's log box (empty parts, the log's end) and a timer."""
    parts = '<div class="log-part"></div>' * LIVE_PARTS
    entry = ENTRY_HTML.replace("{n}", "' + i + '")
    return f"""<!doctype html><html><head><link rel="stylesheet" href="taskdeck.css"></head>
<body><h1>Task</h1>
<div id="log-scroll" data-live="true">
<div id="event-log">{parts}<div id="log-end"></div></div></div>
<div id="bare">event 0</div>
<script src="taskdeck.js"></script>
<script>
var n = 0, PART_SIZE = {PART_SIZE}, parts = document.querySelectorAll(".log-part");
function entry(i) {{
  var e = document.createElement("div");
  e.className = "log-entry"; e.dataset.kind = "text"; e.dataset.error = "false";
  e.innerHTML = '{entry}';
  return e;
}}
setInterval(function () {{ if (n >= {LIVE_PARTS * PART_SIZE - 1}) return; n++; {change} }}, 50);
</script></body></html>"""


def trace_page(browser, workdir: Path, name: str, args) -> dict[str, float]:  # noqa: ANN001
    """Trace one page's changes; its main thread's self times per change (ms)."""
    path = workdir / f"{name.replace(' ', '_').replace(',', '')}.html"
    path.write_text(page_html(CHANGES[name]))
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.goto(path.as_uri())
    time.sleep(args.warmup)
    trace_path = path.with_suffix(".json")
    before = page.evaluate("n")
    browser.start_tracing(page=page, path=str(trace_path), categories=live_trace.CATEGORIES)
    time.sleep(args.seconds)
    after = page.evaluate("n")
    browser.stop_tracing()
    context.close()
    changes = max(1, after - before)
    self_times = live_trace.main_thread_self_times(trace_path)
    return {stage: us / 1000 / changes for stage, us in self_times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before the trace")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds traced")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="taskdeck-floor-"))
    for asset in ("taskdeck.css", "taskdeck.js"):
        shutil.copy(ASSETS / asset, workdir / asset)
    try:
        columns = live_trace.trace_each(
            list(CHANGES), lambda browser, name: trace_page(browser, workdir, name, args)
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    live_trace.print_columns(
        columns,
        "renderer main thread, self time per change (ms), one change every 50 ms",
        against="text",
    )


if __name__ == "__main__":
    main()
