"""Per-request cost of the REST API, in-process: GET /api/v1/tasks/{id} and POST /api/v1/tasks on
the real app (app.api.create_api) with a real API token, SQLite and Redis, one request at a time
through httpx's ASGI transport (no server, no network: only what our code and its libraries do).

Prints the mean milliseconds per request of each endpoint (and of a "floor": GET /health/live,
no credential and no database, the cost of the client, the transport and FastAPI alone); with
--clients, requests/s and p50/p99 of that many concurrent clients in this process; with
--profile, the functions cProfile finds most expensive for each.

    python bench/api_profile.py [--tasks 20000] [--requests 500] [--clients 50] [--profile]

Starts its own redis-server in a temp dir. A benchmark prints figures; it never fails on them.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # not bench/ (its queue.py would hide the stdlib module)

from bench.api_load import seed  # noqa: E402
from tests.conftest import RedisServer  # noqa: E402

BODY = {"prompt": "benchmark task: say hi [scenario:text]"}


async def run(client, method: str, count: int, max_id: int) -> float:  # noqa: ANN001
    """Send `count` requests one after another; the mean wall time of one, in ms."""
    rng = random.Random(3)
    started = time.perf_counter()
    for _ in range(count):
        if method == "floor":  # no credential, no database: what httpx + FastAPI cost alone
            response = await client.get("/api/v1/health/live")
            expected = 200
        elif method == "get":
            response = await client.get(f"/api/v1/tasks/{rng.randint(1, max_id)}")
            expected = 200
        else:
            response = await client.post("/api/v1/tasks", json=BODY)
            expected = 201
        if response.status_code != expected:
            raise RuntimeError(f"{method}: {response.status_code} {response.text[:200]}")
    return (time.perf_counter() - started) * 1000 / count


async def run_concurrently(client, method: str, clients: int, count: int, max_id: int) -> str:  # noqa: ANN001
    """`clients` loops sharing `count` requests in this one process (the event loop and thread
    pool of one server process, without the HTTP parsing): requests/s and p50/p99 in ms."""
    latencies: list[float] = []
    left = iter(range(count))
    rng = random.Random(5)

    async def one_client() -> None:
        for _ in left:
            started = time.perf_counter()
            if method == "get":
                response = await client.get(f"/api/v1/tasks/{rng.randint(1, max_id)}")
            else:
                response = await client.post("/api/v1/tasks", json=BODY)
            if response.status_code >= 300:
                raise RuntimeError(f"{method}: {response.status_code} {response.text[:200]}")
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(one_client() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
    return f"{count / elapsed:7.0f} req/s  p50 {p50:6.1f}  p99 {p99:6.1f} ms"


def inline_threadpool() -> None:
    """Run the sync endpoints and dependencies in the event loop's thread (profiling only)."""
    import fastapi.dependencies.utils
    import fastapi.routing

    import app.api.deps

    async def inline(func, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        return func(*args, **kwargs)

    for module in (fastapi.routing, fastapi.dependencies.utils, app.api.deps):
        module.run_in_threadpool = inline


def top(profile: cProfile.Profile, lines: int, sort: str) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats(sort).print_stats(r"/app/|sqlalchemy|sqlmodel|pydantic|redis|rq/", lines)
    return out.getvalue()


async def main_async(args: argparse.Namespace, token: str) -> None:
    import httpx

    from app.api import create_api

    transport = httpx.ASGITransport(app=create_api())
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://127.0.0.1", headers=headers
    ) as client:
        for method in ("floor", "get", "create"):
            await run(client, method, 50, args.tasks)  # warm up (imports, caches, pool)
            ms = min([await run(client, method, args.requests, args.tasks) for _ in range(3)])
            print(f"{method:<7} {ms:6.2f} ms/request (best of 3 x {args.requests})", flush=True)
        if args.clients:
            for method in ("get", "create"):
                figures = await run_concurrently(
                    client, method, args.clients, args.requests * 4, args.tasks
                )
                print(f"{method:<7} {args.clients} clients: {figures}", flush=True)
        if args.profile:
            inline_threadpool()  # cProfile sees the main thread only: run sync code there
            for method in ("get", "create"):
                profile = cProfile.Profile()
                profile.enable()
                await run(client, method, args.requests, args.tasks)
                profile.disable()
                for sort in ("cumulative", "tottime"):
                    print(f"\n==== {method}: {sort} ====\n{top(profile, args.lines, sort)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--clients", type=int, default=0, help="also run this many concurrent clients"
    )
    parser.add_argument("--lines", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="taskdeck-profile-") as tmp:
        workdir = Path(tmp)
        redis = RedisServer(workdir).start()
        try:
            os.environ.update(
                TASKDECK_REDIS_URL=redis.url,
                TASKDECK_API_RATE_LIMIT="100000000",
                TASKDECK_WORKSPACE_ROOT=str(workdir / "ws"),
            )
            token = seed(f"sqlite:///{workdir / 'profile.db'}", args.tasks)
            asyncio.run(main_async(args, token))
        finally:
            redis.stop()


if __name__ == "__main__":
    main()
