"""REST API under load: list, get and create tasks with 100,000 tasks in the database, 50
concurrent clients on loopback (Debian's `wrk`), with SQLite and with PostgreSQL, beside a naive
anchor (bench/api_anchor.py: a bare FastAPI app doing `select(Task)` -> SQLModel objects).

Both apps run in one granian process (the server Reflex uses in production) on 127.0.0.1; ours
with auth on (a bearer token checked per request, the per-token rate limit counted in Redis).
Prints requests/s, p50/p95/p99 and the server's CPU time per request for each endpoint, and the
ratios to the anchor (CPU per request is the figure a machine shared with other work distorts
least).

    python bench/api_load.py [--tasks 100000] [--clients 50] [--duration 30] [--db sqlite,postgres]

Starts its own redis-server and PostgreSQL (Debian's binaries, tests/pg.py) in a temp dir; needs
`wrk` (installed with apt-get when missing). A benchmark prints figures; it never fails on them.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # not bench/ (its queue.py would hide the stdlib module)

from tests.conftest import RedisServer, free_port  # noqa: E402

VENV_BIN = Path(sys.executable).parent
ENDPOINTS = (("list", "list 50 (first page)"), ("get", "get by id"), ("create", "create"))


def ensure_wrk() -> str:
    """The wrk binary (Debian's package, installed when missing)."""
    found = shutil.which("wrk")
    if found:
        return found
    print("installing wrk (apt-get) ...", flush=True)
    subprocess.run(["apt-get", "update", "-q"], check=True, capture_output=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "wrk"],
        check=True,
        capture_output=True,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    return shutil.which("wrk") or "wrk"


def seed(url: str, count: int) -> str:
    """Migrate, insert `count` tasks in bulk, create a member with a token; return the token."""
    os.environ["TASKDECK_DATABASE_URL"] = url
    from app.settings import get_settings

    get_settings.cache_clear()
    from app import auth
    from app.db import get_engine, upgrade_database
    from app.models import Task, TaskStatus

    upgrade_database(url)
    template = Task(title="t", prompt="p", model="claude-sonnet-4-5", max_turns=20)
    base = {c.name: getattr(template, c.name) for c in Task.__table__.columns if c.name != "id"}
    rng = random.Random(7)
    started = time.monotonic()
    with get_engine().begin() as conn:
        for first in range(0, count, 10_000):
            rows = []
            for n in range(first, min(count, first + 10_000)):
                prompt = f"Task {n}: refactor module {n % 97} and add tests for it"
                rows.append(
                    {
                        **base,
                        "title": prompt[:120],
                        "prompt": prompt,
                        "status": rng.choice(TaskStatus.ALL),
                        "priority": rng.choice(("high", "default", "low")),
                        "cost_usd": rng.random() / 10,
                        "num_turns": rng.randint(1, 20),
                        "duration_ms": rng.randint(500, 90_000),
                    }
                )
            conn.execute(Task.__table__.insert(), rows)
    print(f"  seeded {count:,} tasks in {time.monotonic() - started:.1f} s", flush=True)
    user = auth.create_user("bench", "bench-password", "member")
    token, _ = auth.create_token(user, "bench")
    return token


class Server:
    """One granian process serving an ASGI app factory on a free loopback port."""

    def __init__(self, target: str, env: dict[str, str], ready_path: str) -> None:
        self.port = free_port()
        self.target = target
        self.env = env
        self.ready_path = ready_path
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Server:
        self.process = subprocess.Popen(
            [
                str(VENV_BIN / "granian"),
                "--interface",
                "asgi",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
                "--log-level",
                "warning",
                "--no-access-log",
                self.target,
            ],
            cwd=ROOT,
            env=self.env,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + self.ready_path, timeout=2):
                    return self
            except Exception:
                time.sleep(0.2)
        raise RuntimeError(f"{self.target} did not start")

    def cpu_seconds(self) -> float:
        """CPU time used so far by the server's process group (granian and its worker)."""
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == self.process.pid:  # pgrp (the server started a new session)
                total += int(fields[11]) + int(fields[12])  # utime + stime
        return total / tick

    def stop(self) -> None:
        """Stop the whole process group: granian's worker process would outlive its parent."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # anything left in the group
        except ProcessLookupError:
            pass


def run_wrk(
    wrk: str, url: str, mode: str, path: str, clients: int, duration: int, token: str, max_id: int
) -> dict:
    """One wrk run against one endpoint; the figures of the script's RESULT line."""
    env = {
        **os.environ,
        "BENCH_MODE": mode,
        "BENCH_PATH": path,
        "BENCH_TOKEN": token,
        "BENCH_MAX_ID": str(max_id),
    }
    out = subprocess.run(
        [
            wrk,
            "-t2",
            f"-c{clients}",
            f"-d{duration}s",
            "--timeout",
            "10s",
            "-s",
            str(ROOT / "bench" / "api_load.lua"),
            url,
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for error in [x for x in out.splitlines() if x.startswith("FIRST-ERROR ")][:1]:
        print(f"    {mode}: {error}", flush=True)
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    figures = json.loads(line[len("RESULT ") :])
    figures["rps"] = figures["requests"] / (figures["duration_us"] / 1e6)
    return figures


def measure(
    name: str,
    target: str,
    ready: str,
    prefix: str,
    env: dict[str, str],
    token: str,
    args: argparse.Namespace,
    wrk: str,
    max_id: int,
) -> dict[str, dict]:
    server = Server(target, env, ready).start()
    try:
        results = {}
        for mode, _label in ENDPOINTS:
            run_wrk(wrk, server.url, mode, prefix, args.clients, 2, token, max_id)  # warm up
            cpu_before = server.cpu_seconds()
            results[mode] = run_wrk(
                wrk, server.url, mode, prefix, args.clients, args.duration, token, max_id
            )
            r = results[mode]
            # Server CPU per request: what the load on this shared machine does not change much.
            r["cpu_ms"] = (server.cpu_seconds() - cpu_before) * 1000 / max(1, r["requests"])
            print(
                f"  {name:<9} {mode:<7} {r['rps']:8.0f} req/s  p50 {r['p50'] / 1000:6.1f}  "
                f"p95 {r['p95'] / 1000:6.1f}  p99 {r['p99'] / 1000:6.1f} ms  "
                f"server cpu {r['cpu_ms']:.2f} ms/req  errors {r['errors']}  "
                f"non-2xx {r['non2xx']}",
                flush=True,
            )
        return results
    finally:
        server.stop()


def report(title: str, ours: dict, anchor: dict) -> None:
    print(f"\n{title}")
    print(
        f"{'endpoint':<22}{'taskdeck req/s':>15}{'p50':>8}{'p95':>8}{'p99 ms':>8}"
        f"{'anchor req/s':>14}{'p50':>8}{'p95':>8}{'p99 ms':>8}{'x req/s':>9}"
        f"{'cpu ms/req':>12}{'anchor':>8}"
    )
    for mode, label in ENDPOINTS:
        o, a = ours[mode], anchor[mode]
        print(
            f"{label:<22}{o['rps']:>15.0f}{o['p50'] / 1000:>8.1f}{o['p95'] / 1000:>8.1f}"
            f"{o['p99'] / 1000:>8.1f}{a['rps']:>14.0f}{a['p50'] / 1000:>8.1f}"
            f"{a['p95'] / 1000:>8.1f}{a['p99'] / 1000:>8.1f}{o['rps'] / a['rps']:>9.2f}"
            f"{o['cpu_ms']:>12.2f}{a['cpu_ms']:>8.2f}"
        )
    errors = sum(ours[m]["errors"] + ours[m]["non2xx"] for m, _ in ENDPOINTS)
    print(
        f"(taskdeck: auth on, rate limit counted per request; errors + non-2xx: {errors})",
        flush=True,
    )


def bench_database(
    kind: str, args: argparse.Namespace, wrk: str, redis_url: str, workdir: Path
) -> None:
    pg = None
    if kind == "sqlite":
        url = f"sqlite:///{workdir / 'bench.db'}"
    else:
        from tests.pg import PostgresServer

        pg = PostgresServer().start()
        url = pg.create_database("bench")
    try:
        print(
            f"\n[{kind}] {args.tasks:,} tasks, {args.clients} clients, {args.duration} s per "
            "endpoint",
            flush=True,
        )
        token = seed(url, args.tasks)
        env = {
            **os.environ,
            "TASKDECK_DATABASE_URL": url,
            "TASKDECK_REDIS_URL": redis_url,
            "TASKDECK_API_RATE_LIMIT": "100000000",
            "TASKDECK_WORKSPACE_ROOT": str(workdir / "ws"),
        }
        ours = measure(
            "taskdeck",
            "app.api:create_api",
            "/api/v1/health/live",
            "/api/v1/tasks",
            env,
            token,
            args,
            wrk,
            args.tasks,
        )
        anchor = measure(
            "anchor",
            "bench.api_anchor:create_anchor",
            "/docs",
            "/anchor/tasks",
            env,
            "",
            args,
            wrk,
            args.tasks,
        )
        report(
            f"{kind}: {args.tasks:,} tasks, {args.clients} clients, one granian process",
            ours,
            anchor,
        )
    finally:
        if pg:
            pg.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=int, default=30, help="seconds per endpoint")
    parser.add_argument("--db", default="sqlite,postgres")
    args = parser.parse_args()
    wrk = ensure_wrk()
    workdir = Path(tempfile.mkdtemp(prefix="taskdeck-apibench-"))
    redis = RedisServer(workdir).start()
    try:
        for kind in args.db.split(","):
            from redis import Redis

            Redis.from_url(redis.url).flushdb()
            bench_database(kind.strip(), args, wrk, redis.url, workdir)
    finally:
        redis.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
