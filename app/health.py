"""System health: Redis, the database, the worker pool and the workspace disk, each judged
green / amber / red with the reason in words (the health page shows them)."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

from app import service
from app.db import get_engine
from app.queue import get_redis
from app.settings import get_settings

GREEN, AMBER, RED = "green", "amber", "red"


def _check(name: str, level: str, reason: str, detail: str = "") -> dict[str, str]:
    return {"name": name, "level": level, "reason": reason, "detail": detail}


def check_redis() -> dict[str, str]:
    """Redis answers quickly and has memory left."""
    try:
        started = time.perf_counter()
        get_redis().ping()
        ms = (time.perf_counter() - started) * 1000
        info = get_redis().info("memory")
    except Exception as exc:
        return _check("Redis", RED, f"no answer ({type(exc).__name__})")
    used = info.get("used_memory_human", "?")
    limit = int(info.get("maxmemory") or 0)
    share = info.get("used_memory", 0) / limit if limit else 0.0
    detail = f"ping {ms:.1f} ms · memory {used}" + (f" ({share:.0%} of max)" if limit else "")
    if limit and share > 0.9:
        return _check("Redis", RED, f"memory {share:.0%} of maxmemory", detail)
    if ms > 100 or (limit and share > 0.75):
        return _check("Redis", AMBER, "slow answer" if ms > 100 else "memory filling", detail)
    return _check("Redis", GREEN, "answers", detail)


def check_database() -> dict[str, str]:
    """The database answers a query quickly."""
    engine = get_engine()
    try:
        started = time.perf_counter()
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        ms = (time.perf_counter() - started) * 1000
    except Exception as exc:
        return _check("Database", RED, f"no answer ({type(exc).__name__})")
    detail = f"{engine.dialect.name} · query {ms:.1f} ms · schema {version}"
    if ms > 500:
        return _check("Database", AMBER, "slow answer", detail)
    return _check("Database", GREEN, "answers", detail)


def check_workers() -> dict[str, str]:
    """Enough workers are alive and beating their heartbeat."""
    settings = get_settings()
    try:
        workers = service.worker_stats()
    except Exception as exc:
        return _check("Worker pool", RED, f"cannot list workers ({type(exc).__name__})")
    busy = sum(1 for w in workers if w["state"] == "busy")
    detail = f"{len(workers)} alive · {busy} busy · {settings.workers} expected"
    if not workers:
        return _check("Worker pool", RED, "no worker is alive: nothing will run", detail)
    silent = [
        w["name"]
        for w in workers
        if w["heartbeat_age_s"] is not None and w["heartbeat_age_s"] > settings.worker_ttl_s
    ]
    if silent:
        return _check("Worker pool", RED, "no heartbeat from " + ", ".join(silent), detail)
    if len(workers) < settings.workers:
        return _check(
            "Worker pool", AMBER, f"only {len(workers)} of {settings.workers} alive", detail
        )
    return _check("Worker pool", GREEN, "all workers alive", detail)


def check_disk() -> dict[str, str]:
    """The disk of the workspace root has room for more workspaces."""
    root = Path(get_settings().workspace_root)
    probe = root
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    usage = shutil.disk_usage(probe)
    free = usage.free / usage.total if usage.total else 0.0
    gib = usage.free / 2**30
    detail = f"{gib:.1f} GiB free of {usage.total / 2**30:.0f} GiB ({free:.0%}) at {root}"
    if free < 0.05 or gib < 1:
        return _check("Workspace disk", RED, "almost full", detail)
    if free < 0.15 or gib < 5:
        return _check("Workspace disk", AMBER, "filling up", detail)
    return _check("Workspace disk", GREEN, "room to spare", detail)


def checks() -> list[dict[str, str]]:
    """Every check, in the order the page shows them."""
    return [check_redis(), check_database(), check_workers(), check_disk()]


def overall(results: list[dict[str, Any]]) -> str:
    """The worst level of the checks."""
    levels = [r["level"] for r in results]
    return RED if RED in levels else AMBER if AMBER in levels else GREEN
