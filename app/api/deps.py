"""Shared API dependencies: who is calling (API token or web session cookie), the scope each
route needs, and the per-credential rate limit.

401 means "no valid credential" and never says why (unknown user, wrong token, expired: all the
same answer); 403 means "valid credential, not allowed".
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable
from typing import Annotated, TypeVar
from urllib.parse import urlparse

import anyio
from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.concurrency import run_in_threadpool
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from app import auth
from app.auth import Principal
from app.settings import get_settings

log = logging.getLogger(__name__)

SESSION_COOKIE = "taskdeck_session"  # the web UI's (set by its page code, so not HttpOnly)
API_SESSION_COOKIE = "taskdeck_api_session"  # set by POST /auth/login: HttpOnly
# Largest id a path or query may name: ids are INTEGER columns, 32-bit on PostgreSQL (a larger
# number would be a database error there, not a 404).
MAX_ID = 2**31 - 1
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# SQLite has one writer at a time and makes the others sleep and try again (its busy handler
# backs off up to 100 ms a try): with the thread pool's 40 threads writing at once, a create's
# p99 was ~1 s at 50 clients, ~0.25 s with 2 (bench/api_profile.py --clients 50). On SQLite the
# API's writes take turns in this many threads; other databases use the API's thread pool.
SQLITE_WRITE_THREADS = 2
# FastAPI runs a plain `def` route, a sync dependency and run_in_threadpool in anyio's default
# thread pool, 40 threads. Under load those 40 threads mostly fight for the GIL: listing 50 tasks
# at 50 clients cost 4.0 ms of CPU a request with 40 threads and 2.2 ms with 2 (296 -> 482
# req/s, p99 407 -> 155 ms; bench/api_load.py, SQLite). The pool is one per event loop, so
# `tune_api_process` runs at start-up (the API's lifespan, and the Reflex app's).
GC_YOUNG_THRESHOLD = 10_000  # see tune_api_process
T = TypeVar("T")
_write_limiters: dict[int, anyio.CapacityLimiter] = {}

bearer_scheme = HTTPBearer(
    auto_error=False, description="An API token: `Authorization: Bearer tdk_...`"
)
cookie_scheme = APIKeyCookie(
    name=SESSION_COOKIE, auto_error=False, description="The web UI's session cookie."
)
api_cookie_scheme = APIKeyCookie(
    name=API_SESSION_COOKIE, auto_error=False, description="Set by POST /api/v1/auth/login."
)


async def run_write(func: Callable[[], T]) -> T:
    """Run a blocking database write in a worker thread; on SQLite in the API's write lane."""
    limiter = None
    if get_settings().database_url.startswith("sqlite"):
        loop = id(asyncio.get_running_loop())  # a limiter belongs to one event loop
        limiter = _write_limiters.get(loop)
        if limiter is None:
            limiter = _write_limiters[loop] = anyio.CapacityLimiter(SQLITE_WRITE_THREADS)
    return await anyio.to_thread.run_sync(func, limiter=limiter)


async def tune_api_process() -> None:
    """At start-up: size this event loop's default thread pool to `api_threads` (Reflex itself
    uses asyncio's executor, not this pool), and take what start-up built out of the garbage
    collector's way.

    Everything alive now (modules, routes, models, compiled pages: hundreds of thousands of
    objects) lives as long as the process, yet each full collection walked it all: ~100 ms
    with the whole process stopped, a few times a minute under load (bench/api_load.py's p99).
    `gc.freeze()` moves it to a generation the collector never visits. The youngest generation
    is collected every GC_YOUNG_THRESHOLD allocations instead of Python's 700: a request makes
    hundreds of short-lived objects, and 200 collections of it cost 160 ms in 8 s of load,
    11 collections 57 ms."""
    anyio.to_thread.current_default_thread_limiter().total_tokens = get_settings().api_threads
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def unauthorized() -> HTTPException:
    """The one 401 answer, whatever was wrong with the credential."""
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED,
        "not authenticated: send a valid API token (Authorization: Bearer ...) or sign in",
        headers={"WWW-Authenticate": "Bearer"},
    )


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if not origin:
        return True
    return urlparse(origin).netloc == request.headers.get("host", "")


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    ui_session: Annotated[str | None, Security(cookie_scheme)],
    api_session: Annotated[str | None, Security(api_cookie_scheme)],
) -> Principal:
    """The authenticated caller, counted against its rate limit; 401 / 429 otherwise.

    Async on purpose: a cached credential and the Redis counter cost no thread hop; only a
    database lookup (a credential not seen for a few seconds) runs in the thread pool.
    """
    principal = None
    session_secret = api_session or ui_session
    if credentials is not None:
        principal = auth.cached_principal(credentials.credentials) or await run_in_threadpool(
            auth.token_principal, credentials.credentials
        )
    elif session_secret:
        principal = auth.cached_principal(session_secret) or await run_in_threadpool(
            auth.session_principal, session_secret
        )
        # A cookie travels with cross-site requests: refuse a foreign page's writes (CSRF).
        if principal and request.method not in SAFE_METHODS and not _same_origin(request):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "cross-origin request refused")
    if principal is None:
        raise unauthorized()
    try:
        retry_after = await auth.acheck_rate_limit(principal)
    except Exception:  # Redis down: serve (the queue itself reports the outage) rather than fail
        log.warning("rate limit unavailable", exc_info=True)
        retry_after = None
    if retry_after is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            "rate limit reached for this credential: retry later",
            headers={"Retry-After": str(int(retry_after))},
        )
    request.state.principal = principal
    return principal


def require(scope: str):  # noqa: ANN201
    """A dependency that lets through callers holding `scope` (read, write, admin)."""

    async def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not principal.allows(scope):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"this needs the {scope!r} permission, which your role or token does not grant",
            )
        return principal

    return check


Reader = Annotated[Principal, Depends(require("read"))]
Writer = Annotated[Principal, Depends(require("write"))]
Admin = Annotated[Principal, Depends(require("admin"))]
Caller = Annotated[Principal, Depends(current_principal)]
