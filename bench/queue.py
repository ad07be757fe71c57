"""Queue benchmark: Taskdeck's engine beside bare RQ on the same Redis.

Prints, for trivial tasks (the demo model's `text` scenario):
- latency from submit to the claude process started (p50/p95), one task at a time on an idle
  pool: Taskdeck (`service.create_task` -> worker -> work horse -> lease, attempt row, workspace,
  SDK -> launch shim) beside bare RQ enqueueing a job that starts the same claude CLI itself;
- throughput with a burst of tasks: tasks dispatched per second (claude started) and tasks
  completed per second, Taskdeck beside bare RQ + claude;
- bare RQ with a no-op job, as the floor of what the queue itself costs;
and the ratios Taskdeck / bare RQ.

Everything runs locally: its own redis-server on a free port, a temporary SQLite database, the
scripted demo model; nothing else is touched. Usage:
    .venv/bin/python bench/queue.py [--workers 2] [--sequential 15] [--burst 30] [--noop 300]
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, this file's directory would come first on sys.path and shadow the standard
# library's `queue` module: put the project root there instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

PROMPT = "Say hello [scenario:text]"
RQ_QUEUE = "bench-rq"


# --- jobs run by the bare RQ workers -------------------------------------------------------------


def noop_job(key: str) -> None:
    """Bare RQ floor: record when the job started."""
    from rq import get_current_job

    get_current_job().connection.hset(key, "started", repr(time.time()))


def claude_job(key: str, workdir: str, binary: str, env: dict[str, str]) -> None:
    """Bare RQ + claude: start the same CLI with the same prompt and wait for it to finish
    (everything it needs comes in its arguments: the job imports nothing heavy)."""
    from rq import get_current_job

    command = [
        binary,
        "-p",
        PROMPT,
        "--output-format",
        "stream-json",
        "--verbose",
        "--max-turns",
        "3",
    ]
    process = subprocess.Popen(
        command, cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    get_current_job().connection.hset(key, "started", repr(time.time()))
    process.wait(120)


def claude_job_args(workdir: Path) -> tuple:
    """Arguments of `claude_job`: the same binary and a scrubbed environment like Taskdeck's."""
    from worker import sandbox

    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(workdir),
        "CLAUDE_CONFIG_DIR": str(workdir),
        "ANTHROPIC_BASE_URL": os.environ["ANTHROPIC_BASE_URL"],
        "ANTHROPIC_API_KEY": "bench-key",
        "CLAUDE_CODE_MAX_RETRIES": "0",
        **sandbox.CHILD_BASE_ENV,
    }
    return (str(workdir), sandbox.claude_binary(), env)


# --- helpers -------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


class ClaudeStarts(threading.Thread):
    """Watches the pid files the launch shim writes when claude starts (their mtime is the
    start); the runner removes them when the run ends, so they are polled every 2 ms."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.watched: set[int] = set()
        self.seen: dict[int, float] = {}
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def watch(self, task_id: int) -> None:
        with self.lock:
            self.watched.add(task_id)

    def run(self) -> None:
        from worker.jobs import pid_file_for

        while not self.stop.wait(0.002):
            with self.lock:
                pending = list(self.watched - set(self.seen))
            for task_id in pending:
                try:
                    self.seen[task_id] = pid_file_for(task_id).stat().st_mtime
                except OSError:
                    pass


def wait_for(predicate, timeout: float, interval: float = 0.005):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError("benchmark step timed out")


class Stack:
    """redis-server, demo model and environment of one benchmark run."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.tmp = Path(tempfile.mkdtemp(prefix="taskdeck-bench-"))
        self.redis_port = free_port()
        self.redis: subprocess.Popen | None = None
        self.model = None
        self.pools: list[subprocess.Popen] = []

    def __enter__(self) -> Stack:
        from worker.demo_model import DemoModel

        binary = shutil.which("redis-server")
        if not binary:
            raise SystemExit("redis-server is missing (make test installs it)")
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
                str(self.tmp),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.model = DemoModel(default_scenario="text").start()
        os.environ.update(
            {
                "TASKDECK_DATABASE_URL": f"sqlite:///{self.tmp / 'bench.db'}",
                "TASKDECK_REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
                "TASKDECK_WORKSPACE_ROOT": str(self.tmp / "workspaces"),
                "TASKDECK_CLAUDE_CONFIG_ROOT": str(self.tmp / "claude"),
                "TASKDECK_METRICS_INTERVAL_S": "60",
                "ANTHROPIC_BASE_URL": self.model.url,
                "ANTHROPIC_API_KEY": "bench-key",
                "CLAUDE_CODE_MAX_RETRIES": "0",
            }
        )
        from app.db import upgrade_database
        from app.queue import get_redis
        from app.settings import get_settings

        get_settings.cache_clear()
        wait_for(lambda: _pings(get_redis()), 10, 0.05)
        upgrade_database()
        return self

    def start(self, command: list[str]) -> None:
        log = open(self.tmp / "workers.log", "ab")  # noqa: SIM115
        self.pools.append(
            subprocess.Popen(
                command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        )

    def stop_pools(self) -> None:
        for pool in self.pools:
            if pool.poll() is None:
                os.killpg(pool.pid, signal.SIGTERM)
        for pool in self.pools:
            try:
                pool.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(pool.pid, signal.SIGKILL)
        self.pools.clear()

    def __exit__(self, *exc) -> None:  # noqa: ANN002
        self.stop_pools()
        if self.model is not None:
            self.model.stop()
        if self.redis is not None:
            self.redis.terminate()
            self.redis.wait(10)
        shutil.rmtree(self.tmp, ignore_errors=True)


def _pings(client) -> bool:  # noqa: ANN001
    try:
        return bool(client.ping())
    except Exception:
        return False


# --- measurements --------------------------------------------------------------------------------


def taskdeck(stack: Stack, sequential: int, burst: int) -> dict[str, float]:
    from app import service
    from app.queue import get_redis
    from app.schemas import TaskCreate

    get_redis().flushdb()
    stack.start([sys.executable, "-m", "worker", "--workers", str(stack.workers)])
    wait_for(lambda: len(get_redis().keys("rq:worker:*")) >= stack.workers, 60, 0.1)
    service.create_task(TaskCreate(prompt=PROMPT))  # warm-up: first shim, caches
    wait_for(lambda: service.count_by_status()["succeeded"] == 1, 120, 0.05)

    starts = ClaudeStarts()
    starts.start()
    latencies = []
    for _ in range(sequential):
        submitted = time.time()
        task = service.create_task(TaskCreate(prompt=PROMPT))
        starts.watch(task.id)
        wait_for(lambda t=task.id: service.get_task(t).status == "succeeded", 120, 0.02)
        if task.id in starts.seen:
            latencies.append(starts.seen[task.id] - submitted)

    t0 = time.time()
    ids = []
    for _ in range(burst):
        ids.append(service.create_task(TaskCreate(prompt=PROMPT)).id)
        starts.watch(ids[-1])
    submit_s = time.time() - t0
    wait_for(lambda: all(service.get_task(t).status == "succeeded" for t in ids), 300, 0.2)
    done = time.time()
    starts.stop.set()
    missed = sequential - len(latencies) + sum(t not in starts.seen for t in ids)
    if missed:
        print(f"(missed the claude start of {missed} short runs)")
    burst_starts = [starts.seen[t] for t in ids if t in starts.seen]
    stack.stop_pools()
    return {
        "p50": percentile(latencies, 50),
        "p95": percentile(latencies, 95),
        "dispatch_per_s": len(burst_starts) / (max(burst_starts) - t0),
        "complete_per_s": burst / (done - t0),
        "submit_per_s": burst / submit_s,
    }


def bare_rq(stack: Stack, job: str, sequential: int, burst: int) -> dict[str, float]:
    from rq import Queue

    from app.queue import get_redis

    redis = get_redis()
    redis.flushdb()
    queue = Queue(RQ_QUEUE, connection=redis)
    url = os.environ["TASKDECK_REDIS_URL"]
    for _ in range(stack.workers):
        stack.start([str(Path(sys.executable).parent / "rq"), "worker", "-u", url, RQ_QUEUE])
    wait_for(lambda: len(redis.keys("rq:worker:*")) >= stack.workers, 60, 0.1)
    workdir = stack.tmp / "rq-claude"
    workdir.mkdir(exist_ok=True)
    args = claude_job_args(workdir) if job == "claude_job" else ()
    func = f"bench.queue.{job}"

    def enqueue(key: str):  # noqa: ANN202
        return queue.enqueue(func, key, *args, job_timeout=300)

    def started(key: str) -> float | None:
        value = redis.hget(key, "started")
        return float(value) if value else None

    enqueue("warm")
    wait_for(lambda: queue.finished_job_registry.count == 1, 120, 0.01)
    latencies = []
    for n in range(sequential):
        submitted = time.time()
        job_ = enqueue(f"seq:{n}")
        latencies.append(wait_for(lambda n=n: started(f"seq:{n}"), 60) - submitted)
        wait_for(lambda j=job_: j.get_status() == "finished", 120, 0.005)

    t0 = time.time()
    jobs = [enqueue(f"burst:{n}") for n in range(burst)]
    starts = [wait_for(lambda n=n: started(f"burst:{n}"), 300) for n in range(burst)]
    wait_for(lambda: all(j.get_status() == "finished" for j in jobs), 300, 0.05)
    done = time.time()
    stack.stop_pools()
    return {
        "p50": percentile(latencies, 50),
        "p95": percentile(latencies, 95),
        "dispatch_per_s": burst / (max(starts) - t0),
        "complete_per_s": burst / (done - t0),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sequential", type=int, default=15, help="tasks for the latency")
    parser.add_argument("--burst", type=int, default=30, help="tasks for the throughput")
    parser.add_argument("--noop", type=int, default=300, help="no-op jobs for the RQ floor")
    args = parser.parse_args(argv)

    with Stack(args.workers) as stack:
        rq_noop = bare_rq(stack, "noop_job", min(args.sequential * 3, 50), args.noop)
        rq_claude = bare_rq(stack, "claude_job", args.sequential, args.burst)
        try:
            ours = taskdeck(stack, args.sequential, args.burst)
        except TimeoutError:
            print((stack.tmp / "workers.log").read_text()[-5000:])
            raise

    ms = 1000
    print(
        f"queue benchmark: {args.workers} fork workers, {os.cpu_count()} CPUs, "
        f"`text` scenario of the demo model"
    )
    print(f"{'':34}{'p50 ms':>10}{'p95 ms':>10}{'dispatch/s':>12}{'complete/s':>12}")
    for name, row in (
        ("bare RQ, no-op job", rq_noop),
        ("bare RQ + claude CLI", rq_claude),
        ("Taskdeck (submit -> claude)", ours),
    ):
        print(
            f"{name:34}{row['p50'] * ms:>10.1f}{row['p95'] * ms:>10.1f}"
            f"{row['dispatch_per_s']:>12.2f}{row['complete_per_s']:>12.2f}"
        )
    print(f"Taskdeck submit (create_task) rate: {ours['submit_per_s']:.0f} tasks/s")
    print(
        f"ratio Taskdeck / bare RQ + claude: latency p50 x{ours['p50'] / rq_claude['p50']:.2f}, "
        f"p95 x{ours['p95'] / rq_claude['p95']:.2f}, "
        f"completed/s x{ours['complete_per_s'] / rq_claude['complete_per_s']:.2f}"
    )
    print(
        f"ratio Taskdeck / bare RQ no-op: latency p50 x{ours['p50'] / rq_noop['p50']:.1f}, "
        f"dispatch/s x{ours['dispatch_per_s'] / rq_noop['dispatch_per_s']:.3f}"
    )


if __name__ == "__main__":
    main()
