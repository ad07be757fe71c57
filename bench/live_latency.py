"""Live latency: a worker-side event, stamped with its time, until it shows in the page's DOM.

Starts the whole stack (`python -m app.stack`, demo mode, its own redis-server and SQLite) with
TASKDECK_BENCH_PAGES=1, signs Chromium in, and measures two paths with the same clock (the
browser's `performance.timeOrigin + performance.now()` and Python's `time.time()` both read the
machine's wall clock):

  taskdeck   an event published on a running task's stream exactly as the worker publishes it
             (`app.live.publish`, stamped `ts` when made) -> the task page's background event
             (XREAD) -> state -> websocket -> a new `.log-entry` in the task page's DOM
             (a MutationObserver notes the moment it appears).
  bare pipe  the same XADD -> a minimal Reflex background event that only sets one text
             (app/pages/bench_pipe.py) -> the text in the DOM.

Each runs 1 tab following 1 running task, then 10 tabs following 10 of 20 running tasks, every
task receiving `--events` events at `--rate` per second, in `--rounds` rounds where the two paths
take turns (the load of this machine drifts over minutes; taking turns gives both the same
drift). Prints p50/p95/p99 (ms) of all rounds pooled, the ratio Taskdeck / bare pipe, each
round's ratio, and the CPU time each group of processes (renderers, and of that their main
threads; the GPU process, the rest of the browser, the stack, redis-server) used per event shown
while the events were published;
for each task-page run, also the latencies of the ticks in which a tab turned a page of its log,
of the tick after, and of the others.
A benchmark, not a test: it prints figures and never fails on them.

    .venv/bin/python bench/live_latency.py            # 500 events at 20/s, 3 rounds (~10 min)
    .venv/bin/python bench/live_latency.py --events 100 --rounds 1 --only 10
    .venv/bin/python bench/live_latency.py --only 10 --warmup 100   # tabs past their first 100

A freshly opened tab runs its first ~100 events' JavaScript before V8 has compiled it (with
Chromium's `--js-flags=--always-sparkplug` the first hundred are as fast as the rest): `--warmup`
publishes that many unmeasured events first, to measure tabs as they are after a while.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, bench/ is first on sys.path, where a sibling (bench/queue.py) would shadow
# the standard library's queue module: take it off.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

OBSERVER_JS = """
(selector) => {
  window.__seen = [];
  const target = document.querySelector(selector);
  const pattern = /bench-(\\d+)-/;
  const note = (node) => {
    const text = node.textContent || "";
    const match = text.match(pattern);
    if (match) window.__seen.push([parseInt(match[1]), performance.timeOrigin + performance.now()]);
  };
  new MutationObserver((mutations) => {
    for (const m of mutations) {
      if (m.type === "characterData") { note(m.target); continue; }
      for (const node of m.addedNodes) note(node);
    }
  }).observe(target, { childList: true, subtree: true, characterData: true });
  // The task page's pager turns a page by setting the log's min-height (assets/taskdeck.js).
  window.__turns = [];
  new MutationObserver(() => window.__turns.push(performance.timeOrigin + performance.now()))
    .observe(target, { attributes: true, attributeFilter: ["style"] });
  return true;
}
"""


# Notes when each marker first arrives over the websocket: splits the latency into the server's
# part (stamp -> message) and the browser's (message -> DOM).
WEBSOCKET_JS = """
(() => {
  const Original = window.WebSocket;
  window.__ws = [];
  function Watched(...args) {
    const socket = new Original(...args);
    socket.addEventListener("message", (event) => {
      const at = performance.timeOrigin + performance.now();
      const text = typeof event.data === "string" ? event.data : "";
      for (const m of text.matchAll(/bench-(\\d+)-/g)) window.__ws.push([parseInt(m[1]), at]);
    });
    return socket;
  }
  Watched.prototype = Original.prototype;
  Object.assign(Watched, Original);
  window.WebSocket = Watched;
})();
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) < 2:
        return (values[0],) * 3 if values else (float("nan"),) * 3
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98]


class Stack:
    """redis-server + `python -m app.stack` in a temporary directory."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.redis_port = free_port()
        self.port = free_port()
        self.redis: subprocess.Popen | None = None
        self.app: subprocess.Popen | None = None
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "TASKDECK_"))}
        env.update(
            TASKDECK_PORT=str(self.port),
            TASKDECK_REDIS_URL=f"redis://127.0.0.1:{self.redis_port}/0",
            TASKDECK_DATABASE_URL=f"sqlite:///{workdir / 'taskdeck.db'}",
            TASKDECK_WORKSPACE_ROOT=str(workdir / "workspaces"),
            TASKDECK_CLAUDE_CONFIG_ROOT=str(workdir / "claude"),
            TASKDECK_BENCH_PAGES="1",
            TASKDECK_WORKERS="1",
            REFLEX_WEB_WORKDIR=os.environ.get("REFLEX_WEB_WORKDIR", str(workdir / "web")),
        )
        self.env = env

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if not binary:
            raise SystemExit("redis-server is missing (apt-get install redis-server)")
        self.redis = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
        )
        log = open(self.workdir / "stack.log", "ab")  # noqa: SIM115
        self.app = subprocess.Popen(
            [sys.executable, "-m", "app.stack"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            if self.app.poll() is not None:
                raise SystemExit((self.workdir / "stack.log").read_text()[-3000:])
            try:
                with urllib.request.urlopen(self.url + "/ping", timeout=2):
                    return
            except Exception:
                time.sleep(1)
        raise SystemExit("the stack did not start")

    def stop(self) -> None:
        if self.app and self.app.poll() is None:
            os.killpg(self.app.pid, signal.SIGINT)
            try:
                self.app.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.app.pid, signal.SIGKILL)
        if self.redis and self.redis.poll() is None:
            self.redis.terminate()
            self.redis.wait(10)


CPU_GROUPS = (
    "renderers",
    "renderer main",  # of the renderers' time, their main threads' (script, style, layout, paint)
    "GPU process",
    "browser, other",
    "Taskdeck stack",
    "redis-server",
)


def cpu_seconds(stack: Stack) -> dict[str, float]:
    """CPU time (user + system, s) used so far by each group of processes: Chromium's renderers
    (and, of that, their main threads: the rest is their compositor, raster and IO threads), its
    GPU process (it composites the frames), the rest of the browser, the stack (`python -m
    app.stack` and what it started: the Reflex backend, the workers) and redis-server."""
    tick = os.sysconf("SC_CLK_TCK")
    parent: dict[int, int] = {}
    group_of: dict[int, str] = {}
    seconds: dict[int, float] = {}
    main_thread = 0.0  # the renderers' main threads
    for name in filter(str.isdigit, os.listdir("/proc")):
        pid = int(name)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # gone meanwhile
        fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
        parent[pid] = int(fields[1])
        seconds[pid] = (int(fields[11]) + int(fields[12])) / tick
        if "--type=renderer" in command:  # its main thread is the thread whose id is the pid's
            try:
                main = Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                main_thread += (int(main[11]) + int(main[12])) / tick
            except OSError:
                pass
        if "chrom" in command:
            group_of[pid] = (
                "renderers"
                if "--type=renderer" in command
                else "GPU process"
                if "--type=gpu-process" in command
                else "browser, other"
            )
        elif stack.redis and pid == stack.redis.pid:
            group_of[pid] = "redis-server"
    used = dict.fromkeys(CPU_GROUPS, 0.0)
    used["renderer main"] = main_thread
    for pid, spent in seconds.items():
        ancestor = pid
        while ancestor > 1 and not (stack.app and ancestor == stack.app.pid):
            ancestor = parent.get(ancestor, 0)
        group = "Taskdeck stack" if ancestor > 1 else group_of.get(pid)
        if group:
            used[group] += spent
    return used


def use_stack_settings(stack: Stack) -> None:
    """Point this process's app.* modules at the stack's database and Redis."""
    for key in ("TASKDECK_REDIS_URL", "TASKDECK_DATABASE_URL"):
        os.environ[key] = stack.env[key]
    from app.settings import get_settings

    get_settings.cache_clear()


def make_user(stack: Stack) -> tuple[str, str]:
    user = ("bench", "bench-password-1")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "user",
            "create",
            user[0],
            "--role",
            "member",
            "--password-stdin",
        ],
        input=user[1] + "\n",
        text=True,
        env=stack.env,
        cwd=ROOT,
        check=False,
        capture_output=True,
    )
    return user


def start_stack(prefix: str) -> tuple[Path, Stack, tuple[str, str]]:
    """A stack started in a new temporary directory, this process pointed at its database and
    Redis, and a user to sign in as."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    stack = Stack(workdir)
    print(f"starting the stack in {workdir} (builds the web app first) ...", flush=True)
    stack.start()
    use_stack_settings(stack)
    return workdir, stack, make_user(stack)


def launch_chromium(playwright):  # noqa: ANN001, ANN201
    """The machine's Chromium, headless, as every benchmark here drives it."""
    return playwright.chromium.launch(
        executable_path="/usr/bin/chromium",
        args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    )


def running_tasks(count: int) -> list[int]:
    """Task rows marked running, their events coming from this process as from a worker's run.

    This process also holds each task's lease (app.queue.TaskLock), as the run would: without
    it the reconciler finds a running task with no job and no lease ("worker lost") and puts it
    back on its queue, and the stack's worker then runs it for real (a `claude` process and its
    events) in the middle of the measurement."""
    from app.db import session_scope
    from app.models import Task, utcnow
    from app.queue import TaskLock

    rows = [
        Task(
            title=f"bench task {n}",
            prompt="bench",
            model="bench",
            max_turns=500,
            status="running",
            started_at=utcnow(),
        )
        for n in range(count)
    ]
    with session_scope() as session:
        session.add_all(rows)
    ids = [row.id for row in rows]
    for task_id in ids:
        TaskLock(task_id, ttl_s=6 * 3600).acquire()
    return ids


class Publisher(threading.Thread):
    """Every 1/rate s, one event to each stream; remembers when each was made. The first
    `warmup` events of each stream are not measured (their text has no marker); `measuring` is
    set when the measured ones start."""

    def __init__(
        self, targets: list[int], events: int, rate: float, bare: bool, warmup: int = 0
    ) -> None:
        super().__init__(daemon=True)
        self.targets, self.events, self.rate, self.bare = targets, events, rate, bare
        self.warmup = warmup
        self.measuring = threading.Event()
        self.stamps: dict[int, dict[int, float]] = {t: {} for t in targets}

    def run(self) -> None:
        from app import live
        from app.events import TextEvent
        from app.pages.bench_pipe import pipe_stream
        from app.queue import get_redis

        redis = get_redis()
        start = time.monotonic()
        for n in range(self.warmup + self.events):
            seq = n - self.warmup  # the measured events are numbered from 0
            if seq == 0:
                self.measuring.set()
            for target in self.targets:
                text = f"bench-{seq}-" if seq >= 0 else f"warm-up {n}"
                event = TextEvent(text=text)
                if self.bare:
                    redis.xadd(pipe_stream(target), {"e": f"{text}{event.ts}"}, maxlen=1000)
                else:
                    live.publish(target, event, redis)
                if seq >= 0:
                    self.stamps[target][seq] = event.ts * 1000
            pause = start + (n + 1) / self.rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)


def sign_in(context, stack: Stack, user):  # noqa: ANN001, ANN201
    """A new page of `context`, signed in as `user` (the session cookie serves every tab)."""
    page = context.new_page()
    page.goto(stack.url + "/login")
    page.fill("#username", user[0])
    page.fill("#password", user[1])
    page.click("#login-submit")
    page.wait_for_url(lambda url: "/login" not in url, timeout=60_000)
    return page


def open_target(tab, stack: Stack, target: int, bare: bool) -> None:  # noqa: ANN001
    """Open the bare pipe's page number `target`, or task `target`'s page, in `tab`, and wait
    until its reader follows the stream."""
    from app.pages.bench_pipe import pipe_stream
    from app.queue import get_redis

    if bare:
        tab.goto(f"{stack.url}/bench/pipe/{target}")
        tab.wait_for_selector("#pipe-text", state="attached", timeout=60_000)
        for _ in range(200):  # wait until the page's reader is following its stream
            get_redis().xadd(pipe_stream(target), {"e": "ready"})
            if tab.inner_text("#pipe-text") == "ready":
                break
            time.sleep(0.1)
    else:
        tab.goto(f"{stack.url}/tasks/{target}")
        tab.wait_for_selector("#event-log", state="attached", timeout=60_000)
        tab.wait_for_timeout(1500)  # the page's follower is reading the stream


def open_watched_tabs(browser, stack: Stack, user, targets: list[int], tabs: int, bare: bool):  # noqa: ANN001, ANN201
    """A signed-in context with `tabs` pages, each on its target (the bare pipe's page or a
    task page) and watched: the moments events appear in its DOM, and its websocket messages,
    are noted in the page. Returns (context, pages)."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.add_init_script(WEBSOCKET_JS)
    page = sign_in(context, stack, user)
    pages = [page] + [context.new_page() for _ in range(tabs - 1)]
    for target, tab in zip(targets, pages, strict=False):
        open_target(tab, stack, target, bare)
        tab.evaluate(OBSERVER_JS, "#pipe-text" if bare else "#event-log")
    return context, pages


def first_latencies(tab, stamps: dict[int, float], key: str = "__seen") -> dict[int, float]:  # noqa: ANN001
    """Event number -> ms from its making until a watched tab first noted it (`__seen`: in the
    DOM; `__ws`: its websocket message), for the measured events."""
    first: dict[int, float] = {}
    for seq, at in tab.evaluate(f"window.{key}"):
        first.setdefault(seq, at)
    return {seq: at - stamps[seq] for seq, at in first.items() if seq in stamps}


def print_by_turns(
    by_seq: dict[int, list[float]], stamps: dict[int, float], turns: list[float], tick_ms: float
) -> None:
    """Latencies of the ticks in which any tab turned a page of its log, of the tick after,
    and of the others (a turn repaints the whole log box: does it slow the other tabs?)."""
    turn_ticks = {seq for seq, at in stamps.items() if any(at <= t < at + tick_ms for t in turns)}
    groups: dict[str, list[float]] = {"turn": [], "after": [], "other": []}
    for seq, values in by_seq.items():
        group = "turn" if seq in turn_ticks else "after" if seq - 1 in turn_ticks else "other"
        groups[group] += values
    print(
        f"    p50/p95/p99 on the {len(turn_ticks)} ticks with a page turn, the tick after, "
        "the others: "
        + "; ".join(
            "/".join(f"{x:.1f}" for x in percentiles(values)) for values in groups.values()
        ),
        flush=True,
    )


def run_case(
    browser,
    stack: Stack,
    user,
    tabs: int,
    streams: int,
    events: int,
    rate: float,  # noqa: ANN001
    bare: bool,
    warmup: int = 0,
) -> tuple[list[float], list[float], dict[str, float]]:
    """Open `tabs` pages, publish to `streams` streams; return every latency seen (ms), the
    same until the websocket message, and the CPU used per event shown (ms, by process group)."""
    targets = list(range(streams)) if bare else running_tasks(streams)
    context, pages = open_watched_tabs(browser, stack, user, targets, tabs, bare)
    publisher = Publisher(targets, events, rate, bare, warmup)
    print(f"    publishing {events} events to each of {streams} streams ...", flush=True)
    publisher.start()
    publisher.measuring.wait()
    before = cpu_seconds(stack)
    publisher.join()
    after = cpu_seconds(stack)
    cpu = {group: (after[group] - before[group]) * 1000 / (events * tabs) for group in CPU_GROUPS}
    time.sleep(2.0)
    latencies: list[float] = []
    server: list[float] = []
    by_seq: dict[int, list[float]] = {}  # event number -> its latency in each tab
    turns: list[float] = []  # when any tab turned a page of its log
    for target, tab in zip(targets, pages, strict=False):
        stamps = publisher.stamps[target]
        turns += tab.evaluate("window.__turns")
        seen = first_latencies(tab, stamps)
        latencies += seen.values()
        server += first_latencies(tab, stamps, "__ws").values()
        for seq, latency in seen.items():
            by_seq.setdefault(seq, []).append(latency)
    if turns:
        print_by_turns(by_seq, publisher.stamps[targets[0]], turns, 1000 / rate)
    if not bare:  # a log that stopped following scrolls no more: cheaper, and wrong
        following = [
            tab.evaluate("() => document.getElementById('log-scroll').dataset.following")
            for tab in pages
        ]
        print(f"    tabs still following their log: {following.count('true')} of {len(pages)}")
    context.close()
    by_hundred: dict[int, list[float]] = {}  # does the cost grow with the conversation?
    for seq, values in by_seq.items():
        by_hundred.setdefault(seq // 100, []).extend(values)
    print(
        "    p95 by event number (per 100): "
        + " ".join(f"{percentiles(v)[1]:.1f}" for _, v in sorted(by_hundred.items())),
        flush=True,
    )
    return latencies, server, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500, help="events per task stream")
    parser.add_argument("--rate", type=float, default=20.0, help="events per second per stream")
    parser.add_argument("--only", choices=["1", "10"], help="run only the 1-tab or 10-tab case")
    parser.add_argument(
        "--warmup",
        type=int,
        default=0,
        help="events per stream published before the measured ones, not measured (a fresh "
        "tab's first ~100 events run its JavaScript before V8 has compiled it: slower)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="rounds per case, the two paths taking turns (this machine's load drifts: a "
        "single run of each can differ by 2x)",
    )
    parser.add_argument(
        "--path", choices=["bare", "taskdeck"], help="measure only the bare pipe or only Taskdeck"
    )
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    workdir, stack, user = start_stack("taskdeck-bench-")
    results: dict[tuple[str, str], list[float]] = {}
    at_socket: dict[tuple[str, str], list[float]] = {}
    rounds: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    cpu_used: dict[tuple[str, str], list[dict[str, float]]] = {}
    try:
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            cases = [("1 tab, 1 task", 1, 1), ("10 tabs, 20 tasks", 10, 20)]
            if args.only:
                cases = [case for case in cases if str(case[1]) == args.only]
            for label, tabs, streams in cases:
                for round_no in range(1, args.rounds + 1):
                    for bare in (True, False):
                        if args.path and bare != (args.path == "bare"):
                            continue
                        name = "bare pipe" if bare else "taskdeck"
                        print(f"  {name:9}  {label}, round {round_no} ...", flush=True)
                        seen, server, cpu = run_case(
                            browser,
                            stack,
                            user,
                            tabs,
                            streams,
                            args.events,
                            args.rate,
                            bare,
                            args.warmup,
                        )
                        results.setdefault((name, label), []).extend(seen)
                        at_socket.setdefault((name, label), []).extend(server)
                        rounds.setdefault((name, label), []).append(percentiles(seen))
                        cpu_used.setdefault((name, label), []).append(cpu)
            browser.close()
    finally:
        stack.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    print(
        f"\nlive latency, event made -> in the DOM ({args.events} events/stream at "
        f"{args.rate:g}/s), ms"
    )
    print(f"{'path':10} {'case':18} {'seen':>6} {'p50':>8} {'p95':>8} {'p99':>8}")
    for (name, label), values in results.items():
        p50, p95, p99 = percentiles(values)
        print(f"{name:10} {label:18} {len(values):6d} {p50:8.1f} {p95:8.1f} {p99:8.1f}")
    print("\nof which until the websocket message arrived (the server's part), ms")
    for (name, label), values in at_socket.items():
        p50, p95, p99 = percentiles(values)
        print(f"{name:10} {label:18} {len(values):6d} {p50:8.1f} {p95:8.1f} {p99:8.1f}")
    print("\nCPU per event shown, while publishing (ms; mean of the rounds)")
    print(f"{'path':10} {'case':18} " + " ".join(f"{group:>15}" for group in CPU_GROUPS))
    for (name, label), runs in cpu_used.items():
        means = [statistics.fmean(run[group] for run in runs) for group in CPU_GROUPS]
        print(f"{name:10} {label:18} " + " ".join(f"{mean:15.2f}" for mean in means))
    print()
    for label in {label for _, label in results}:
        if ("taskdeck", label) not in results or ("bare pipe", label) not in results:
            continue
        ours = percentiles(results[("taskdeck", label)])
        bare = percentiles(results[("bare pipe", label)])
        ratio = " ".join(f"{a / b:.2f}x" if b else "-" for a, b in zip(ours, bare, strict=True))
        print(f"taskdeck / bare pipe, {label}: p50 p95 p99 = {ratio}  (all rounds pooled)")
        for n, (ours_n, bare_n) in enumerate(
            zip(rounds[("taskdeck", label)], rounds[("bare pipe", label)], strict=False), 1
        ):
            ratio = " ".join(
                f"{a:.1f}/{b:.1f}={a / b:.2f}x" if b else "-"
                for a, b in zip(ours_n, bare_n, strict=True)
            )
            print(f"  round {n}: p50 p95 p99 = {ratio}")
    print(
        json.dumps(
            {f"{n} | {c}": [round(x, 2) for x in percentiles(v)] for (n, c), v in results.items()}
        )
    )


if __name__ == "__main__":
    main()
