"""The REST API: FastAPI routers mounted on the Reflex backend under /api/v1.

create_api() builds the app: every router with the request body limit, the 422 answer without
echoed input (a refused password must not come back), a generic 500, and request metrics.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import DataError

from app.api.accounts import router as accounts_router
from app.api.deps import tune_api_process
from app.api.engine import router as engine_router
from app.api.system import RequestMetrics
from app.api.system import router as system_router
from app.api.tasks import router as tasks_router
from app.settings import get_settings

log = logging.getLogger(__name__)

DESCRIPTION = """Submit and follow Claude Code tasks from scripts and CI.

Authenticate with an API token (`Authorization: Bearer tdk_...`, create one on the Tokens page or
`POST /api/v1/tokens` while signed in) or the web session cookie. Scopes: `read` (look),
`write` (submit, cancel, retry, delete), `admin` (queues, users). 401: no valid credential;
403: not allowed; 422: invalid input (`detail[].loc` names the field); 429: rate limit
(see `Retry-After`)."""


def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 naming each field, without echoing the submitted values."""
    detail = [
        {
            "loc": list(error.get("loc", ())),
            "msg": str(error.get("msg", "invalid")).removeprefix("Value error, "),
            "type": error.get("type", "value_error"),
        }
        for error in exc.errors()
    ]
    return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


def service_validation_error(_request: Request, exc: ValidationError) -> JSONResponse:
    """422 for a check app.service makes itself (a ValidationError naming the body field)."""
    detail = [
        {
            "loc": ["body", *error.get("loc", ())],
            "msg": str(error.get("msg", "invalid")).removeprefix("Value error, "),
            "type": error.get("type", "value_error"),
        }
        for error in exc.errors()
    ]
    return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


def database_refused(_request: Request, exc: DataError) -> JSONResponse:
    """422 when the database refuses a value that passed validation (the change is rolled back)."""
    log.info("database refused a value: %s", type(exc.orig).__name__)
    return JSONResponse(
        {
            "detail": [
                {"loc": ["body"], "msg": "a value the database cannot store", "type": "value_error"}
            ]
        },
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


def server_error(request: Request, exc: Exception) -> JSONResponse:
    """500 without internals in the answer; the log has the traceback (never a credential)."""
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal error"}, status_code=500)


@asynccontextmanager
async def lifespan(_api: FastAPI) -> AsyncIterator[None]:
    """Run on its own (granian, tests); mounted in Reflex, app/app.py does the same."""
    await tune_api_process()
    yield
    gc.unfreeze()  # a process that goes on (tests): what start-up froze can be collected again


def create_api() -> FastAPI:
    """The FastAPI app Reflex serves beside its own routes."""
    api = FastAPI(
        lifespan=lifespan,
        title="Taskdeck API",
        version="1",
        description=DESCRIPTION,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
    )
    limit = get_settings().api_max_body_bytes
    for router in (tasks_router, engine_router, accounts_router, system_router):
        api.include_router(router, max_body_size=limit)
    api.add_exception_handler(RequestValidationError, validation_error)
    api.add_exception_handler(ValidationError, service_validation_error)
    api.add_exception_handler(DataError, database_refused)
    api.add_exception_handler(Exception, server_error)
    api.add_middleware(RequestMetrics)
    return api
