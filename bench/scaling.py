"""How far one Redis and one PostgreSQL carry Taskdeck: the figures behind docs/scaling.md.

Starts its own redis-server, PostgreSQL (tests/pg.py) and demo model, then measures:
  dispatch   no-op jobs/s one worker process (TaskdeckWorker: fork per job) takes off the queue
  tasks      `text` tasks/s end to end (real claude CLI against the demo model) per worker process
  memory     RSS of the pool, an idle worker, a work horse and the claude process of a running task
  events     events/s through one Redis (live.publish: XADD, pipelined, from 1 and 4 processes)
             and read back (XREAD, one reader)
  database   PostgreSQL: events stored/s (batches of 100, as the worker's EventRecorder) and
             tasks created/s (row + RQ job)
Usage: python bench/scaling.py [--quick] [--json FILE]. Prints figures; never pass/fail.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Run as a script, bench/ is first on sys.path, where a sibling module (bench/queue.py) would
# shadow the standard library's `queue`: import from the project root instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from redis import Redis  # noqa: E402

from tests.conftest import RedisServer, wait_until  # noqa: E402
from tests.pg import PostgresServer  # noqa: E402


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            return [int(p) for p in handle.read().split()]
    except OSError:
        return []


def descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        for child in children(todo.pop()):
            out.append(child)
            todo.append(child)
    return out


def command_of(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class Setup:
    """Redis + PostgreSQL + demo model + TASKDECK_* env in this process."""

    def __init__(self) -> None:
        from worker.demo_model import DemoModel

        self.tmp = Path(tempfile.mkdtemp(prefix="taskdeck-bench-"))
        self.redis = RedisServer(self.tmp).start()
        self.pg = PostgresServer().start()
        self.model = DemoModel(default_scenario="text").start()
        self.env = {
            "TASKDECK_REDIS_URL": self.redis.url,
            "TASKDECK_DATABASE_URL": self.pg.create_database("bench"),
            "TASKDECK_WORKSPACE_ROOT": str(self.tmp / "workspaces"),
            "TASKDECK_CLAUDE_CONFIG_ROOT": str(self.tmp / "claude"),
            "ANTHROPIC_BASE_URL": self.model.url,
            "ANTHROPIC_API_KEY": "sk-bench",
            "CLAUDE_CODE_MAX_RETRIES": "0",
        }
        os.environ.update(self.env)
        from app.db import upgrade_database
        from app.settings import get_settings

        get_settings.cache_clear()
        upgrade_database()

    def reset(self) -> None:
        from sqlalchemy import text

        from app.db import session_scope

        Redis.from_url(self.redis.url).flushdb()
        with session_scope() as session:
            session.exec(text("TRUNCATE taskevent, attempt, task RESTART IDENTITY CASCADE"))

    def pool(self, workers: int, burst: bool = False, host: str = "bench") -> subprocess.Popen:
        args = [sys.executable, "-m", "worker", "--workers", str(workers)]
        if burst:
            args.append("--burst")
        env = {**os.environ, **self.env, "TASKDECK_WORKER_HOST": host}
        return subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def connections(self) -> int:
        """Open connections to the bench database (the workers', the pool's and ours)."""
        name = self.env["TASKDECK_DATABASE_URL"].rsplit("/", 1)[1]
        with self.pg.connect() as conn:
            query = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
            return conn.execute(query, (name,)).fetchone()[0]

    def close(self) -> None:
        self.model.stop()
        self.redis.stop()
        self.pg.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, 15)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)


def bench_dispatch(setup: Setup, jobs: int) -> dict:
    """No-op jobs through one worker process: the queue and fork overhead alone."""
    from rq.job import Job

    from app.queue import get_queue

    setup.reset()
    queue = get_queue("default")
    ids = [queue.enqueue("time.time", result_ttl=600).id for _ in range(jobs)]
    pool = setup.pool(1, burst=True)
    pool.wait(600)
    fetched = [Job.fetch(i, connection=queue.connection) for i in ids]
    done = [j for j in fetched if j.get_status() == "finished"]
    first = min(j.started_at for j in done)
    last = max(j.ended_at for j in done)
    seconds = (last - first).total_seconds()
    return {
        "jobs": len(done),
        "seconds": round(seconds, 2),
        "jobs_per_s_per_worker_process": round(len(done) / seconds, 1),
    }


def bench_tasks(setup: Setup, tasks: int, workers: int) -> dict:
    """`text` tasks end to end: create -> queue -> worker -> claude CLI -> events -> succeeded."""
    from app import service
    from app.schemas import TaskCreate

    setup.reset()
    pool = setup.pool(workers)
    try:
        # Warm up (imports, first CLI start) before the clock starts.
        warm = service.create_task(TaskCreate(prompt="warm up [scenario:text]", max_turns=2))
        wait_until(lambda: service.get_task(warm.id).status == "succeeded", 180, 0.1)
        started = time.monotonic()
        ids = [
            service.create_task(TaskCreate(prompt=f"hi {n} [scenario:text]", max_turns=2)).id
            for n in range(tasks)
        ]
        peak = [0]

        def all_done() -> bool:
            peak[0] = max(peak[0], setup.connections())
            return all(service.get_task(i).status in ("succeeded", "failed") for i in ids)

        wait_until(all_done, 1800, 0.25)
        seconds = time.monotonic() - started
        done = [service.get_task(i) for i in ids]
        durations = [t.duration_ms / 1000 for t in done if t.duration_ms]
        events = [len(service.list_events(i)) for i in ids[:10]]
    finally:
        stop(pool)
    return {
        "workers": workers,
        "tasks": tasks,
        "succeeded": sum(t.status == "succeeded" for t in done),
        "seconds": round(seconds, 1),
        "tasks_per_s": round(tasks / seconds, 2),
        "tasks_per_s_per_worker_process": round(tasks / seconds / workers, 2),
        "claude_run_s_median": round(statistics.median(durations), 2) if durations else None,
        "events_per_task": round(statistics.mean(events), 1),
        "peak_db_connections": peak[0],
    }


def bench_memory(setup: Setup) -> dict:
    """RSS while one slow task runs: pool process, idle worker, busy worker, horse, claude."""
    from app import service
    from app.schemas import TaskCreate

    setup.reset()
    pool = setup.pool(2)
    try:
        task = service.create_task(
            TaskCreate(prompt="slow [scenario:slow] [delay:0.5]", max_turns=2)
        )
        wait_until(lambda: service.get_task(task.id).status == "running", 120, 0.1)
        time.sleep(3)  # claude has started and is streaming
        workers = children(pool.pid)
        figures = {"pool_mb": round(rss_mb(pool.pid), 1)}
        for worker in workers:
            horses = children(worker)
            if not horses:
                figures["idle_worker_mb"] = round(rss_mb(worker), 1)
                continue
            figures["busy_worker_mb"] = round(rss_mb(worker), 1)
            horse = horses[0]
            figures["work_horse_mb"] = round(rss_mb(horse), 1)
            tree = descendants(horse)
            claude = [p for p in tree if "claude" in command_of(p).split(" ")[0]]
            figures["claude_mb"] = round(sum(rss_mb(p) for p in claude), 1)
            figures["claude_processes"] = len(claude)
            figures["task_tree_mb"] = round(rss_mb(horse) + sum(rss_mb(p) for p in tree), 1)
        wait_until(lambda: service.get_task(task.id).status == "succeeded", 120, 0.2)
    finally:
        stop(pool)
    return figures


def _publisher(url: str, task_id: int, count: int, queue) -> None:  # noqa: ANN001
    os.environ["TASKDECK_REDIS_URL"] = url
    from app import live
    from app.events import TextDeltaEvent
    from app.settings import get_settings

    get_settings.cache_clear()
    event = TextDeltaEvent(text="a few words of typing " * 2)
    started = time.perf_counter()
    for _ in range(count):
        live.publish(task_id, event)
    queue.put(time.perf_counter() - started)


def bench_events(setup: Setup, count: int) -> dict:
    """live.publish round trips (each event is one pipelined XADD) and XREAD reading them back."""
    from app import live

    setup.reset()
    context = multiprocessing.get_context("spawn")
    results = {}
    for processes in (1, 4):
        queue = context.Queue()
        per = count // processes
        started = time.perf_counter()
        procs = [
            context.Process(target=_publisher, args=(setup.redis.url, 1000 + n, per, queue))
            for n in range(processes)
        ]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join()
        wall = time.perf_counter() - started
        busy = [queue.get() for _ in procs]
        results[f"publish_{processes}_procs_events_per_s"] = round(per * processes / max(busy))
        results[f"publish_{processes}_procs_wall_s"] = round(wall, 1)
    started = time.perf_counter()
    seen, after = 0, "0"
    while True:
        batch = live.read(1000, after=after, count=1000)
        if not batch:
            break
        seen += len(batch)
        after = batch[-1][0]
    results["xread_events_per_s"] = round(seen / (time.perf_counter() - started))
    info = Redis.from_url(setup.redis.url).info("cpu")
    results["redis_cpu_s"] = round(info["used_cpu_sys"] + info["used_cpu_user"], 1)
    return results


def bench_database(setup: Setup, events: int, tasks: int) -> dict:
    """PostgreSQL writes the workers and the API make: event batches and new tasks."""
    from app import service
    from app.events import TextEvent
    from app.schemas import TaskCreate

    setup.reset()
    task = service.create_task(TaskCreate(prompt="bench", max_turns=2))
    event = TextEvent(text="a complete text block of a few words " * 4)
    started = time.perf_counter()
    for start in range(0, events, 100):
        service.record_events(task.id, [(f"1-{n}", event) for n in range(start, start + 100)])
    stored = time.perf_counter() - started
    started = time.perf_counter()
    for n in range(tasks):
        service.create_task(TaskCreate(prompt=f"bench {n}", max_turns=2))
    created = time.perf_counter() - started
    return {
        "events_stored_per_s": round(events / stored),
        "tasks_created_per_s": round(tasks / created, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (CI)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    quick = args.quick
    setup = Setup()
    figures: dict[str, dict] = {}
    try:
        runs = [
            ("dispatch", lambda: bench_dispatch(setup, 100 if quick else 500)),
            ("tasks_1_worker", lambda: bench_tasks(setup, 5 if quick else 30, 1)),
            ("tasks_2_workers", lambda: bench_tasks(setup, 5 if quick else 30, 2)),
            ("memory", lambda: bench_memory(setup)),
            ("events", lambda: bench_events(setup, 2_000 if quick else 40_000)),
            (
                "database",
                lambda: bench_database(setup, 1_000 if quick else 20_000, 50 if quick else 500),
            ),
        ]
        for name, run in runs:
            figures[name] = run()
            print(f"{name:16} {json.dumps(figures[name])}", flush=True)
    finally:
        setup.close()
    figures["machine"] = {"cpus": os.cpu_count(), "load_1m": round(os.getloadavg()[0], 2)}
    print(f"{'machine':16} {json.dumps(figures['machine'])}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
